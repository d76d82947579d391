//! The connection's socket: counts the reads that bring bytes (for the header timer), and
//! closes with a lingering read when the client may still be sending.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the timer and the close need to know of a connection's reads.
#[derive(Default)]
pub(super) struct Activity {
    /// Reads that brought bytes.
    reads: AtomicU64,
    /// A request body was left partly unread (past the drain limit or the drain time): the client
    /// may still be sending when the connection closes.
    abandoned: AtomicBool,
}

impl Activity {
    pub(super) fn shared() -> Arc<Activity> {
        Arc::default()
    }

    pub(super) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub(super) fn abandon_body(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

/// The connection's socket, counting the reads that bring bytes, and closed with a lingering
/// read when the client is still sending (see [`Drop`]).
pub(super) struct Watched {
    /// `None` only once dropped.
    stream: Option<TcpStream>,
    activity: Arc<Activity>,
}

impl Watched {
    pub(super) fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            stream: Some(stream),
            activity,
        }
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(
            self.stream
                .as_mut()
                .expect("the stream is taken only on drop"),
        )
    }
}

/// Closing a socket with unread bytes sends a reset, which destroys the answer the client has
/// not read yet. When the client is still sending (an upload past the drain limit), what it
/// sends is read and discarded after our side is shut, for a short while, as nginx's
/// `lingering_close` does.
impl Drop for Watched {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        let abandoned = self.activity.abandoned.load(Ordering::Relaxed);
        if !abandoned && !matches!(stream.try_read(&mut [0u8; 1]), Ok(n) if n > 0) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream));
        }
    }
}

/// How long a closing connection's incoming bytes are discarded at most, and how long a pause
/// in them ends that early.
const LINGER_TIME: Duration = Duration::from_secs(30);
const LINGER_GAP: Duration = Duration::from_secs(5);

async fn linger(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let discard = async {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(Ok(n)) = tokio::time::timeout(LINGER_GAP, stream.read(&mut buf)).await {
            if n == 0 {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, discard).await;
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.stream().poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}
