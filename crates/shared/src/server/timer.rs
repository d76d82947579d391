//! Telling a slow request head from an idle kept-alive connection. hyper runs one timer,
//! `header_read_timeout`, from the moment it waits for a request head, idle or not; this timer
//! gives a kept-alive connection the (longer) keep-alive timeout until the next request's first
//! byte arrives, and the header timeout from then on.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::socket::Activity;

/// hyper's timer for one connection. hyper's only server timer is the header read timeout.
pub(super) struct HeadTimer {
    activity: Arc<Activity>,
    keep_alive: Duration,
    /// Whether the first request's head was waited for: the next ones follow an idle spell.
    served: AtomicBool,
}

impl HeadTimer {
    pub(super) fn new(activity: Arc<Activity>, keep_alive: Duration) -> Self {
        Self {
            activity,
            keep_alive,
            served: AtomicBool::new(false),
        }
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = Instant::now();
        let header = deadline.saturating_duration_since(now);
        let kept_alive = self.served.swap(true, Ordering::Relaxed);
        // A new connection gets the header timeout from its accept; a kept-alive one may idle.
        let (first_wait, idle_since) = if kept_alive {
            (self.keep_alive, Some(self.activity.reads()))
        } else {
            (header, None)
        };
        Box::pin(HeadSleep {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
                now + first_wait,
            ))),
            header,
            idle_since,
            activity: self.activity.clone(),
        })
    }
}

/// Fires at the keep-alive deadline while the connection is idle, and at the header deadline
/// once a request has begun. hyper polls it after every read that left the head incomplete.
struct HeadSleep {
    sleep: Pin<Box<tokio::time::Sleep>>,
    header: Duration,
    /// The read count when the idle spell began; `None` once a request has begun.
    idle_since: Option<u64>,
    activity: Arc<Activity>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some(reads) = this.idle_since {
            if this.activity.reads() != reads {
                this.idle_since = None;
                let deadline = tokio::time::Instant::now() + this.header;
                this.sleep.as_mut().reset(deadline);
            }
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}
