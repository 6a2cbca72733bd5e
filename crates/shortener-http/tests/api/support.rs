//! What every test here starts from: the real app on port 0 against a database of its
//! own (`TestApp`; or over any database's URLs, `TestApp::spawn_over`), a client of it
//! (`Api`), and the accounts, keys and links a test needs, made through the API as an
//! operator and a customer make them: `app.account("Acme").await` is a new account's id,
//! `app.account("Acme").with_key().await` its id and a key of its own, and
//! `app.link(&key, body)` / `app.code(&key, url)` a link.

use std::future::{Future, IntoFuture};
use std::net::TcpListener;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use awc::http::{Method, StatusCode};
use serde_json::{Value, json};
use shortener_app::ManualClock;
use shortener_http::config;
use shortener_testing::TestDb;

pub const ADMIN_KEY: &str = "test-bootstrap-admin-key-0123456789abcdef";

/// The app, started for one test; a client of it through `Deref` to [`Api`]. `db` is the
/// test's hold on the database the app runs on: its own [`TestDb`], or `()` when the test
/// keeps the database itself (a [`shortener_testing::PrivatePostgres`] it stops and starts).
pub struct TestApp<D = Arc<TestDb>> {
    api: Api,
    pub db: D,
    /// The app's clock: it stands still until the test moves it.
    pub clock: Arc<ManualClock>,
    handle: ServerHandle,
    clicks: shortener_app::ClickCounter,
    _background: shortener_http::Background,
}

/// A client of a running service: requests, and the accounts, keys and links tests start
/// from, made through its API with the operator's key.
pub struct Api {
    pub base: String,
    client: awc::Client,
    admin_key: String,
}

/// A response, read fully.
pub struct Reply {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts a problem+json answer with this status and slug.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(
            self.body["type"],
            format!("/problems/{slug}"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_at(0, extra).await
    }

    /// Starts the app with its clock `offset_secs` away from the wall clock.
    pub async fn spawn_at(offset_secs: i64, extra: &[(&str, &str)]) -> TestApp {
        let clock = ManualClock::new();
        clock.advance(chrono::Duration::seconds(offset_secs));
        TestApp::spawn_on(Arc::new(TestDb::new().await), clock, extra).await
    }

    /// A second instance of the service on this one's database and at its time, as in a
    /// deployment of several instances behind a load balancer.
    pub async fn spawn_beside(&self) -> TestApp {
        self.spawn_beside_with(&[]).await
    }

    /// [`Self::spawn_beside`] with settings of its own.
    pub async fn spawn_beside_with(&self, extra: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_on(self.db.clone(), self.clock.clone(), extra).await
    }

    async fn spawn_on(db: Arc<TestDb>, clock: Arc<ManualClock>, extra: &[(&str, &str)]) -> TestApp {
        let urls = shortener_http::DatabaseUrls {
            url: db.service_url.clone(),
            owner_url: db.url.clone(),
        };
        TestApp::spawn_over(db, urls, clock, extra).await
    }
}

impl<D> TestApp<D> {
    /// An account named "Acme" on the pro plan (custom codes, tags and the higher limits):
    /// its id and key.
    pub async fn pro_account(&self) -> (String, String) {
        let (id, key) = self.account("Acme").with_key().await;
        let r = self
            .admin(
                Method::POST,
                &format!("/admin/v1/accounts/{id}/subscription/activate"),
                Some(json!({"plan": "pro"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (id, key)
    }

    /// Starts the app on the database at `urls` (`owner_url` migrates, `url` serves), for a
    /// database that is not a [`TestDb`]; the app keeps `db` for the test.
    pub async fn spawn_over(
        db: D,
        urls: shortener_http::DatabaseUrls,
        clock: Arc<ManualClock>,
        extra: &[(&str, &str)],
    ) -> TestApp<D> {
        let mut env: Vec<(String, String)> = vec![
            ("SHORTENER__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            ("SHORTENER__SERVER__WORKERS".into(), "2".into()),
            ("SHORTENER__DATABASE__URL".into(), urls.url.clone()),
            (
                "SHORTENER__DATABASE__OWNER_URL".into(),
                urls.owner_url.clone(),
            ),
            ("SHORTENER__DATABASE__POOL_SIZE".into(), "8".into()),
            ("SHORTENER__ADMIN__BOOTSTRAP_KEY".into(), ADMIN_KEY.into()),
            ("SHORTENER__LOG__FILTER".into(), "warn".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = config::load_from(None, |_| None, env).expect("test settings");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // As in production: migrations (none pending here) as the owner, the service as a
        // role that can only do what the service needs, so a missing grant fails here.
        let running = shortener_http::start(&settings, &urls, listener, clock.clone())
            .await
            .expect("app starts");
        let handle = running.server.handle();
        let background = running.background;
        let clicks = running.clicks;
        actix_web::rt::spawn(running.server);
        TestApp {
            api: Api::at(&format!("http://{}", running.addr), ADMIN_KEY),
            db,
            clock,
            handle,
            clicks,
            _background: background,
        }
    }

    /// Writes the clicks counted so far (they are otherwise written within a second).
    pub async fn flush_clicks(&self) {
        self.clicks.flush().await;
    }

    /// Stops as `serve` does on SIGTERM: stop accepting, drain in-flight requests, then
    /// write every counted click. Returns the clicks that could not be written.
    pub async fn shutdown(&self) -> u64 {
        self.handle.stop(true).await;
        self.clicks.shutdown().await
    }
}

impl<D> Deref for TestApp<D> {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl<D> Drop for TestApp<D> {
    fn drop(&mut self) {
        // `stop` sends the command eagerly; awaiting it here would deadlock, because the
        // server future runs on the very runtime this drop is blocking.
        drop(self.handle.stop(false));
    }
}

impl Api {
    /// A client of the service at `base` (no trailing slash), operated with `admin_key`.
    pub fn at(base: &str, admin_key: &str) -> Api {
        Api {
            base: base.to_owned(),
            admin_key: admin_key.to_owned(),
            client: awc::Client::builder()
                .disable_redirects()
                .timeout(std::time::Duration::from_secs(30))
                .finish(),
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.request_with(method, path, key, body, &[]).await
    }

    /// Like `request`, with extra headers.
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .expect("request sent");
        self.read(&mut res).await
    }

    /// A GET that sends `value`, whatever its bytes, as header `name` (what `request_with`
    /// cannot: a header value that is not visible ASCII).
    pub async fn get_sending(
        &self,
        path: &str,
        key: Option<&str>,
        name: &str,
        value: &[u8],
    ) -> Reply {
        let value = awc::http::header::HeaderValue::from_bytes(value).expect("a header value");
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .insert_header((name, value));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let mut res = req.send().await.expect("request sent");
        self.read(&mut res).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(ct) = ctype {
            req = req.insert_header(("content-type", ct));
        }
        let mut res = req.send_body(body).await.expect("request sent");
        self.read(&mut res).await
    }

    /// A `POST` without a key: `body` as it is, with `ctype` (if any) and `headers`, as a
    /// browser sends a form (`application/x-www-form-urlencoded`).
    pub async fn post_form(
        &self,
        path: &str,
        ctype: Option<&str>,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.post(format!("{}{path}", self.base));
        if let Some(ct) = ctype {
            req = req.insert_header(("content-type", ct));
        }
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let mut res = req.send_body(body.to_owned()).await.expect("request sent");
        self.read(&mut res).await
    }

    async fn read<S>(&self, res: &mut awc::ClientResponse<S>) -> Reply
    where
        S: futures_core::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
    {
        let raw = res
            .body()
            .limit(10 * 1024 * 1024)
            .await
            .expect("body")
            .to_vec();
        Reply {
            status: res.status(),
            headers: res.headers().clone(),
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
            raw,
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        self.request(Method::GET, path, key, None).await
    }

    /// A request with the operator's key.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.request(method, path, Some(&self.admin_key), body)
            .await
    }

    /// An account named `name`, made by the operator: `.await` gives its id,
    /// `.with_key().await` its id and a key of its own.
    pub fn account<'a>(&'a self, name: &'a str) -> NewAccount<'a> {
        NewAccount { api: self, name }
    }

    /// Creates a link to `url` with a generated code; returns the code.
    pub async fn code(&self, key: &str, url: &str) -> String {
        self.link(key, json!({"url": url})).await["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The audit log of link `code`, as its account reads it (newest first, up to 50
    /// entries); asserts 200.
    pub async fn link_log(&self, key: &str, code: &str) -> Reply {
        let path = format!("/api/v1/audit?entity_type=link&entity_id={code}&limit=50");
        let r = self.get(&path, Some(key)).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.body);
        r
    }

    /// PATCHes link `code` with `body`; asserts 200 and returns the Link.
    pub async fn patch_link(&self, key: &str, code: &str, body: Value) -> Value {
        let path = format!("/api/v1/links/{code}");
        let r = self
            .request(Method::PATCH, &path, Some(key), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::OK, "PATCH {path}: {}", r.body);
        r.body
    }

    /// Creates a link; asserts 201.
    pub async fn link(&self, key: &str, body: Value) -> Value {
        let r = self
            .request(Method::POST, "/api/v1/links", Some(key), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }
}

type Made<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// An account about to be made through the admin API; `.await` it for its id.
pub struct NewAccount<'a> {
    api: &'a Api,
    name: &'a str,
}

impl<'a> NewAccount<'a> {
    /// With a key of its own, issued by the operator.
    pub fn with_key(self) -> WithKey<'a> {
        WithKey(self)
    }
}

impl<'a> IntoFuture for NewAccount<'a> {
    type Output = String;
    type IntoFuture = Made<'a, String>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let r = self
                .api
                .admin(
                    Method::POST,
                    "/admin/v1/accounts",
                    Some(json!({"name": self.name})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        })
    }
}

/// An account and its key about to be made; `.await` it for (account id, key).
pub struct WithKey<'a>(NewAccount<'a>);

impl<'a> IntoFuture for WithKey<'a> {
    type Output = (String, String);
    type IntoFuture = Made<'a, (String, String)>;

    fn into_future(self) -> Self::IntoFuture {
        let api = self.0.api;
        Box::pin(async move {
            let id = self.0.await;
            let key = api
                .admin(Method::POST, &format!("/admin/v1/accounts/{id}/keys"), None)
                .await;
            assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
            (id, key.body["key"].as_str().unwrap().to_owned())
        })
    }
}
