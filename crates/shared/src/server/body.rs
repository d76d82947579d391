//! Request bodies as the services see them: a stalled body ends with an error after the body
//! timeout, a malformed one (a bad chunk size) is remembered so the answer becomes a 400, and
//! what a service left unread is drained in the background, so the client finishes its upload
//! and reads the answer on a connection that stays usable.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};

use super::socket::Activity;
use super::HttpLimits;

/// How long unread bodies are drained at most, however steadily the client sends.
const DRAIN_TIME: Duration = Duration::from_secs(60);

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("malformed request body: {0}")]
    Malformed(#[source] hyper::Error),
    #[error("the request body stalled")]
    TimedOut,
}

/// How reading a request's body ended, shared with whoever writes its answer.
#[derive(Default)]
pub(super) struct Outcome(AtomicU8);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    Malformed,
    TimedOut,
}

impl Outcome {
    pub(super) fn shared() -> Arc<Outcome> {
        Arc::default()
    }

    fn set(&self, failure: Failure) {
        let code = match failure {
            Failure::Malformed => 1,
            Failure::TimedOut => 2,
        };
        self.0.store(code, Ordering::Relaxed);
    }

    pub(super) fn failure(&self) -> Option<Failure> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(Failure::Malformed),
            2 => Some(Failure::TimedOut),
            _ => None,
        }
    }
}

/// hyper's body with the timeout, the failure record and the drain on drop.
pub(super) struct GuardedBody {
    inner: Option<Incoming>,
    limits: HttpLimits,
    outcome: Arc<Outcome>,
    activity: Arc<Activity>,
    /// Runs while waiting for the next frame; reset by each one.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    polled: bool,
    finished: bool,
    /// A client that sent `Expect: 100-continue` sends no body until asked: when the service
    /// answered without reading, it is not asked (hyper skips the 100) and nothing is drained.
    expects_continue: bool,
}

impl GuardedBody {
    pub(super) fn new(
        inner: Incoming,
        limits: HttpLimits,
        outcome: Arc<Outcome>,
        activity: Arc<Activity>,
        expects_continue: bool,
    ) -> Self {
        Self {
            inner: Some(inner),
            limits,
            outcome,
            activity,
            stall: None,
            polled: false,
            finished: false,
            expects_continue,
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut().filter(|_| !this.finished) else {
            return Poll::Ready(None);
        };
        this.polled = true;
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.stall = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.finished = true;
                this.outcome.set(Failure::Malformed);
                Poll::Ready(Some(Err(BodyError::Malformed(e))))
            }
            Poll::Pending => {
                let timeout = this.limits.body_timeout;
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if stall.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.finished = true;
                this.outcome.set(Failure::TimedOut);
                Poll::Ready(Some(Err(BodyError::TimedOut)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(Incoming::size_hint)
            .unwrap_or_default()
    }
}

impl Drop for GuardedBody {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if self.finished || inner.is_end_stream() || (self.expects_continue && !self.polled) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(inner, self.limits, self.activity.clone()));
        }
    }
}

/// Reads and discards the rest of a body, up to the drain limit; dropping it earlier makes
/// hyper close the connection once the answer is written.
async fn drain(mut body: Incoming, limits: HttpLimits, activity: Arc<Activity>) {
    let read = async {
        let mut seen = 0u64;
        loop {
            let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
            match tokio::time::timeout(limits.body_timeout, next).await {
                Ok(Some(Ok(frame))) => {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if seen > limits.drain_limit {
                        tracing::debug!(seen, "unread request body over the drain limit");
                        activity.abandon_body();
                        return;
                    }
                }
                other => {
                    tracing::trace!(seen, ended = ?other.map(|f| f.map(|f| f.is_ok())), "unread body drained");
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(DRAIN_TIME, read).await.is_err() {
        activity.abandon_body();
    }
}
