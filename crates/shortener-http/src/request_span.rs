//! The request span of `/api` and `/admin`: one `info` span per request, with its method
//! and matched route, around everything the chain and the handler do, so their log lines
//! say which operation they belong to. The request id is not a field of it: the log
//! formatter adds the current one to every line (`telemetry.rs`). Redirects get no span:
//! with the default `info` filter it cost a third of the cached redirect rate.

use std::future::{Ready, ready};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use tracing::Instrument;
use tracing::instrument::Instrumented;

/// The middleware: see the module's doc.
pub struct RequestSpan;

impl<S, B> Transform<S, ServiceRequest> for RequestSpan
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestSpanService<S>;
    type InitError = ();
    type Future = Ready<Result<RequestSpanService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestSpanService { service }))
    }
}

/// [`RequestSpan`] around a scope's service.
pub struct RequestSpanService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for RequestSpanService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Instrumented<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            route = tracing::field::Empty
        );
        // The pattern is looked up (and allocated) only when the span is recorded.
        if !span.is_disabled() {
            let route = req.match_pattern();
            span.record("route", route.as_deref().unwrap_or("(no route)"));
        }
        let fut = span.in_scope(|| self.service.call(req));
        fut.instrument(span)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, HttpResponse, test, web};

    use super::*;
    use crate::telemetry::tests::Captured;

    async fn logs() -> HttpResponse {
        tracing::info!("inside the handler");
        HttpResponse::Ok().finish()
    }

    #[actix_web::test]
    async fn lines_logged_inside_name_the_method_and_the_route_pattern() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(out.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new().service(
                web::scope("/api/v1")
                    .wrap(RequestSpan)
                    .route("/links/{code}", web::get().to(logs)),
            ),
        )
        .await;
        let res = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/api/v1/links/abc")
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
        let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
        assert!(
            text.contains("request{method=GET route=\"/api/v1/links/{code}\"}"),
            "{text}"
        );
        assert!(text.contains("inside the handler"), "{text}");
    }
}
