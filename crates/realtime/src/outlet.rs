//! The sending half of one socket: a queue bounded in messages and bytes, and the signal that
//! closes the socket when it overflows. Whatever talks to a client (the hub, `postgres_changes`
//! delivery, a session) holds one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::protocol::Message;

/// Messages a socket may have queued before it is closed as too slow.
pub const SOCKET_QUEUE: usize = 10_000;

/// The sending half of one socket: its bounded queue (in messages and in bytes) and the
/// signal that closes it.
#[derive(Clone)]
pub struct Outlet {
    pub socket: u64,
    tx: mpsc::Sender<Message>,
    overflow: Arc<Notify>,
    /// Estimated bytes queued and not yet taken by the socket (`Outlet::taken`).
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl Outlet {
    /// A new outlet with the default byte bound, its receiver and the notifier fired when the
    /// queue overflowed.
    pub fn new(socket: u64) -> (Outlet, mpsc::Receiver<Message>, Arc<Notify>) {
        Outlet::bounded(socket, crate::limits::Limits::default().queue_bytes)
    }

    /// A new outlet that overflows past `max_bytes` queued.
    pub fn bounded(
        socket: u64,
        max_bytes: usize,
    ) -> (Outlet, mpsc::Receiver<Message>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        let overflow = Arc::new(Notify::new());
        (
            Outlet {
                socket,
                tx,
                overflow: overflow.clone(),
                queued: Arc::new(AtomicUsize::new(0)),
                max_bytes,
            },
            rx,
            overflow,
        )
    }

    /// Queues a message without waiting; a full queue (by count or by bytes) closes the socket
    /// instead of stalling the sender (and every other subscriber behind it).
    pub fn send(&self, msg: Message) {
        let weight = msg.weight();
        let before = self.queued.fetch_add(weight, Ordering::Relaxed);
        if before.saturating_add(weight) > self.max_bytes {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
            self.overflow.notify_one();
            return;
        }
        if let Err(e) = self.tx.try_send(msg) {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
            if let mpsc::error::TrySendError::Full(_) = e {
                self.overflow.notify_one();
            }
        }
    }

    /// The socket took `msg` off the queue.
    pub fn taken(&self, msg: &Message) {
        self.queued.fetch_sub(msg.weight(), Ordering::Relaxed);
    }

    /// Whether the socket is gone (its receiving half dropped).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Estimated bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}
