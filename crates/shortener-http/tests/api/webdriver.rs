//! A small WebDriver client of our own (the protocol is a few JSON calls over HTTP): it
//! starts a chromedriver of its own and one headless Chromium session on it (Debian's
//! `chromium` and `chromium-driver`, which `cargo xtask ci` installs when missing).
//! Screenshots go to `target/screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// A chromedriver of this test's own and one headless Chromium session on it.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: awc::Client,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver: {e}. `cargo xtask ci` installs it; by hand: \
                     apt-get install chromium chromium-driver"
                )
            });
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            client,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // Chromium's DevTools events, the requests among them (`requested_urls`).
            "goog:loggingPrefs": {"performance": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"],
            },
        }}});
        let session = browser.call("POST", "/session", Some(caps)).await;
        browser.session = session["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    /// A WebDriver command; its `value`.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.client.get(&url),
            "DELETE" => self.client.delete(&url),
            _ => self.client.post(&url),
        };
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None if method == "POST" => req.send_json(&json!({})).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let answer: Value = res.json().limit(64 << 20).await.unwrap();
        assert!(res.status().is_success(), "{method} {path}: {answer}");
        answer["value"].clone()
    }

    pub async fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    pub async fn open(&self, url: &str) {
        self.session("POST", "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn element(&self, css: &str) -> String {
        let found = self
            .session(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        // The W3C element reference's key.
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no {css}: {found}"))
            .to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.session("POST", &format!("/element/{id}/clear"), None)
            .await;
        self.session(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.session("POST", &format!("/element/{id}/click"), None)
            .await;
    }

    pub async fn source(&self) -> String {
        self.session("GET", "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (at most 10 s) until the page holds `text`: a form posted navigates on its
    /// own time.
    pub async fn until_page_holds(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let source = self.source().await;
            if source.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "no {text:?} in {source}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn title(&self) -> String {
        self.session("GET", "/title", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Screenshots of the page at phone (390 px) and desktop (1280 px) width, as
    /// `target/screenshots/{name}-{phone,desktop}.png`: what a screen shows first.
    pub async fn screenshots(&self, name: &str) {
        self.screenshots_of(name, false).await;
    }

    /// [`Browser::screenshots`] of the whole page, however long (up to 6000 px).
    pub async fn screenshots_whole(&self, name: &str) {
        self.screenshots_of(name, true).await;
    }

    async fn screenshots_of(&self, name: &str, whole: bool) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        for (width, height, label) in [(390, 844, "phone"), (1280, 900, "desktop")] {
            let resize = |height: u64| {
                self.session(
                    "POST",
                    "/window/rect",
                    Some(json!({"width": width, "height": height})),
                )
            };
            resize(height).await;
            if whole {
                let tall = self
                    .execute("return document.documentElement.scrollHeight;")
                    .await
                    .as_u64()
                    .unwrap_or(height);
                // The window's frame takes some of its height from the page's.
                resize((tall + 150).clamp(height, 6000)).await;
            }
            let png = self.session("GET", "/screenshot", None).await;
            let png = base64::engine::general_purpose::STANDARD
                .decode(png.as_str().unwrap())
                .unwrap();
            assert!(png.starts_with(b"\x89PNG"), "a PNG");
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Runs `script` in the page; its return value.
    pub async fn execute(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Every URL the browser has asked for since the last call, from its own record: the
    /// DevTools network events (each request the page started, also those a policy then
    /// blocked), and the page's Resource Timing entries.
    pub async fn requested_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = Vec::new();
        let log = self
            .session("POST", "/se/log", Some(json!({"type": "performance"})))
            .await;
        for entry in log.as_array().into_iter().flatten() {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let event: Value = serde_json::from_str(message).unwrap_or(Value::Null);
            if event["message"]["method"] == "Network.requestWillBeSent"
                && let Some(url) = event["message"]["params"]["request"]["url"].as_str()
            {
                urls.push(url.to_owned());
            }
        }
        let timed = self
            .execute(
                "return [location.href].concat(performance.getEntriesByType('resource')\
                 .map(function (e) { return e.name; }));",
            )
            .await;
        urls.extend(
            timed
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_owned()),
        );
        urls
    }

    /// Fails unless every URL the browser asked the network for is under `base`.
    /// (`data:` URLs are no request: the browser's own controls draw their icons with
    /// them.)
    pub async fn assert_nothing_from_elsewhere(&self, base: &str) {
        let urls = self.requested_urls().await;
        assert!(urls.len() > 1, "the page loaded its assets: {urls:?}");
        for url in urls.iter().filter(|u| !u.starts_with("data:")) {
            assert!(
                url.starts_with(&format!("{base}/")),
                "{url} is not under {base}"
            );
        }
    }

    /// The page's address.
    pub async fn url(&self) -> String {
        self.session("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Accepts the `confirm()` dialog that is open.
    pub async fn accept_dialog(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{}/session/{}/alert/accept", self.base, self.session);
            let res = self.client.post(&url).send_json(&json!({})).await;
            if res.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "no dialog opened");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the browser session (the driver stops when this is dropped).
    pub async fn quit(&self) {
        let _ = self.session("DELETE", "", None).await;
    }
}
