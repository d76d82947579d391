//! A lease: at most one node holds it at a time, for `ttl` past its last renewal; each new
//! holder gets a larger fencing token.
//!
//! The lease is a NATS KV key in a bucket whose entries expire `ttl` after their last write.
//! Acquiring is a create (fails while someone holds it); renewing is an update on the revision
//! the holder last wrote (fails once anyone else has written). The fencing token is the
//! revision the holder created the key with: JetStream sequences only grow (file storage keeps
//! them across NATS restarts), so a later holder always has a larger token, and whatever the
//! holder drives can refuse a smaller token than it has seen.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::error::{boxed, valid_key, ScaleoutError};

/// One holder's term: its fencing token, and the revision its last renewal wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub token: u64,
    revision: u64,
}

/// Who holds a lease now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    /// The revision of the holder's last write (its token, or a renewal after it).
    pub revision: u64,
}

/// One named lease, as seen from this node.
#[derive(Clone)]
pub struct Lease {
    store: kv::Store,
    key: String,
    node: String,
    ttl: Duration,
}

impl Lease {
    pub(crate) fn new(
        store: kv::Store,
        name: &str,
        node: String,
        ttl: Duration,
    ) -> Result<Lease, ScaleoutError> {
        if !valid_key(name) {
            return Err(ScaleoutError::InvalidKey(name.to_owned()));
        }
        Ok(Lease {
            store,
            key: name.to_owned(),
            node,
            ttl,
        })
    }

    /// How long the lease outlives its last renewal.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes the lease if nobody holds it.
    pub async fn try_acquire(&self) -> Result<Option<Term>, ScaleoutError> {
        match self.store.create(&self.key, self.value()).await {
            Ok(revision) => Ok(Some(Term {
                token: revision,
                revision,
            })),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(ScaleoutError::nats("acquire lease")(boxed(e))),
        }
    }

    /// Extends the term; `false` when the lease was lost (expired and taken, or released).
    pub async fn renew(&self, term: &mut Term) -> Result<bool, ScaleoutError> {
        match self
            .store
            .update(&self.key, self.value(), term.revision)
            .await
        {
            Ok(revision) => {
                term.revision = revision;
                Ok(true)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(ScaleoutError::nats("renew lease")(boxed(e))),
        }
    }

    /// Gives the lease up, if this term still holds it, so another node need not wait for it to
    /// expire.
    pub async fn release(&self, term: Term) -> Result<(), ScaleoutError> {
        match self
            .store
            .delete_expect_revision(&self.key, Some(term.revision))
            .await
        {
            Ok(()) => Ok(()),
            // Already lost: nothing to give up.
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
            Err(e) => Err(ScaleoutError::nats("release lease")(boxed(e))),
        }
    }

    /// The current holder, if any.
    pub async fn holder(&self) -> Result<Option<Holder>, ScaleoutError> {
        let entry = self
            .store
            .entry(self.key.clone())
            .await
            .map_err(|e| ScaleoutError::nats("read lease")(boxed(e)))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| Holder {
                node: String::from_utf8_lossy(&e.value).into_owned(),
                revision: e.revision,
            }))
    }

    fn value(&self) -> Bytes {
        Bytes::from(self.node.clone())
    }
}

/// Campaigns for a lease in the background: takes it when free, renews it every third of its
/// ttl, and steps down (token `None`) before it could have expired when renewals fail, e.g.
/// while NATS is unreachable, so this node never believes it leads after another could.
pub struct Leadership {
    token: watch::Receiver<Option<u64>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    pub fn spawn(lease: Lease) -> Leadership {
        let (tx, token) = watch::channel(None);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(campaign(lease, tx, stopped));
        Leadership {
            token,
            stop: Some(stop),
            task,
        }
    }

    /// The fencing token while this node leads.
    pub fn token(&self) -> Option<u64> {
        *self.token.borrow()
    }

    /// Follows the token: `Some` on taking the lead, `None` on losing it.
    pub fn watch(&self) -> watch::Receiver<Option<u64>> {
        self.token.clone()
    }

    /// Stops campaigning and releases the lease if held (a clean shutdown hands over at once).
    pub async fn resign(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Dropped without `resign`: stop renewing; the lease expires after its ttl.
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

async fn campaign(
    lease: Lease,
    token: watch::Sender<Option<u64>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let tick = lease.ttl / 3;
    let mut held: Option<Term> = None;
    // When the last successful write was sent: the server wrote it no earlier, so the lease
    // lasts at least until `sent + ttl`. Stepping down at `sent + ttl - tick` leaves a margin.
    let mut sent = Instant::now();
    loop {
        let attempt = Instant::now();
        let deadline = sent + lease.ttl - tick;
        match held.as_mut() {
            None => match lease.try_acquire().await {
                Ok(Some(term)) => {
                    sent = attempt;
                    tracing::info!(lease = %lease.key, token = term.token, "took the lease");
                    held = Some(term);
                    token.send_replace(Some(term.token));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(lease = %lease.key, error = %e, "cannot campaign for the lease")
                }
            },
            Some(term) => {
                // A renewal still unanswered at the deadline counts as failed.
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, lease.renew(term)).await {
                    Ok(Ok(true)) => sent = attempt,
                    Ok(Ok(false)) => {
                        tracing::warn!(lease = %lease.key, "lost the lease");
                        held = None;
                        token.send_replace(None);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(lease = %lease.key, error = %e, "cannot renew the lease")
                    }
                    Err(_) => {}
                }
                if held.is_some() && Instant::now() >= deadline {
                    tracing::warn!(lease = %lease.key, "stepping down: the lease could not be renewed in time");
                    held = None;
                    token.send_replace(None);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(attempt + tick) => {}
            _ = &mut stopped => {
                if let Some(term) = held.take() {
                    token.send_replace(None);
                    if let Err(e) = lease.release(term).await {
                        tracing::warn!(lease = %lease.key, error = %e, "cannot release the lease");
                    }
                }
                return;
            }
        }
    }
}
