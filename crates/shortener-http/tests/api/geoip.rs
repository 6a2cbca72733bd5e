//! `geoip.database`: the service starts with a country database and serves as before.
//! (The lookup itself is tested in `src/geoip.rs`; a path that cannot be opened, in
//! `cli.rs`.)

use shortener_testing::mmdb::country_db;

use crate::support::TestApp;

#[actix_web::test]
async fn a_service_with_a_country_database_starts_and_redirects() {
    let path = std::env::temp_dir().join(format!(
        "shortener-api-geoip-{}.mmdb",
        uuid::Uuid::new_v4().simple()
    ));
    let networks = [
        (("127.0.0.0".parse().unwrap(), 8), "ZZ"),
        (("2001:db8::".parse().unwrap(), 32), "DE"),
    ];
    std::fs::write(&path, country_db(&networks, "DBIP-Country-Lite")).unwrap();
    let app = TestApp::spawn_with(&[("SHORTENER__GEOIP__DATABASE", path.to_str().unwrap())]).await;
    let _ = std::fs::remove_file(&path);

    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://geo.example/").await;
    let r = app.get(&format!("/{code}"), None).await;
    assert_eq!(r.status.as_u16(), 302);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://geo.example/")
    );
}
