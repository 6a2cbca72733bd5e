//! `GET /api/v1/links/{code}/qr`: a QR code of a link's `short_url`, as SVG or PNG.
//!
//! Its own module because it is the one route that does CPU work of its own size: a
//! 2048 px PNG is four million pixels to lay out and deflate. The symbol comes from the
//! `qrcode` crate (no features: only the encoder), and both images are written here, the
//! SVG as text and the PNG with the `png` crate's encoder, so the service carries no image
//! library. Rendering runs on actix's blocking pool ([`web::block`]), at most
//! [`RENDERS`] at a time, so that neither the async workers nor the blocking pool are held
//! by a burst of large images.
//!
//! Caching is HTTP's: the picture depends on nothing but the short URL, the format, the
//! size and the way this module draws ([`RENDERING`]), so those make a strong `ETag`, and
//! a client that sends it back in `If-None-Match` gets a `304` without anything being
//! drawn. The link is looked up first all the same, so a deleted link or another
//! account's is a 404 whatever the client remembers.

use actix_web::http::header::{
    self, CacheControl, CacheDirective, ETag, EntityTag, Header, IfNoneMatch,
};
use actix_web::{HttpRequest, HttpResponse, web};
use qrcode::{Color, EcLevel, QrCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shortener_app::AppError;
use tokio::sync::Semaphore;
use utoipa::{IntoParams, ToSchema};

use crate::auth::AccountCaller;
use crate::extract::Query;
use crate::openapi::Operations;
use crate::problem::Slug;
use crate::{Error, State};

/// The way this module draws. Part of every `ETag`: bump it whenever a change makes a
/// different picture of the same URL (error correction, quiet zone, colours, layout), so
/// that clients stop reusing pictures of the old drawing.
pub const RENDERING: u32 = 1;
/// The smallest PNG, in pixels a side.
pub const MIN_SIZE: u32 = 64;
/// The largest PNG, in pixels a side.
pub const MAX_SIZE: u32 = 2048;
/// The PNG's side when `size` is not given.
pub const DEFAULT_SIZE: u32 = 512;
/// The light margin around the symbol, in modules: the four the QR standard asks for, so
/// that a scanner finds the symbol on any background.
const QUIET_ZONE: usize = 4;
/// Pixels a module in the SVG's default size (it scales to any size: it has a `viewBox`).
const SVG_MODULE_PX: usize = 8;
/// Images drawn at once; further requests wait their turn (asynchronously).
const RENDERS: usize = 4;

static RENDERING_NOW: Semaphore = Semaphore::const_new(RENDERS);

/// Error correction level Q: a quarter of the symbol may be lost (a smudge on paper, a
/// fold, a logo printed over it) and it still reads, which is what printed codes need;
/// H would make a larger symbol for little more. A short URL is short, so the symbol
/// stays small at Q (a 30-character URL is a 29×29 symbol).
const EC_LEVEL: EcLevel = EcLevel::Q;

/// The picture asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Scalable; the default.
    Svg,
    /// `size` × `size` pixels.
    Png {
        /// Pixels a side, [`MIN_SIZE`] to [`MAX_SIZE`].
        size: u32,
    },
}

impl Format {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Svg => "image/svg+xml",
            Format::Png { .. } => "image/png",
        }
    }
}

/// The image formats, as `format` names them.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(as = QrFormat, rename_all = "lowercase")]
enum FormatName {
    Svg,
    Png,
}

impl FormatName {
    fn parse(name: &str) -> Result<FormatName, Error> {
        match name {
            "svg" => Ok(FormatName::Svg),
            "png" => Ok(FormatName::Png),
            _ => Err(Error::Validation(
                "format must be `svg` (the default) or `png`".into(),
            )),
        }
    }
}

/// `?format=&size=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct QrQuery {
    /// The image format: `svg` (the default; scalable) or `png`.
    #[param(value_type = Option<FormatName>, inline)]
    format: Option<String>,
    /// PNG only: pixels a side (the image is square), 512 when not given. Modules are
    /// drawn a whole number of pixels wide, as large as fits, and the light margin takes up
    /// the rest. An SVG scales to any size, so it takes no `size`.
    // No schema `default`: a generated request would send it with `svg`, which refuses it.
    #[param(value_type = Option<u32>, minimum = 64, maximum = 2048)]
    size: Option<String>,
}

impl QrQuery {
    /// The format asked for, or why it cannot be had.
    fn format(&self) -> Result<Format, Error> {
        let name = match &self.format {
            Some(name) => FormatName::parse(name)?,
            None => FormatName::Svg,
        };
        match (name, &self.size) {
            (FormatName::Svg, None) => Ok(Format::Svg),
            (FormatName::Svg, Some(_)) => Err(Error::Validation(
                "size applies to format=png only; an SVG scales to any size".into(),
            )),
            (FormatName::Png, None) => Ok(Format::Png { size: DEFAULT_SIZE }),
            (FormatName::Png, Some(size)) => match size.parse::<u32>() {
                Ok(size) if (MIN_SIZE..=MAX_SIZE).contains(&size) => Ok(Format::Png { size }),
                _ => Err(Error::Validation(format!(
                    "size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}"
                ))),
            },
        }
    }
}

/// The strong validator of the picture of `short_url` in `format`: a digest of all the
/// picture depends on, so equal tags mean equal bytes.
pub fn etag(short_url: &str, format: Format) -> EntityTag {
    let described = match format {
        Format::Svg => format!("qr/{RENDERING}/svg/{short_url}"),
        Format::Png { size } => format!("qr/{RENDERING}/png/{size}/{short_url}"),
    };
    let digest = Sha256::digest(described.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    EntityTag::new_strong(format!("qr{RENDERING}-{hex}"))
}

/// The symbol of `text`, with every module as dark (`true`) or light, row by row.
struct Symbol {
    width: usize,
    dark: Vec<bool>,
}

impl Symbol {
    fn of(text: &str) -> Result<Symbol, Error> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EC_LEVEL)
            .map_err(|e| AppError::internal_from("encoding a short URL as a QR code", e))?;
        Ok(Symbol {
            width: code.width(),
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect(),
        })
    }

    /// Modules a side, the quiet zone included.
    fn side(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark.get(y * self.width + x).copied().unwrap_or(false)
    }
}

/// A self-contained SVG of `symbol`: one unit of the `viewBox` a module, the quiet zone
/// included, a white background and one black path (each row's runs of dark modules as
/// rectangles). `text` is its title.
fn svg(symbol: &Symbol, text: &str) -> String {
    use std::fmt::Write;
    let side = symbol.side();
    let px = side * SVG_MODULE_PX;
    let mut path = String::new();
    for y in 0..symbol.width {
        let mut x = 0;
        while x < symbol.width {
            if !symbol.is_dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < symbol.width && symbol.is_dark(x, y) {
                x += 1;
            }
            let _ = write!(
                path,
                "M{} {}h{}v1h-{}z",
                start + QUIET_ZONE,
                y + QUIET_ZONE,
                x - start,
                x - start
            );
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 {side} {side}\" \
         width=\"{px}\" height=\"{px}\" shape-rendering=\"crispEdges\">\
         <title>{title}</title>\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>\n",
        title = crate::markup::escape(text),
    )
}

/// A `size` × `size` PNG of `symbol` (1-bit greyscale): modules `size / side` pixels wide
/// (the largest whole number that fits), centred, the rest light.
fn png(symbol: &Symbol, size: u32) -> Result<Vec<u8>, Error> {
    let side = symbol.side();
    let px = size as usize;
    let scale = px / side;
    if scale == 0 {
        return Err(Error::Validation(format!(
            "size {size} is too small for this link's QR code: it needs at least {side} pixels"
        )));
    }
    let offset = (px - side * scale) / 2;
    let row_bytes = px.div_ceil(8);
    // 1-bit greyscale: a set bit is white.
    let light_row = vec![0xff_u8; row_bytes];
    let mut data = Vec::with_capacity(row_bytes * px);
    let first = offset + QUIET_ZONE * scale;
    let last = first + symbol.width * scale;
    for _ in 0..first {
        data.extend_from_slice(&light_row);
    }
    for y in 0..symbol.width {
        let mut row = light_row.clone();
        for x in 0..symbol.width {
            if symbol.is_dark(x, y) {
                let from = first + x * scale;
                for p in from..from + scale {
                    if let Some(byte) = row.get_mut(p / 8) {
                        *byte &= !(0x80 >> (p % 8));
                    }
                }
            }
        }
        for _ in 0..scale {
            data.extend_from_slice(&row);
        }
    }
    for _ in last..px {
        data.extend_from_slice(&light_row);
    }
    let fail = |e: png::EncodingError| Error::from(AppError::internal_from("writing a PNG", e));
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&data).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

/// The picture of `text` in `format`.
pub fn render(text: &str, format: Format) -> Result<Vec<u8>, Error> {
    let symbol = Symbol::of(text)?;
    match format {
        Format::Svg => Ok(svg(&symbol, text).into_bytes()),
        Format::Png { size } => png(&symbol, size),
    }
}

/// [`render`] on the blocking pool, [`RENDERS`] at a time.
pub(crate) async fn render_off_the_workers(text: String, format: Format) -> Result<Vec<u8>, Error> {
    let _permit = RENDERING_NOW
        .acquire()
        .await
        .map_err(|e| AppError::internal_from("waiting to draw a QR code", e))?;
    web::block(move || render(&text, format))
        .await
        .map_err(|e| AppError::internal_from("drawing a QR code", e))?
}

/// Whether the client's `If-None-Match` names the picture it would get (weak comparison,
/// as RFC 9110 asks of `If-None-Match`; `*` names any).
fn not_modified(req: &HttpRequest, tag: &EntityTag) -> bool {
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(items)) => items.iter().any(|item| item.weak_eq(tag)),
        Err(_) => false,
    }
}

/// The caching headers of both answers: keep it, but ask each time whether it is still
/// the one (the link may have been deleted; the answer is one account's).
fn cache_control() -> CacheControl {
    CacheControl(vec![CacheDirective::Private, CacheDirective::NoCache])
}

/// A PNG image.
#[derive(ToSchema)]
#[schema(as = QrPng, value_type = String, format = Binary)]
#[allow(dead_code)] // the handler answers bytes; this only documents them
struct PngBody(Vec<u8>);

/// The request header of a revalidation, as the operation documents it.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read from the request by [`not_modified`]; this only documents it
struct Revalidation {
    /// The `ETag` of a picture the client has: a 304 when it is still the one (`*`: any).
    #[param(rename = "If-None-Match")]
    if_none_match: Option<String>,
}

/// A QR code of the link's `short_url`, to print or show.
#[utoipa::path(
    get,
    path = "/api/v1/links/{code}/qr",
    operation_id = "link_qr",
    tag = "links",
    params(("code" = String, Path, description = "The link's code."), QrQuery, Revalidation),
    responses(
        (status = 200, description = "The QR code (error correction level Q, a quiet zone of four modules): `image/svg+xml` with a `viewBox`, or a `size` × `size` `image/png`.",
            headers(
                ("ETag" = String, description = "Strong; send it back as `If-None-Match` to get a 304 while the picture is the same."),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            ),
            content((String = "image/svg+xml"), (PngBody = "image/png"))),
        (status = 304, description = "Not modified: `If-None-Match` names this picture.",
            headers(
                ("ETag" = String, description = "The picture's, as on a 200."),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
    ),
)]
async fn qr(
    state: web::Data<State>,
    caller: AccountCaller,
    code: web::Path<String>,
    query: Query<QrQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, Error> {
    let format = query.format()?;
    let link = state.links.get(caller.account_id, &code).await?;
    let short_url = state.short_url(link.code.as_str());
    let tag = etag(&short_url, format);
    if not_modified(&req, &tag) {
        return Ok(HttpResponse::NotModified()
            .insert_header(ETag(tag))
            .insert_header(cache_control())
            .finish());
    }
    let image = render_off_the_workers(short_url, format).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header(ETag(tag))
        .insert_header(cache_control())
        .body(image))
}

/// The QR code route (registered with the other link routes).
pub fn api_routes(ops: &mut Operations) {
    ops.add(__path_qr, qr, &[Slug::Validation, Slug::NotFound]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_png_size_of_a_long_short_url_is_exact_or_refused_never_a_panic() {
        let symbol = Symbol::of(&format!("https://example.com/{}", "x".repeat(64))).unwrap();
        for size in [MIN_SIZE, 65, 100, 333, 1000, MAX_SIZE] {
            match png(&symbol, size) {
                Ok(bytes) => assert!(bytes.starts_with(b"\x89PNG")),
                Err(e) => {
                    assert!(size < symbol.side() as u32, "{size}: {e}");
                    assert!(matches!(e, Error::Validation(_)));
                }
            }
        }
    }

    #[test]
    fn the_etag_changes_with_what_the_picture_depends_on() {
        let url = "https://sho.rt/abc";
        let svg = etag(url, Format::Svg);
        assert!(!svg.weak);
        assert_ne!(svg, etag("https://sho.rt/abd", Format::Svg));
        assert_ne!(svg, etag(url, Format::Png { size: 512 }));
        assert_ne!(
            etag(url, Format::Png { size: 512 }),
            etag(url, Format::Png { size: 513 })
        );
        assert_eq!(svg, etag(url, Format::Svg));
    }

    #[test]
    fn the_title_is_escaped() {
        let symbol = Symbol::of("a&b<c>").unwrap();
        assert!(svg(&symbol, "a&b<c>").contains("<title>a&amp;b&lt;c&gt;</title>"));
    }
}
