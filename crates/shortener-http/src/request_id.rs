//! Request ids, end to end: every response carries `X-Request-Id`, every log line written
//! while the request is handled carries `request_id` (see `telemetry.rs`), and every
//! problem document carries it too (see `problem.rs`), so an operator can go from what a
//! client quotes to the lines that explain it.
//!
//! The id is the client's own when it sent a sane one (a proxy or the client already
//! named the request), otherwise a fresh one. [`RequestIds`] is the outermost layer of the
//! App, redirects included, so it is written to cost next to nothing: the id is 48 bytes
//! (a generated one's text, or the client's header value shared, not copied), the current
//! one is a task-local (no span: a span cost the cached redirect a third of its rate), a
//! generated id comes from a per-thread sequence rather than a cryptographic generator,
//! and the one allocation is the header value of a generated id. Measured in process by
//! the ignored test `measure_the_cost_per_request` below (see `bench/README.md`).

use std::cell::Cell;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use rand::RngExt;
use tokio::task::futures::TaskLocalFuture;

/// The header, in requests and responses.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id taken from a client, in bytes.
pub const MAX_LEN: usize = 128;

/// Length of a generated id: 128 bits in lowercase hex.
const GENERATED_LEN: usize = 32;

tokio::task_local! {
    /// The id of the request whose future is being polled.
    static CURRENT: RequestId;
}

/// A request's id: 1 to [`MAX_LEN`] bytes of visible ASCII (`0x21..=0x7E`), so it fits a
/// header, a log line and a JSON string as it is, and cannot forge a second log line.
/// Small (48 bytes), because one is made for every request and the task-local moves it in
/// and out at every poll: a generated id is held as its text, a client's as the header
/// value it came in (shared with the request, not copied).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestId(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// 32 lowercase hex characters (see [`RequestId::generate`]).
    Generated([u8; GENERATED_LEN]),
    /// A client's id, checked to be visible ASCII of at most [`MAX_LEN`] bytes.
    Sent(HeaderValue),
}

/// One thread's source of generated ids.
struct Sequence {
    prefix: u64,
    key: u64,
    next: Cell<u64>,
}

thread_local! {
    static SEQUENCE: Sequence = {
        let mut rng = rand::rng();
        Sequence { prefix: rng.random(), key: rng.random(), next: Cell::new(0) }
    };
}

impl Sequence {
    fn next(&self) -> u128 {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        (u128::from(self.prefix) << 64) | u128::from(scramble(n ^ self.key))
    }
}

/// Each byte's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [HEX[b >> 4], HEX[b & 0xF]];
        b += 1;
    }
    pairs
};

/// SplitMix64's finaliser: a bijection of `u64`, so distinct inputs stay distinct.
fn scramble(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Why a client's id was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequestId {
    /// No bytes at all.
    #[error("a request id cannot be empty")]
    Empty,
    /// More than [`MAX_LEN`] bytes.
    #[error("a request id is at most {MAX_LEN} bytes")]
    TooLong,
    /// A byte outside visible ASCII: a space, a control character, non-ASCII.
    #[error("a request id is visible ASCII only (0x21 to 0x7E)")]
    NotVisibleAscii,
}

impl RequestId {
    /// `raw` as an id, if it is one: 1 to [`MAX_LEN`] bytes, each visible ASCII.
    pub fn parse(raw: &[u8]) -> Result<RequestId, InvalidRequestId> {
        check(raw)?;
        HeaderValue::from_bytes(raw)
            .map(|value| RequestId(Repr::Sent(value)))
            // Visible ASCII is always a valid header value.
            .map_err(|_| InvalidRequestId::NotVisibleAscii)
    }

    /// The client's id in `value`, if it is one; the value is kept, not copied.
    fn sent(value: &HeaderValue) -> Result<RequestId, InvalidRequestId> {
        check(value.as_bytes())?;
        Ok(RequestId(Repr::Sent(value.clone())))
    }

    /// A fresh id, 32 lowercase hex characters: the thread's random 64-bit prefix, then
    /// its next sequence number scrambled by a bijection keyed per thread. Unique (the
    /// prefixes are 64 random bits, the sequence never repeats within a thread) and not
    /// guessable from another id, at a fraction of a cryptographic generator's cost per
    /// request (an id names a request; it is not a secret).
    pub fn generate() -> RequestId {
        let bytes = SEQUENCE.with(Sequence::next).to_be_bytes();
        let mut text = [0; GENERATED_LEN];
        for i in 0..bytes.len() {
            let [high, low] = HEX_PAIRS[usize::from(bytes[i])];
            text[2 * i] = high;
            text[2 * i + 1] = low;
        }
        RequestId(Repr::Generated(text))
    }

    /// The header value that carries this id in an answer.
    fn header_value(&self) -> Option<HeaderValue> {
        match &self.0 {
            Repr::Generated(text) => HeaderValue::from_bytes(text).ok(),
            Repr::Sent(value) => Some(value.clone()),
        }
    }

    /// The id of the request being handled, when called from code that runs inside one
    /// (handlers, middleware inside [`RequestIds`], what they log); `None` elsewhere
    /// (start-up, background tasks, tasks a request only hands work to).
    pub fn current() -> Option<RequestId> {
        CURRENT.try_get().ok()
    }

    /// Runs `f` with `id` as the current request's id: the middleware's own synchronous
    /// work, and tests.
    pub(crate) fn in_scope<R>(id: RequestId, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(id, f)
    }

    /// `work` with the current request's id (if any) current while it runs, wherever it
    /// is polled: for a task a request spawns to do that request's own work (the export's
    /// producer), whose log lines belong to the request. Not for tasks that serve many
    /// requests at once (the redirect's batched lookups, grouped creates): their lines
    /// belong to none, and each request's failure is logged at the edge, with its id.
    pub fn carried<F: Future>(work: F) -> impl Future<Output = F::Output> {
        let id = RequestId::current();
        async move {
            match id {
                Some(id) => CURRENT.scope(id, work).await,
                None => work.await,
            }
        }
    }

    /// The bytes: visible ASCII only.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Generated(text) => text,
            Repr::Sent(value) => value.as_bytes(),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Visible ASCII by construction, so always UTF-8.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl serde::Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Whether `raw` may be an id.
fn check(raw: &[u8]) -> Result<(), InvalidRequestId> {
    if raw.is_empty() {
        return Err(InvalidRequestId::Empty);
    }
    if raw.len() > MAX_LEN {
        return Err(InvalidRequestId::TooLong);
    }
    if !raw.iter().all(|b| (0x21..=0x7E).contains(b)) {
        return Err(InvalidRequestId::NotVisibleAscii);
    }
    Ok(())
}

/// The id for `req`: the client's own when it is sane, a fresh one otherwise.
fn pick(req: &ServiceRequest) -> RequestId {
    req.headers()
        .get(HEADER)
        .and_then(|sent| RequestId::sent(sent).ok())
        .unwrap_or_else(RequestId::generate)
}

/// The middleware: picks the request's id, runs everything inside it with that id
/// current, and answers with the id in `X-Request-Id`. The outermost layer of the App, so
/// every response of the App carries it, error responses included.
pub struct RequestIds;

impl<S, B> Transform<S, ServiceRequest> for RequestIds
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestIdService<S>;
    type InitError = ();
    type Future = Ready<Result<RequestIdService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestIdService { service }))
    }
}

/// [`RequestIds`] around the App's service.
pub struct RequestIdService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for RequestIdService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = WithRequestId<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let id = pick(&req);
        let answer = id.header_value();
        let inner = RequestId::in_scope(id.clone(), || self.service.call(req));
        WithRequestId {
            inner: CURRENT.scope(id, inner),
            answer,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, run with the request's id current; answers with the id.
    pub struct WithRequestId<F> {
        #[pin]
        inner: TaskLocalFuture<RequestId, F>,
        // The id's header value, made before the request ran.
        answer: Option<HeaderValue>,
    }
}

impl<F, B> Future for WithRequestId<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<B>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let answer = this.answer.take();
        Poll::Ready(match result {
            Ok(mut res) => {
                if let Some(value) = answer {
                    res.headers_mut().insert(HEADER, value);
                }
                Ok(res)
            }
            Err(error) => Err(Unanswered {
                error,
                // The header value was made from a sane id, so it parses back to it.
                id: answer
                    .and_then(|value| RequestId::sent(&value).ok())
                    .unwrap_or_else(RequestId::generate),
            }
            .into()),
        })
    }
}

/// An error that no layer inside turned into a response. actix renders it after the
/// request's future is gone, so its response is made here with the id current again (the
/// problem document and its log line then name the request) and carries the header.
struct Unanswered {
    error: actix_web::Error,
    id: RequestId,
}

impl fmt::Debug for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl actix_web::ResponseError for Unanswered {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut res = RequestId::in_scope(self.id.clone(), || self.error.error_response());
        if let Some(value) = self.id.header_value() {
            res.headers_mut().insert(HEADER, value);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::test as t;
    use actix_web::{App, HttpResponse, web};

    use super::*;

    fn is_generated(id: &str) -> bool {
        id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    #[test]
    fn visible_ascii_of_1_to_128_bytes_is_an_id() {
        for sane in [
            "a",
            "req-42",
            "A~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
            &"x".repeat(128),
        ] {
            let id = RequestId::parse(sane.as_bytes()).unwrap();
            assert_eq!(id.as_str(), sane);
            assert_eq!(id.to_string(), sane);
        }
    }

    #[test]
    fn anything_else_is_refused() {
        use InvalidRequestId::*;
        for (insane, why) in [
            (&b""[..], Empty),
            (&[b'x'; 129][..], TooLong),
            (b"two words", NotVisibleAscii),
            (b"line\nbreak", NotVisibleAscii),
            (b"tab\there", NotVisibleAscii),
            (b"nul\0", NotVisibleAscii),
            (b"del\x7f", NotVisibleAscii),
            ("caf\u{e9}".as_bytes(), NotVisibleAscii),
            (b"\xff", NotVisibleAscii),
        ] {
            assert_eq!(RequestId::parse(insane), Err(why), "{insane:?}");
        }
    }

    #[test]
    fn generated_ids_are_32_lowercase_hex_and_differ() {
        let ids: Vec<RequestId> = (0..1000).map(|_| RequestId::generate()).collect();
        assert!(ids.iter().all(|id| is_generated(id.as_str())), "{ids:?}");
        let distinct: std::collections::HashSet<&str> = ids.iter().map(|id| id.as_str()).collect();
        assert_eq!(distinct.len(), ids.len());
        assert!(
            RequestId::parse(ids[0].as_bytes()).is_ok(),
            "a generated id is sane"
        );
    }

    #[test]
    fn the_current_id_exists_only_inside_a_request() {
        assert_eq!(RequestId::current(), None);
        let id = RequestId::parse(b"inside").unwrap();
        assert_eq!(
            RequestId::in_scope(id.clone(), RequestId::current),
            Some(id)
        );
        assert_eq!(RequestId::current(), None);
    }

    #[actix_web::test]
    async fn work_a_request_hands_to_a_task_keeps_its_id() {
        let id = RequestId::parse(b"handed-on").unwrap();
        let work = RequestId::in_scope(id.clone(), || {
            RequestId::carried(async { RequestId::current() })
        });
        assert_eq!(actix_web::rt::spawn(work).await.unwrap(), Some(id));
        let work = RequestId::carried(async { RequestId::current() });
        assert_eq!(actix_web::rt::spawn(work).await.unwrap(), None);
    }

    #[test]
    fn it_serialises_as_a_string() {
        let id = RequestId::parse(b"a\"b\\c").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""a\"b\\c""#);
    }

    /// Answers with the id the handler sees as current.
    async fn echo_current() -> HttpResponse {
        let current = RequestId::current().map(|id| id.to_string());
        HttpResponse::Ok().body(current.unwrap_or_default())
    }

    /// Fails, past every layer that could turn the error into a response.
    async fn fail_in_middleware(
        _: ServiceRequest,
        _: actix_web::middleware::Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        Err::<ServiceResponse, _>(crate::Error::RouteNotFound.into())
    }

    #[actix_web::test]
    async fn the_middleware_echoes_a_sane_id_replaces_others_and_makes_it_current() {
        let app = t::init_service(
            App::new()
                .wrap(RequestIds)
                .route("/", web::get().to(echo_current)),
        )
        .await;
        let sent = t::TestRequest::get()
            .insert_header((HEADER, "client-7"))
            .to_request();
        let res = t::call_service(&app, sent).await;
        assert_eq!(res.headers().get(HEADER).unwrap(), "client-7");
        assert_eq!(t::read_body(res).await, "client-7");

        for insane in [&b"two words"[..], &[b'y'; 129], b"tab\t", b"\xc3\xa9"] {
            let sent = t::TestRequest::get()
                .insert_header((HEADER, HeaderValue::from_bytes(insane).unwrap()))
                .to_request();
            let res = t::call_service(&app, sent).await;
            let header = id_in(res.headers());
            assert!(is_generated(&header), "{insane:?} -> {header}");
            assert_eq!(t::read_body(res).await, header.as_bytes());
        }
    }

    /// What [`RequestIds`] costs a request without an id of its own (every redirect of
    /// the bench): a 302 through it and straight, interleaved batches on one thread.
    /// Run by hand: `cargo test --release -p shortener-http --lib
    /// request_id::tests::measure_the_cost_per_request -- --ignored --nocapture`.
    #[actix_web::test]
    #[ignore = "a measurement"]
    async fn measure_the_cost_per_request() {
        use crate::cost;

        let with = RequestIds
            .new_transform(cost::found())
            .await
            .unwrap_or_else(|()| unreachable!());
        cost::extra_ns("request-id-cost-ns", &with, &cost::found(), || {}).await;
    }

    /// The `X-Request-Id` of an answer.
    fn id_in(headers: &actix_web::http::header::HeaderMap) -> String {
        headers.get(HEADER).unwrap().to_str().unwrap().to_owned()
    }

    #[actix_web::test]
    async fn an_error_no_layer_answered_is_answered_with_the_id() {
        let app = t::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(fail_in_middleware))
                .wrap(RequestIds)
                .route("/", web::get().to(echo_current)),
        )
        .await;
        // What actix does with an error the App's service ends with.
        let Err(error) = app.call(t::TestRequest::get().to_request()).await else {
            panic!("the middleware in front answers with an error");
        };
        let res = error.error_response();
        assert_eq!(res.status(), 404);
        let id = id_in(res.headers());
        assert!(is_generated(&id), "{id}");
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["request_id"], id.as_str(), "{problem}");
    }
}
