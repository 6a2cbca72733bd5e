//! The web interface's style sheet, script and icon: compiled into the binary, served
//! under names that carry a hash of their content, and cached by browsers for a year.
//! A new build with a changed file has a new name, so no browser keeps a stale one, and
//! nothing is ever loaded from another host.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};
use shortener_app::AppError;

use super::UiError;

/// One embedded file.
pub struct Asset {
    /// What the URL calls it: `<stem>.<hash>.<extension>`.
    file: String,
    content_type: &'static str,
    body: &'static [u8],
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
        let digest = Sha256::digest(body);
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            file: format!("{stem}.{hash}.{extension}"),
            content_type,
            body,
        }
    }

    /// The URL pages link to.
    pub fn url(&self) -> String {
        format!("/ui/assets/{}", self.file)
    }
}

/// The style sheet.
pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "ui",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/ui.css"),
    )
});
/// The script (progressive enhancement only).
pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "ui",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/ui.js"),
    )
});
/// The icon.
pub static ICON: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "icon",
        "svg",
        "image/svg+xml",
        include_bytes!("../../assets/icon.svg"),
    )
});

/// `GET /ui/assets/{file}`: immutable for a year; any other name (an old hash) is a 404.
pub async fn serve(file: web::Path<String>) -> Result<HttpResponse, UiError> {
    let asset = [&*CSS, &*JS, &*ICON]
        .into_iter()
        .find(|a| a.file == *file)
        .ok_or(UiError::from(AppError::NotFound))?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ))
        .body(asset.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_hash_of_the_content() {
        let a = Asset::new("x", "css", "text/css", b"a{}");
        let b = Asset::new("x", "css", "text/css", b"b{}");
        assert_ne!(a.file, b.file);
        assert!(
            a.file.starts_with("x.") && a.file.ends_with(".css"),
            "{}",
            a.file
        );
        assert_eq!(a.file.len(), "x.".len() + 16 + ".css".len());
        assert!(CSS.url().starts_with("/ui/assets/ui."));
    }
}
