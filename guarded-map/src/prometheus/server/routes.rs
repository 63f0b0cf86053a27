//! What the server answers: `GET`/`HEAD /metrics` (and a pointer at `/`), 405 for other methods
//! there, 404 elsewhere. Request bodies are never read.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING,
};
use hyper::{Method, Request, Response, StatusCode, Version};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::prometheus::recorder::{CONTENT_TYPE as METRICS_TYPE, render};

const TEXT: &str = "text/plain; charset=utf-8";

pub(super) fn respond<B>(request: &Request<B>, handle: &PrometheusHandle) -> Response<Full<Bytes>> {
    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    let mut response = match (request.uri().path(), readable) {
        ("/metrics", true) => reply(StatusCode::OK, METRICS_TYPE, render(handle)),
        ("/", true) => reply(
            StatusCode::OK,
            TEXT,
            "guarded-map: metrics at /metrics\n".into(),
        ),
        ("/metrics" | "/", false) => {
            let mut response = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                TEXT,
                "method not allowed: use GET or HEAD\n".into(),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: see /metrics\n".into(),
        ),
    };
    // The body is never read: rather than wait for it (or read it away), end the connection after
    // the reply. HTTP/2 ends a stream's body by itself and forbids the header.
    if has_body(request) && request.version() <= Version::HTTP_11 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn has_body<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0")
}
