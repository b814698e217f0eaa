//! A deadline for a request's whole body, for servers that read bodies off the socket
//! themselves (zerodb-local): a client that sends its headers and then trickles (or
//! stops sending) its body is answered 408 when the deadline passes, instead of holding
//! a connection and a task for as long as it likes. Behind API Gateway a function gets
//! whole bodies, so the Lambda functions do not need it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

/// The error a body past its deadline yields; the extractors answer it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// `inner`, failing with [`BodyTimedOut`] once `after` has passed since the request's
/// headers arrived (the whole body, not the gap between two of its chunks, so a trickle
/// of one byte a second is cut off too).
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    after: Duration,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(self.after))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Gives every request's body `after` to arrive in full.
pub fn with_body_deadline(router: Router, after: Duration) -> Router {
    router.layer(axum::middleware::map_request(
        move |req: Request| async move {
            req.map(|inner| {
                Body::new(DeadlineBody {
                    inner,
                    deadline: Box::pin(tokio::time::sleep(after)),
                    after,
                })
            })
        },
    ))
}

/// Whether a body error (anywhere in its source chain) is a passed deadline.
pub fn timed_out(err: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<BodyTimedOut>() {
            return Some(t.0);
        }
        cur = e.source();
    }
    None
}
