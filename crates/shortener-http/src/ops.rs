//! Operations endpoints and the problem-type pages.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, web};

use crate::problem::{self, Slug};
use shortener_app::Chain;

use crate::openapi::Operations;
use crate::{Error, State};

/// 200 while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs.", content_type = "text/plain", body = String, example = "ok")),
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "The database answers (or, with replicas configured, a replica does while the primary does not).", content_type = "text/plain", body = String, example = "ready")),
)]
async fn readyz(state: web::Data<State>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        // Redirects still resolve from a replica: taking the instance out of the load
        // balancer would stop them too. Writes answer 503 meanwhile.
        Err(e) if state.replicas.as_ref().is_some_and(|r| r.any_in_use()) => {
            tracing::warn!(error = %Chain(&e), "the primary does not answer; ready on a replica");
            HttpResponse::Ok()
                .content_type("text/plain")
                .body("ready (the primary does not answer: reading from a replica, writes refused)")
        }
        Err(e) => {
            tracing::warn!(error = %Chain(&e), "readiness check failed");
            problem::respond(Slug::ServiceUnavailable, "the database is not answering")
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a problem type means, for people.
#[utoipa::path(
    get,
    path = "/problems/{slug}",
    tag = "operations",
    params(("slug" = String, Path, description = "A problem slug.", example = "code-taken")),
    responses((status = 200, description = "A page that explains the problem.", content_type = "text/html", body = String)),
)]
async fn problem_page(slug: web::Path<String>) -> Result<HttpResponse, Error> {
    let slug = Slug::from_str_opt(&slug).ok_or(Error::RouteNotFound)?;
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>HTTP status {status}. Problem type <code>/problems/{slug}</code>.</p>\
         <p>{text}</p></body></html>",
        title = escape(slug.title()),
        status = slug.status().as_u16(),
        slug = slug.as_str(),
        text = escape(slug.explanation()),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// Marks an error response that a handler meant to answer with a body of its own, not a
/// problem document: the password form's 401 (in the response's extensions).
#[derive(Debug, Clone, Copy)]
pub struct NotAProblem;

/// Last line of defence: any error response that is not already problem+json (actix's
/// own 405 for a known path with the wrong method, for example) becomes one, unless its
/// handler marked it [`NotAProblem`].
pub fn ensure_problem<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem || res.response().extensions().contains::<NotAProblem>() {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let slug = Slug::for_stray(status);
    let detail = status.canonical_reason().unwrap_or("error").to_lowercase();
    let (req, _) = res.into_parts();
    let replacement: HttpResponse<BoxBody> = problem::respond(slug, detail);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, replacement).map_into_right_body(),
    ))
}

/// `/healthz`, `/readyz`, `/problems/{slug}`.
pub fn routes(ops: &mut Operations) {
    ops.add(__path_healthz, healthz, &[])
        .add(__path_readyz, readyz, &[Slug::ServiceUnavailable])
        .add(__path_problem_page, problem_page, &[Slug::NotFound]);
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use actix_web::test::TestRequest;

    use super::*;

    /// What `ensure_problem` makes of a plain-text response of `status`.
    async fn rewritten(status: u16) -> (u16, serde_json::Value) {
        let status = actix_web::http::StatusCode::from_u16(status).unwrap();
        let res = TestRequest::default()
            .to_srv_response(HttpResponse::build(status).body("actix's own words"));
        let ErrorHandlerResponse::Response(res) = ensure_problem(res).unwrap() else {
            panic!("a response, not a future");
        };
        let status = res.status().as_u16();
        let body = to_bytes(res.into_body()).await.unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn stray_error_responses_become_generic_problems() {
        let (status, body) = rewritten(400).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (400, Some("/problems/validation"))
        );
        let (status, body) = rewritten(409).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (400, Some("/problems/validation"))
        );
        let (status, body) = rewritten(405).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (405, Some("/problems/method-not-allowed"))
        );
        let (status, body) = rewritten(502).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (500, Some("/problems/internal"))
        );
    }
}
