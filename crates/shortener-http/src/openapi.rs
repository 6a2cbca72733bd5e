//! The OpenAPI 3.1 document (`GET /api/openapi.json`) and its browsable rendering
//! (`GET /api/docs/`), made from the same table that routes requests.
//!
//! Each handler carries a `#[utoipa::path]` (method, path, parameters, bodies, its own
//! answers). Each module's routes function hands the handler and that annotation together
//! to [`Operations::add`], which both registers the actix route (method and path from the
//! annotation) and documents the operation, adding what its part of the service answers
//! anyway ([`Part`]: authentication, rate limiting, outages) and the problem documents of
//! the slugs the entry names. So a route cannot be served without being documented, nor
//! documented at another path or method than it is served at. `startup.rs` builds the
//! routing, and [`document`] the document, from the same three tables
//! ([`crate::startup::PARTS`]).
//!
//! A new endpoint: annotate the handler with `#[utoipa::path(...)]` (its own answers; the
//! part's are added), derive `ToSchema` / `IntoParams` on its DTOs, add it to its module's
//! routes function with `ops.add(__path_handler, handler, &[the slugs it can answer])`,
//! and refresh `docs/openapi.json` (see the test below).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, OnceLock};

use actix_web::http::{Method, header};
use actix_web::{FromRequest, Handler, HttpResponse, Responder, web};
use serde_json::json;
use utoipa::openapi::example::Example;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem, Paths};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, Content, Header, Info, OpenApi, OpenApiBuilder, Ref, RefOr, Tag,
};
use utoipa::{PartialSchema, ToSchema};
use utoipa_actix_web::OpenApiFactory;

use crate::Error;
use crate::problem::{Problem, Slug};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
/// The security scheme of account keys (`/api/...`).
pub const ACCOUNT_KEY: &str = "accountKey";
/// The security scheme of admin keys (`/admin/...`).
pub const ADMIN_KEY: &str = "adminKey";

/// A part of the service: what every operation in it may answer besides its own answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// No authentication, no rate limit (health, problem pages, the document).
    Public,
    /// `/api/v1`: account keys, the `requests` policy.
    Account,
    /// `/admin/v1`: admin keys, the `admin` policy.
    Admin,
}

impl Part {
    /// The path every operation of the part starts with (actix's scope).
    pub fn prefix(self) -> &'static str {
        match self {
            Part::Public => "",
            Part::Account => "/api/v1",
            Part::Admin => "/admin/v1",
        }
    }

    /// The problems the middleware chain may answer with, before or instead of the handler.
    fn problems(self) -> &'static [Slug] {
        match self {
            Part::Public => &[],
            Part::Account | Part::Admin => &[
                Slug::Unauthorized,
                Slug::Forbidden,
                Slug::RateLimited,
                Slug::ServiceUnavailable,
                Slug::Internal,
            ],
        }
    }

    fn security(self) -> Option<&'static str> {
        match self {
            Part::Public => None,
            Part::Account => Some(ACCOUNT_KEY),
            Part::Admin => Some(ADMIN_KEY),
        }
    }
}

/// A part's routes function: adds each of its operations to the table.
pub type Routes = fn(&mut Operations);

/// One path's routes, in the order they were added, and their methods.
struct Resource {
    path: String,
    routes: Vec<actix_web::Route>,
    methods: Vec<Method>,
    /// A body limit of its own (bytes), instead of the app's.
    body_limit: Option<usize>,
}

impl Resource {
    /// The actix resource at `path`: its routes, and a 405 naming them for other methods.
    /// It is named after its whole template (`template`), which the metrics middleware
    /// reads as the `route` label.
    fn into_actix(self, path: &str, template: &str) -> actix_web::Resource {
        let allow = self
            .methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let resource = web::resource(path).name(template);
        let mut resource = resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, _>(Error::MethodNotAllowed(allow)) }
        }));
        if let Some(limit) = self.body_limit {
            resource = resource
                .app_data(crate::extract::json_config_with(limit))
                .app_data(web::PayloadConfig::default().limit(limit));
        }
        for route in self.routes {
            resource = resource.route(route);
        }
        resource
    }
}

/// The route table of one [`Part`]: every entry is served and documented from one call.
pub struct Operations {
    part: Part,
    resources: Vec<Resource>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
    seen: HashSet<(String, String)>,
}

fn actix_method(m: &HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

impl Operations {
    /// An empty table for `part`.
    pub fn new(part: Part) -> Operations {
        Operations {
            part,
            resources: Vec::new(),
            paths: Paths::new(),
            schemas: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Serves `handler` at the method(s) and path of its `#[utoipa::path]` (`doc`, the
    /// annotation's `__path_<handler>`), and documents it with `problems`: the slugs the
    /// handler itself can answer with (those of its [`Part`] are added here).
    pub fn add<D, H, Args>(&mut self, doc: D, handler: H, problems: &[Slug]) -> &mut Self
    where
        D: utoipa::Path + OpenApiFactory,
        H: Handler<Args>,
        Args: FromRequest + 'static,
        H::Output: Responder + 'static,
    {
        let path = D::path();
        let relative = path.strip_prefix(self.part.prefix()).unwrap_or(&path);
        let mut routes = Vec::new();
        let mut methods = Vec::new();
        for method in D::methods() {
            methods.push(actix_method(&method));
            routes.push(
                web::route()
                    .method(actix_method(&method))
                    .to(handler.clone()),
            );
        }
        match self.resources.iter_mut().find(|r| r.path == relative) {
            Some(resource) => {
                resource.routes.extend(routes);
                resource.methods.extend(methods);
            }
            None => self.resources.push(Resource {
                path: relative.to_owned(),
                routes,
                methods,
                body_limit: None,
            }),
        }
        self.document::<D>(&doc, problems);
        self
    }

    /// The last path added takes bodies up to `limit` bytes (the bulk create's).
    pub fn with_body_limit(&mut self, limit: usize) -> &mut Self {
        if let Some(last) = self.resources.last_mut() {
            last.body_limit = Some(limit);
        }
        self
    }

    /// Documents an operation that no route of this table serves: the redirect, which is
    /// the default service (see `startup.rs`).
    pub fn document_default_service<D>(&mut self, doc: D, problems: &[Slug]) -> &mut Self
    where
        D: utoipa::Path + OpenApiFactory,
    {
        self.document::<D>(&doc, problems);
        self
    }

    fn document<D: utoipa::Path + OpenApiFactory>(&mut self, doc: &D, problems: &[Slug]) {
        let mut paths = doc.paths();
        let several = D::methods().len() > 1;
        for (path, item) in paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                assert!(
                    self.seen.insert((path.clone(), method.to_owned())),
                    "{method} {path} is in the route table twice"
                );
                if several {
                    // One operation id per method: ids must be unique in a document.
                    let id = operation.operation_id.take().unwrap_or_default();
                    operation.operation_id = Some(format!("{id}_{method}"));
                }
                self.complete(operation, problems);
            }
        }
        self.paths.merge(paths);
        doc.schemas(&mut self.schemas);
    }

    /// Adds the part's security, the problem answers and the rate-limit fields.
    fn complete(&self, operation: &mut Operation, problems: &[Slug]) {
        if let Some(scheme) = self.part.security() {
            operation.security = Some(vec![SecurityRequirement::new::<_, [&str; 0], &str>(
                scheme,
                [],
            )]);
        }
        let mut by_status: BTreeMap<u16, Vec<Slug>> = BTreeMap::new();
        for slug in problems.iter().chain(self.part.problems()) {
            let slugs = by_status.entry(slug.status().as_u16()).or_default();
            if !slugs.contains(slug) {
                slugs.push(*slug);
            }
        }
        for (status, slugs) in by_status {
            let limited = slugs.contains(&Slug::RateLimited);
            let response = problem_response(&slugs, limited);
            operation
                .responses
                .responses
                .entry(status.to_string())
                .or_insert(RefOr::T(response));
        }
        if matches!(self.part, Part::Account | Part::Admin) {
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    add_rate_limit_fields(response);
                }
            }
        }
    }

    /// Registers every route of the table on `cfg`, one actix resource per path (so a
    /// known path with another method is a 405). A path with a parameter goes into a
    /// scope of its static prefix, so a request for another path (every redirect) is
    /// turned away by a prefix comparison rather than a pattern.
    pub fn register(self, cfg: &mut web::ServiceConfig) {
        let mut scoped: Vec<(String, Vec<Resource>)> = Vec::new();
        for resource in self.resources {
            match resource.path.find('{') {
                None => {
                    let path = resource.path.clone();
                    let template = format!("{}{path}", self.part.prefix());
                    cfg.service(resource.into_actix(&path, &template));
                }
                Some(at) => {
                    let prefix = resource.path[..at].trim_end_matches('/').to_owned();
                    match scoped.iter_mut().find(|(p, _)| *p == prefix) {
                        Some((_, list)) => list.push(resource),
                        None => scoped.push((prefix, vec![resource])),
                    }
                }
            }
        }
        // After every static resource, so a static path equal to a scope's prefix wins.
        for (prefix, resources) in scoped {
            let mut scope = web::scope(&prefix);
            for resource in resources {
                let rest = resource.path[prefix.len()..].to_owned();
                let template = format!("{}{}", self.part.prefix(), resource.path);
                scope = scope.service(resource.into_actix(&rest, &template));
            }
            cfg.service(scope);
        }
    }
}

/// The response of `status` listing the problems `slugs`, each with an example.
fn problem_response(slugs: &[Slug], limited: bool) -> Response {
    let description = slugs
        .iter()
        .map(|s| format!("`{}`: {}", s.as_str(), s.title()))
        .collect::<Vec<_>>()
        .join("; ");
    let examples = slugs.iter().map(|slug| {
        (
            slug.as_str().to_owned(),
            RefOr::Ref(Ref::new(format!("#/components/examples/{}", slug.as_str()))),
        )
    });
    let content = Content::builder()
        .schema(Some(Ref::from_schema_name(Problem::name())))
        .examples_from_iter(examples)
        .build();
    let mut response = Response::builder()
        .description(format!("Problem: {description}."))
        .content("application/problem+json", content);
    if limited || slugs.contains(&Slug::ServiceUnavailable) {
        response = response.header_ref("Retry-After", header_ref("Retry-After"));
    }
    if slugs.contains(&Slug::Unauthorized) {
        response = response.header(
            "WWW-Authenticate",
            Header::builder()
                .schema(Some(string_schema()))
                .example(Some(json!("Bearer")))
                .build(),
        );
    }
    response.build()
}

/// The example problem document of `slug`, kept once in `components/examples`.
fn problem_example(slug: Slug) -> Example {
    let mut value = json!({
        "type": format!("/problems/{}", slug.as_str()),
        "title": slug.title(),
        "status": slug.status().as_u16(),
        "detail": example_detail(slug),
    });
    if slug == Slug::RateLimited {
        value["violated-policies"] = json!(["requests"]);
    }
    Example::builder()
        .summary(slug.title())
        .value(Some(value))
        .build()
}

fn example_detail(slug: Slug) -> &'static str {
    match slug {
        Slug::InvalidUrl => "url must be an absolute http or https URL",
        Slug::InvalidCode => "code must be 3 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
        Slug::CodeTaken => "code `launch` is already taken",
        Slug::NotFound => "no such resource",
        Slug::LinkExpired => "this link has expired",
        Slug::Unauthorized => "missing, unknown or revoked API key",
        Slug::Forbidden => "admin keys cannot call /api; use an account key",
        Slug::QuotaExceeded => "the trial plan allows 100 links a month",
        Slug::SubscriptionInactive => "the subscription has expired",
        Slug::InvalidTransition => "cannot renew: the subscription is in trial",
        Slug::VersionMismatch => "If-Match names version 2, the current version is 3",
        Slug::RateLimited => "rate limit `requests` exceeded; retry after 12 seconds",
        Slug::IdempotencyConflict => {
            "Idempotency-Key `k1` was first used with another request (path or body)"
        }
        Slug::IdempotencyInProgress => {
            "a request with Idempotency-Key `k1` is still running; retry when it has answered"
        }
        Slug::PayloadTooLarge => "request body is larger than 64 KiB",
        Slug::Validation => "limit must be between 1 and 500",
        Slug::MethodNotAllowed => "this path exists, but not with this method",
        Slug::ServiceUnavailable => "the database is not answering; retry shortly",
        Slug::Internal => "internal error; see the service log",
    }
}

fn string_schema() -> RefOr<Schema> {
    RefOr::T(Schema::Object(Object::with_type(Type::String)))
}

fn integer_schema(minimum: i64) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        Object::builder()
            .schema_type(Type::Integer)
            .minimum(Some(minimum))
            .build(),
    ))
}

/// The headers every `/api` and `/admin` answer may carry, kept once in
/// `components/headers`: `RateLimit-Policy` and `RateLimit` while the key's policy is on,
/// `Retry-After` on a 429 or a 503.
fn rate_limit_headers() -> [(&'static str, Header); 3] {
    [
        (
            "RateLimit-Policy",
            Header::builder()
                .schema(Some(string_schema()))
                .description(Some(
                    "The policy that applied (draft-ietf-httpapi-ratelimit-headers): its \
                     name, `q` requests per `w` seconds. Absent when that policy is off.",
                ))
                .example(Some(json!("\"requests\";q=600;w=60")))
                .build(),
        ),
        (
            "RateLimit",
            Header::builder()
                .schema(Some(string_schema()))
                .description(Some(
                    "The policy's state: `r` requests left, `t` seconds until the window \
                     has room again. Absent when that policy is off.",
                ))
                .example(Some(json!("\"requests\";r=599;t=60")))
                .build(),
        ),
        (
            "Retry-After",
            Header::builder()
                .schema(Some(integer_schema(0)))
                .description(Some(
                    "Whole seconds to wait before trying again: on a 429 the policy lets a \
                     request through by then; on a 503, 1.",
                ))
                .build(),
        ),
    ]
}

fn header_ref(name: &str) -> Ref {
    Ref::new(format!("#/components/headers/{name}"))
}

fn add_rate_limit_fields(response: &mut Response) {
    for name in ["RateLimit-Policy", "RateLimit"] {
        response
            .headers
            .insert(name.to_owned(), RefOr::Ref(header_ref(name)));
    }
}

/// The whole document: every part's table, the problem schema, both key schemes.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    let mut schemas: Vec<(String, RefOr<Schema>)> =
        vec![(Problem::name().into_owned(), Problem::schema())];
    for (part, routes) in crate::startup::PARTS {
        let mut ops = Operations::new(*part);
        routes(&mut ops);
        paths.merge(ops.paths);
        schemas.extend(ops.schemas);
    }
    let mut components = Components::new();
    for (name, schema) in schemas {
        components.schemas.entry(name).or_insert(schema);
    }
    for (name, header) in rate_limit_headers() {
        components.headers.insert(name.to_owned(), RefOr::T(header));
    }
    for slug in Slug::ALL {
        components
            .examples
            .insert(slug.as_str().to_owned(), RefOr::T(problem_example(*slug)));
    }
    components.add_security_scheme(
        ACCOUNT_KEY,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An account key (`shk_...`), made by an operator with \
                     `POST /admin/v1/accounts/{id}/keys`. Calls `/api/...` for its account.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        ADMIN_KEY,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An admin key (`admin.bootstrap_key`, or one an operator made). Calls \
                     `/admin/...`.",
                ))
                .build(),
        ),
    );
    let tags: BTreeSet<String> = paths
        .paths
        .values()
        .flat_map(operations)
        .flat_map(|op| op.tags.clone().unwrap_or_default())
        .collect();
    OpenApiBuilder::new()
        .info(
            Info::builder()
                .title("shortener")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .tags(Some(tags.into_iter().map(Tag::new)))
        .build()
}

/// Every operation of a path item, by its method's name.
fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(name, op)| op.as_mut().map(|op| (name, op)))
    .collect()
}

/// Every operation of a path item.
pub fn operations(item: &PathItem) -> impl Iterator<Item = &Operation> {
    [
        &item.get,
        &item.put,
        &item.post,
        &item.delete,
        &item.options,
        &item.head,
        &item.patch,
        &item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_ref)
}

const DESCRIPTION: &str = "A self-hosted URL shortener. Errors are RFC 9457 \
`application/problem+json` documents whose `type` is `/problems/<slug>` (relative to the \
service's public URL, where `GET /problems/<slug>` explains it). `/api/...` takes an \
account key, `/admin/...` an admin key, as `Authorization: Bearer <key>`. Lists page with \
`limit` (1 to 500, default 50) and the opaque `cursor` of the previous page's \
`next_cursor`. Bodies are JSON objects of at most 64 KiB; unknown fields are refused. \
Every `/api` and `/admin` answer carries the `RateLimit-Policy` and `RateLimit` fields of \
its key's policy; a 429 adds `Retry-After`. Every answer carries `X-Request-Id`: the \
request's own when it sent one of 1 to 128 visible ASCII characters, otherwise a new one \
(32 lowercase hex characters); problem documents repeat it as `request_id`, and the \
service's log lines of that request carry it.";

/// The document as served: built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_pretty_json().unwrap_or_else(|_| "{}".into()))
}

/// The OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "documentation",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service.",
        content_type = "application/json", body = serde_json::Value)),
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

fn swagger_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // No validator badge: it would send the document to another host.
            Arc::new(utoipa_swagger_ui::Config::new([DOCUMENT_PATH]).validator_url("none"))
        })
        .clone()
}

fn swagger_file(file: &str) -> Result<HttpResponse, Error> {
    match utoipa_swagger_ui::serve(file, swagger_config()) {
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(file.bytes.into_owned())),
        Ok(None) => Err(Error::RouteNotFound),
        Err(e) => Err(Error::App(shortener_app::AppError::internal(format!(
            "rendering Swagger UI's {file}: {e}"
        )))),
    }
}

/// The browsable documentation lives at `/api/docs/`, whose files are relative to it.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "documentation",
    responses((status = 308, description = "To `/api/docs/`.",
        headers(("Location" = String, description = "`/api/docs/`")))),
)]
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/api/docs/"))
        .finish()
}

/// The browsable documentation (Swagger UI, served from this binary: no other host).
#[utoipa::path(
    get,
    path = "/api/docs/",
    tag = "documentation",
    responses((status = 200, description = "Swagger UI's page.", content_type = "text/html", body = String)),
)]
async fn docs_index() -> Result<HttpResponse, Error> {
    swagger_file("index.html")
}

/// A file of the browsable documentation.
#[utoipa::path(
    get,
    path = "/api/docs/{file}",
    tag = "documentation",
    params(("file" = String, Path, description = "A file of Swagger UI.", example = "swagger-ui.css")),
    responses((status = 200, description = "The file.", content(
        (String = "text/html"), (String = "text/css"), (String = "text/javascript"),
        (String = "application/javascript"), (String = "image/png"),
        (String = "application/json"), (String = "application/octet-stream"),
    ))),
)]
async fn docs_file(file: web::Path<String>) -> Result<HttpResponse, Error> {
    swagger_file(&file)
}

/// `/api/openapi.json` and `/api/docs`.
pub fn routes(ops: &mut Operations) {
    ops.add(__path_openapi_json, openapi_json, &[])
        .add(__path_docs_redirect, docs_redirect, &[])
        .add(__path_docs_index, docs_index, &[Slug::Internal])
        .add(
            __path_docs_file,
            docs_file,
            &[Slug::NotFound, Slug::Internal],
        );
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn snapshot_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// The committed `docs/openapi.json` is the document the code makes, so every change
    /// to the API shows in review as a change to that file.
    #[test]
    fn the_committed_openapi_snapshot_is_current() {
        let current = format!("{}\n", document_json());
        let path = snapshot_path();
        if std::env::var_os("UPDATE_OPENAPI_SNAPSHOT").is_some() {
            std::fs::write(&path, &current).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "docs/openapi.json is not the document the code makes. If the change to the API \
             is meant, refresh the snapshot and commit it:\n\n    \
             UPDATE_OPENAPI_SNAPSHOT=1 cargo test -p shortener-http openapi\n"
        );
    }

    /// Every `$ref` names a schema the document has.
    #[test]
    fn every_reference_resolves() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        let mut refs = Vec::new();
        fn walk(v: &serde_json::Value, refs: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                        refs.push(r.clone());
                    }
                    m.values().for_each(|v| walk(v, refs));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let mut at = &doc;
            for step in r.strip_prefix("#/").unwrap().split('/') {
                at = &at[step];
            }
            assert!(at.is_object(), "{r} does not resolve");
        }
    }
}
