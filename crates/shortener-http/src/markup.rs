//! Escaping text into HTML and XML (the password form, the QR code's SVG): both give a
//! meaning to the same five characters, and a numeric reference for `'` is valid in
//! both, so one function serves them. And the one way an HTML page is answered (the
//! password form, the web interface): never cached, never framed, with its own policy.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};

use crate::ops::NotAProblem;

/// `body` as an HTML page: `no-store` (a page shows what only its reader may see, or
/// stands in front of a redirect), `csp` as its Content Security Policy, `referrer` as
/// its Referrer-Policy, no framing. Marked [`NotAProblem`]: an error status here is a page
/// a person reads.
pub fn html_page(
    status: StatusCode,
    csp: &'static str,
    referrer: &'static str,
    body: String,
) -> HttpResponse {
    let mut res = HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        ))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static(referrer)))
        .insert_header((
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        .body(body);
    res.extensions_mut().insert(NotAProblem);
    res
}

/// `text` with `&`, `<`, `>`, `"` and `'` as references: safe in element text and in
/// quoted attribute values of HTML and XML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_characters_become_references_and_nothing_else_changes() {
        assert_eq!(
            escape(r#"<a href="x">Tom & Jerry's</a> ünï"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt; ünï"
        );
        assert_eq!(escape(""), "");
    }
}
