//! `geoip.database`: visits are counted by the country of the visitor's address (the
//! forwarded one, behind a trusted proxy), and the address itself is not kept. (The
//! lookup itself is tested in `src/geoip.rs`; a path that cannot be opened, in `cli.rs`.)

use actix_web::http::Method;
use shortener_testing::mmdb::country_db;

use crate::support::TestApp;

#[actix_web::test]
async fn visits_are_counted_by_the_country_of_the_visitors_address() {
    let path = std::env::temp_dir().join(format!(
        "shortener-api-geoip-{}.mmdb",
        uuid::Uuid::new_v4().simple()
    ));
    // A fixture built by the test support's MMDB writer (no database file is committed).
    let networks = [
        (("198.51.100.0".parse().unwrap(), 24), "DE"),
        (("203.0.113.0".parse().unwrap(), 24), "FR"),
        (("2001:db8::".parse().unwrap(), 32), "JP"),
    ];
    std::fs::write(&path, country_db(&networks, "DBIP-Country-Lite")).unwrap();
    let app = TestApp::spawn_with(&[
        ("SHORTENER__GEOIP__DATABASE", path.to_str().unwrap()),
        ("SHORTENER__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
        ("SHORTENER__ANALYTICS__ENABLED", "true"),
    ])
    .await;
    let _ = std::fs::remove_file(&path);

    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://geo.example/").await;
    for address in [
        "198.51.100.9",
        "198.51.100.10",
        "203.0.113.5",
        "2001:db8::42",
        "192.0.2.1", // in no network of the database
    ] {
        let r = app
            .request_with(
                Method::GET,
                &format!("/{code}"),
                None,
                None,
                &[("x-forwarded-for", address)],
            )
            .await;
        assert_eq!(r.status.as_u16(), 302);
        assert_eq!(
            r.header("location").as_deref(),
            Some("https://geo.example/")
        );
    }
    // Straight from the proxy itself (127.0.0.1 is in no network either).
    app.get(&format!("/{code}"), None).await;
    app.flush_clicks().await;

    let stats = app
        .get(&format!("/api/v1/links/{code}/stats"), Some(&key))
        .await;
    let countries: Vec<(String, i64)> = stats.body["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["value"].as_str().unwrap().to_owned(),
                e["clicks"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [("(unknown)", 2), ("DE", 2), ("FR", 1), ("JP", 1)];
    assert_eq!(
        countries,
        expected
            .iter()
            .map(|(c, n)| ((*c).to_owned(), *n))
            .collect::<Vec<_>>()
    );
}
