//! zerodb-local's HTTP/1.1 server: the router on hyper, with the limits a process that
//! reads its own sockets needs and API Gateway gives the Lambda functions for free.
//! A client gets `header_timeout` to send each request's headers (from the moment the
//! connection is open or idle, so a silent or trickling client is dropped), then
//! `body_timeout` to send its whole body (408 past it), and a response write it does not
//! take within `write_timeout` ends the connection (a client that stops reading); at most
//! `max_connections` are open at once, and connections past that are closed on accept.
//! What a slow client can hold is therefore bounded: `max_connections` sockets, none of
//! them silent for longer than these timeouts.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

/// How long a client may take, and how many may be connected.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

impl ConnLimits {
    /// `ZERODB_HEADER_TIMEOUT_SECS`, `ZERODB_BODY_TIMEOUT_SECS`,
    /// `ZERODB_WRITE_TIMEOUT_SECS`, `ZERODB_MAX_CONNECTIONS`.
    pub fn from_settings(settings: &zerodb_domain::Settings) -> anyhow::Result<Self> {
        let d = ConnLimits::default();
        let num = |name: &str, default: u64| {
            settings
                .whole_number(name, default, 1)
                .map_err(anyhow::Error::msg)
        };
        Ok(ConnLimits {
            header_timeout: Duration::from_secs(num(
                "ZERODB_HEADER_TIMEOUT_SECS",
                d.header_timeout.as_secs(),
            )?),
            body_timeout: Duration::from_secs(num(
                "ZERODB_BODY_TIMEOUT_SECS",
                d.body_timeout.as_secs(),
            )?),
            write_timeout: Duration::from_secs(num(
                "ZERODB_WRITE_TIMEOUT_SECS",
                d.write_timeout.as_secs(),
            )?),
            max_connections: num("ZERODB_MAX_CONNECTIONS", d.max_connections as u64)? as usize,
        })
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = zerodb_http::deadline::with_body_deadline(app, limits.body_timeout);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to close rather
                    // than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open");
            continue;
        };
        // SSE events are small writes: with Nagle on, each waits for the previous one's
        // ACK, which a client's delayed-ACK timer holds for up to 40 ms.
        tcp.set_nodelay(true).ok();
        // Who is asking, for limits per source address (instant-db).
        let ip = zerodb_http::ClientAddr(peer.ip());
        let service = TowerToHyperService::new(tower::util::MapRequest::new(
            app.clone(),
            move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ip);
                req
            },
        ));
        let io = WriteDeadline::new(tcp, limits.write_timeout);
        let conn = http.serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away or breaks the protocol only ends its connection.
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A socket whose writes may not stall: a write the peer does not take within `after`
/// (measured from the first write that had to wait, reset by any progress) fails, which
/// ends the connection. A client that stops reading a response, or a stream, cannot hold
/// its connection, its task and the response's state.
struct WriteDeadline<T> {
    io: T,
    after: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(io: T, after: Duration) -> Self {
        WriteDeadline {
            io,
            after,
            stalled: None,
        }
    }

    /// After a write that could not proceed: pending until the deadline, then an error.
    fn stall<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let after = self.after;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took nothing for {after:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(
        &mut self,
        r: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stall(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progressed(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.progressed(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_shutdown(cx);
        self.progressed(r, cx)
    }
}
