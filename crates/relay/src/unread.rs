//! `Connection: close` on an answer to a request whose body the relay did not read to its end.
//!
//! The relay answers some requests before reading their bodies: a token it does not know, a
//! route that does not exist, a body over the limit. The unread bytes would be taken for the
//! next request, so hyper does not keep that connection: it closes it after the answer. It
//! decides so only once it notices the body was dropped, after the answer's head is written,
//! so the answer did not say it (hyper 1.x adds no `Connection: close` of its own then). A
//! client pooled the connection and could send its next request into the close and lose it:
//! reqwest's `IncompleteMessage`, the likeliest cause of the one seen in the relay's `/v1`
//! fuzz (a request after a refused one whose body came after its head; that run's seed was
//! not kept, so it was not replayed). The relay client resends what is safe to
//! resend; other clients need not. The answer now says the connection closes, which both ends
//! act on: hyper closes after it, and the client does not pool the connection.
//!
//! Whether a body was read is known only here, where the answer is made: a wrapper around the
//! body notes when it has given its last byte. A body hyper finds empty from the start (a
//! `GET`, `Content-Length: 0`) counts as read.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, Version, header};
use hyper::body::{Body as HttpBody, Frame, SizeHint};

/// The middleware: runs the request with its body watched, and marks the answer when the body
/// was left unread on an HTTP/1.1 connection (HTTP/1.0 closes unless asked to keep alive, and
/// the relay serves no HTTP/2).
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    let kept_alive = request.version() == Version::HTTP_11;
    let (parts, body) = request.into_parts();
    let watched = Watched::new(body);
    let read = Arc::clone(&watched.read);
    let mut response = next
        .run(Request::from_parts(parts, Body::new(watched)))
        .await;
    if kept_alive && !read.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that notes when it has been read to its end.
struct Watched {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl Watched {
    fn new(inner: Body) -> Self {
        let read = Arc::new(AtomicBool::new(inner.is_end_stream()));
        Self { inner, read }
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
