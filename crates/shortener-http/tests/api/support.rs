//! Starts the real app on port 0 against a database of its own, and talks to it over HTTP.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use awc::http::{Method, StatusCode};
use serde_json::{Value, json};
use shortener_app::ManualClock;
use shortener_http::config;
use shortener_testing::TestDb;

pub const ADMIN_KEY: &str = "test-bootstrap-admin-key-0123456789abcdef";

pub struct TestApp {
    pub base: String,
    pub db: Arc<TestDb>,
    /// The app's clock: it stands still until the test moves it.
    pub clock: Arc<ManualClock>,
    handle: ServerHandle,
    client: awc::Client,
    clicks: shortener_app::ClickCounter,
    _sweeper: shortener_http::Background,
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
        TestApp::spawn_on(self.db.clone(), self.clock.clone(), &[]).await
    }

    async fn spawn_on(db: Arc<TestDb>, clock: Arc<ManualClock>, extra: &[(&str, &str)]) -> TestApp {
        let mut env: Vec<(String, String)> = vec![
            ("SHORTENER__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            ("SHORTENER__SERVER__WORKERS".into(), "2".into()),
            ("SHORTENER__DATABASE__URL".into(), db.url.clone()),
            ("SHORTENER__DATABASE__POOL_SIZE".into(), "8".into()),
            ("SHORTENER__ADMIN__BOOTSTRAP_KEY".into(), ADMIN_KEY.into()),
            ("SHORTENER__LOG__FILTER".into(), "warn".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = config::load_from(None, |_| None, env).expect("test settings");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = shortener_http::start(&settings, &db.url, listener, clock.clone())
            .await
            .expect("app starts");
        let handle = running.server.handle();
        let sweeper = running.sweeper;
        let clicks = running.clicks;
        actix_web::rt::spawn(running.server);
        TestApp {
            base: format!("http://{}", running.addr),
            db,
            clock,
            handle,
            clicks,
            _sweeper: sweeper,
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

    pub async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        self.request(Method::GET, path, key, None).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.request(method, path, Some(ADMIN_KEY), body).await
    }

    /// Creates an account and a key for it; returns (account id, key).
    pub async fn account(&self, name: &str) -> (String, String) {
        let acc = self
            .admin(
                Method::POST,
                "/admin/v1/accounts",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(acc.status, StatusCode::CREATED, "{}", acc.body);
        let id = acc.body["id"].as_str().unwrap().to_owned();
        let key = self
            .admin(Method::POST, &format!("/admin/v1/accounts/{id}/keys"), None)
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
        (id, key.body["key"].as_str().unwrap().to_owned())
    }

    /// Creates a link to `url` with a generated code; returns the code.
    pub async fn code(&self, key: &str, url: &str) -> String {
        self.link(key, json!({"url": url})).await["code"]
            .as_str()
            .unwrap()
            .to_owned()
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

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends the command eagerly; awaiting it here would deadlock, because the
        // server future runs on the very runtime this drop is blocking.
        drop(self.handle.stop(false));
    }
}
