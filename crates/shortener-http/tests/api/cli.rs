//! The `shortener` binary itself: configuration errors, and serving on a fresh machine with
//! a private PostgreSQL it provisions and stops again.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary, with the environment every test here starts from.
pub fn shortener() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shortener"));
    cmd.env_remove("DATABASE_URL").env("RUST_LOG", "warn");
    cmd
}

#[test]
fn a_bad_setting_stops_the_start_with_one_line_naming_the_key() {
    for (var, value, key) in [
        ("SHORTENER__REDIRECT__STATUS", "303", "redirect.status"),
        ("SHORTENER__SERVER__LISTEN", "localhost", "server.listen"),
        (
            "SHORTENER__ADMIN__BOOTSTRAP_KEY",
            "too-short",
            "admin.bootstrap_key",
        ),
        (
            "SHORTENER__PLANS__TRIAL__PERIOD",
            "forever",
            "plans.trial.period",
        ),
    ] {
        let out = shortener().arg("serve").env(var, value).output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(key), "{stderr} should name {key}");
    }
    let out = shortener()
        .args(["--config", "/nonexistent/shortener.toml", "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}

#[test]
fn a_geoip_database_that_cannot_be_opened_stops_the_start_with_one_line() {
    // The database is never reached: the GeoIP file is opened first.
    let out = shortener()
        .arg("serve")
        .env("SHORTENER__DATABASE__URL", "postgres://127.0.0.1:1/never")
        .env("SHORTENER__SERVER__LISTEN", "127.0.0.1:0")
        .env("SHORTENER__METRICS__ENABLED", "false")
        .env("SHORTENER__GEOIP__DATABASE", "/nonexistent/country.mmdb")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "shortener: geoip.database: cannot open /nonexistent/country.mmdb: \
         No such file or directory (os error 2)"
    );
}

#[test]
fn help_describes_both_commands() {
    let out = shortener().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve") && text.contains("migrate"), "{text}");
    let out = shortener().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--no-migrate"));
}

#[test]
fn without_server_binaries_serve_exits_with_one_line_naming_what_to_install() {
    let data = std::env::temp_dir().join(format!("shortener-nobin-{}", std::process::id()));
    let out = shortener()
        .arg("serve")
        .env("PATH", "/nonexistent")
        .env("SHORTENER_PG_SEARCH_ROOT", "/nonexistent/postgresql")
        .env("SHORTENER__DATABASE__DATA_DIR", &data)
        .env("SHORTENER__SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("initdb"), "{stderr}");
    assert!(stderr.contains("/nonexistent/postgresql/*/bin"), "{stderr}");
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
    assert!(!data.exists(), "nothing is created when nothing can run");
}

/// A port nothing listens on (as long as nobody else takes it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn serve_without_a_database_provisions_one_and_stops_it_on_sigterm() {
    let data_dir = std::env::temp_dir().join(format!(
        "shortener-cli-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let port = free_port();
    let mut child = shortener()
        .arg("serve")
        .env("SHORTENER__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("SHORTENER__DATABASE__DATA_DIR", &data_dir)
        .env(
            "SHORTENER__ADMIN__BOOTSTRAP_KEY",
            "cli-test-bootstrap-key-0123456789abcdef",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut ready = false;
    while Instant::now() < deadline {
        if http_get(port, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            ready = true;
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("shortener exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ready, "service became ready with its own PostgreSQL");
    assert!(
        shortener_testing::files_under(&data_dir)
            .iter()
            .any(|p| p.ends_with("PG_VERSION")),
        "a cluster was initialised under database.data_dir"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "shortener did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "clean exit, got {status}");
    // The private server is stopped again: no postmaster.pid anywhere under the data dir.
    let pid_files = shortener_testing::files_under(&data_dir)
        .into_iter()
        .filter(|p| p.ends_with("postmaster.pid"))
        .count();
    assert_eq!(pid_files, 0, "private PostgreSQL still running");
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_flood_of_garbage_requests_writes_a_line_a_second_not_a_line_each() {
    use std::io::{Read, Write};

    let db = shortener_testing::TestDb::new().await;
    let port = free_port();
    let mut child = shortener()
        .arg("serve")
        .env("SHORTENER__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("SHORTENER__DATABASE__URL", &db.url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http_get(port, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(Instant::now() < deadline, "service did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..300 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GARBAGE / NOT-HTTP\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    std::thread::sleep(Duration::from_millis(1500)); // one report
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.wait().unwrap();
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("clients sent malformed requests"))
        .collect();
    assert!(!reports.is_empty(), "the faults are reported: {stderr}");
    assert!(
        reports.len() <= 3,
        "a line a second, not one each: {stderr}"
    );
    assert!(reports.iter().all(|l| l.contains("WARN")), "{stderr}");
    assert!(
        !stderr.contains("ERROR"),
        "a client's garbage is not our error: {stderr}"
    );
}

#[tokio::test]
async fn migrate_connects_with_the_owner_url_and_the_service_owns_nothing() {
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;

    let db = shortener_testing::TestDb::empty().await;
    let out = shortener()
        .arg("migrate")
        .env("SHORTENER__DATABASE__URL", &db.service_url)
        .env("SHORTENER__DATABASE__OWNER_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied"));

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut owner = db.conn().await;
    let owned = |who: &str| {
        format!(
            "SELECT count(*) AS n FROM pg_class c \
             WHERE c.relnamespace IN ('shortener'::regnamespace, 'audit'::regnamespace) \
               AND pg_get_userbyid(c.relowner) = {who}"
        )
    };
    let by_owner: Count = diesel::sql_query(owned("current_user"))
        .get_result(&mut owner)
        .await
        .unwrap();
    assert!(by_owner.n > 0, "the owner made the tables");
    let by_service: Count =
        diesel::sql_query(owned(&format!("'{}'", shortener_testing::SERVICE_LOGIN)))
            .get_result(&mut owner)
            .await
            .unwrap();
    assert_eq!(by_service.n, 0);
}
