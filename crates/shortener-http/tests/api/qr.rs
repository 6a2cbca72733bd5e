//! `GET /api/v1/links/{code}/qr`: the pictures read back as the link's `short_url` (the
//! PNG decoded and scanned, the SVG parsed as XML, drawn and scanned), revalidation with
//! `ETag` / `If-None-Match`, and the refusals.

use awc::http::{Method, StatusCode};

use crate::support::{Reply, TestApp};

/// What a QR scanner reads in a greyscale picture `width` × `height` (`pixel(x, y)`,
/// 0 black, 255 white): the text of the one code it finds.
fn scan(width: usize, height: usize, pixel: impl FnMut(usize, usize) -> u8) -> String {
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, pixel);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture");
    grids[0].decode().expect("the QR code decodes").1
}

/// A PNG's side and its pixels as 8-bit greyscale, row by row.
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!(frame.color_type, png::ColorType::Grayscale);
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    pixels.truncate(frame.buffer_size());
    (frame.width, frame.height, pixels)
}

/// The SVG's side in `viewBox` units and its dark modules, drawn from its one path (which
/// the service writes as `M x y h w v1 h-w z`, one run of dark modules each).
fn read_svg(text: &str) -> (usize, Vec<(usize, usize, usize)>) {
    let doc = roxmltree::Document::parse(text).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let view_box: Vec<usize> = root
        .attribute("viewBox")
        .expect("a viewBox, so it scales")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(view_box.len(), 4);
    assert_eq!((view_box[0], view_box[1]), (0, 0));
    assert_eq!(view_box[2], view_box[3], "square");
    let paths: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("path"))
        .collect();
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0].attribute("fill"), Some("#000"));
    let mut runs = Vec::new();
    for run in paths[0].attribute("d").unwrap().split('z') {
        if run.is_empty() {
            continue;
        }
        let (at, rest) = run.strip_prefix('M').unwrap().split_once('h').unwrap();
        let (x, y) = at.split_once(' ').unwrap();
        let (w, _) = rest.split_once('v').unwrap();
        runs.push((x.parse().unwrap(), y.parse().unwrap(), w.parse().unwrap()));
    }
    (view_box[2], runs)
}

async fn qr(app: &TestApp, key: &str, code: &str, query: &str) -> Reply {
    app.get(&format!("/api/v1/links/{code}/qr{query}"), Some(key))
        .await
}

#[actix_web::test]
async fn the_png_is_exactly_the_size_asked_and_scans_as_the_short_url() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let link = app
        .link(
            &key,
            serde_json::json!({"url": "https://example.com/a?b=c"}),
        )
        .await;
    let code = link["code"].as_str().unwrap();
    let short_url = link["short_url"].as_str().unwrap();

    // 333 is no multiple of the symbol's side: the light margin takes up the rest.
    for size in [333, 64] {
        let r = qr(&app, &key, code, &format!("?format=png&size={size}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type").as_deref(), Some("image/png"));
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("private, no-cache")
        );
        let (width, height, pixels) = decode_png(&r.raw);
        assert_eq!((width, height), (size, size));
        assert!(pixels.iter().all(|&p| p == 0 || p == 255), "black on white");
        let side = size as usize;
        assert_eq!(scan(side, side, |x, y| pixels[y * side + x]), short_url);
    }

    let r = qr(&app, &key, code, "?format=png&size=2048").await;
    assert_eq!(r.status, StatusCode::OK);
    let (width, height, _) = decode_png(&r.raw);
    assert_eq!((width, height), (2048, 2048));

    let r = qr(&app, &key, code, "?format=png").await;
    assert_eq!(decode_png(&r.raw).0, 512, "the default size");
}

#[actix_web::test]
async fn the_svg_is_the_default_well_formed_scalable_and_scans_as_the_short_url() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let link = app
        .link(&key, serde_json::json!({"url": "https://example.com/b"}))
        .await;
    let code = link["code"].as_str().unwrap();
    let short_url = link["short_url"].as_str().unwrap();

    for query in ["", "?format=svg"] {
        let r = qr(&app, &key, code, query).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type").as_deref(), Some("image/svg+xml"));
        let text = std::str::from_utf8(&r.raw).unwrap();
        assert!(!text.contains("href"), "self-contained: {text}");
        let (side, runs) = read_svg(text);
        // Drawn at 4 px a module, as a browser would.
        const PX: usize = 4;
        let px = side * PX;
        let mut pixels = vec![255u8; px * px];
        for (x, y, w) in runs {
            assert!(
                x >= 4 && y >= 4 && x + w <= side - 4,
                "inside the quiet zone"
            );
            for py in y * PX..(y + 1) * PX {
                pixels[py * px + x * PX..py * px + (x + w) * PX].fill(0);
            }
        }
        assert_eq!(scan(px, px, |x, y| pixels[y * px + x]), short_url);
    }
}

#[actix_web::test]
async fn a_client_that_has_the_picture_gets_a_304_for_as_long_as_it_is_the_same() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/c").await;
    let path = format!("/api/v1/links/{code}/qr?format=png&size=256");

    let first = app.get(&path, Some(&key)).await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header("etag").expect("an ETag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );

    for sent in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".into(),
    ] {
        let r = app
            .request_with(
                Method::GET,
                &path,
                Some(&key),
                None,
                &[("if-none-match", &sent)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "If-None-Match: {sent}");
        assert!(r.raw.is_empty());
        assert_eq!(r.header("etag"), Some(etag.clone()));
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("private, no-cache")
        );
    }

    // The same picture again has the same tag; another picture another.
    assert_eq!(
        app.get(&path, Some(&key)).await.header("etag"),
        Some(etag.clone())
    );
    let other_size = format!("/api/v1/links/{code}/qr?format=png&size=257");
    let svg = format!("/api/v1/links/{code}/qr");
    for other in [other_size, svg] {
        let r = app
            .request_with(
                Method::GET,
                &other,
                Some(&key),
                None,
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{other}");
        assert_ne!(r.header("etag"), Some(etag.clone()), "{other}");
    }
    let stale = app
        .request_with(
            Method::GET,
            &path,
            Some(&key),
            None,
            &[("if-none-match", "\"qr1-0\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.raw, first.raw);

    // A deleted link's picture is gone, whatever the client remembers.
    app.request(
        Method::DELETE,
        &format!("/api/v1/links/{code}"),
        Some(&key),
        None,
    )
    .await;
    app.request_with(
        Method::GET,
        &path,
        Some(&key),
        None,
        &[("if-none-match", &etag)],
    )
    .await
    .assert_problem(404, "not-found");
}

#[actix_web::test]
async fn another_accounts_link_or_an_unknown_code_is_a_404_and_no_key_a_401() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let (_, other) = app.account("Other").with_key().await;
    let code = app.code(&key, "https://example.com/d").await;

    qr(&app, &other, &code, "")
        .await
        .assert_problem(404, "not-found");
    qr(&app, &other, &code, "?format=png")
        .await
        .assert_problem(404, "not-found");
    qr(&app, &key, "nosuchcode", "")
        .await
        .assert_problem(404, "not-found");
    app.get(&format!("/api/v1/links/{code}/qr"), None)
        .await
        .assert_problem(401, "unauthorized");
}

#[actix_web::test]
async fn a_bad_format_or_size_is_a_400_naming_it() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/e").await;

    for (query, names) in [
        ("?format=", "format"),
        ("?format=gif", "format"),
        ("?format=PNG", "format"),
        ("?format=png&size=63", "size"),
        ("?format=png&size=2049", "size"),
        ("?format=png&size=abc", "size"),
        ("?format=png&size=-1", "size"),
        ("?format=png&size=", "size"),
        ("?format=png&size=512.5", "size"),
        ("?format=png&size=99999999999999999999", "size"),
        ("?size=100", "size"),
        ("?format=svg&size=512", "size"),
        ("?colour=red", "colour"),
    ] {
        let r = qr(&app, &key, &code, query).await;
        r.assert_problem(400, "validation");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains(names), "{query}: {detail}");
    }
}
