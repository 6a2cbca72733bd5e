//! The page a password-protected link answers with: a small form that asks for the
//! password and posts it back to the link (`POST /{code}`, see `redirect.rs`).
//!
//! Self-contained on purpose: no script, no image, no font, no style sheet from anywhere
//! (the styles are inline, and [`CONTENT_SECURITY_POLICY`] lets the browser load nothing
//! else), so it works without JavaScript and tells no other host that someone is here.
//! The target never appears in it. It is never cached (`no-store`): an answer of this URL
//! stored by a browser or a proxy must not stand in for the redirect once the password is
//! given or removed.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

/// Nothing may be loaded from anywhere, inline styles aside; no script at all; the page
/// may not be framed (so it cannot be overlaid to trick a visitor into typing). There is
/// no `form-action`: browsers apply it to the redirect that follows a right password too,
/// which goes to the link's target, wherever that is.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'";

/// The styles: readable on a phone (the viewport is the device's, the form as wide as it
/// may be up to 22 em) and on a desktop, in light and dark.
const STYLE: &str = "\
:root{color-scheme:light dark;font-family:system-ui,sans-serif;line-height:1.5}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;padding:1rem;box-sizing:border-box}\
main{width:100%;max-width:22em}\
h1{font-size:1.25rem;margin:0 0 .5rem}\
p{margin:0 0 1rem}\
label{display:block;font-weight:600;margin-bottom:.25rem}\
input{width:100%;box-sizing:border-box;font-size:1rem;padding:.6rem;margin-bottom:1rem;border:1px solid #888;border-radius:.4rem}\
button{width:100%;font-size:1rem;padding:.6rem;border:0;border-radius:.4rem;background:#2457c5;color:#fff;cursor:pointer}\
.error{color:#b00020;font-weight:600}\
@media (prefers-color-scheme:dark){.error{color:#ff8a80}}";

/// The page for the link `code`; `wrong` adds the message that the last try was wrong.
pub fn page(code: &str, wrong: bool) -> String {
    let code = crate::markup::escape(code);
    let message = if wrong {
        r#"<p class="error" role="alert">Wrong password. Try again.</p>"#
    } else {
        ""
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Password required</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>Password required</h1>
<p>This link is protected. Enter its password to continue.</p>
{message}<form method="post" action="/{code}" accept-charset="utf-8">
<label for="password">Password</label>
<input id="password" name="password" type="password" required autofocus autocomplete="current-password">
<button type="submit">Continue</button>
</form>
</main>
</body>
</html>
"#
    )
}

/// The form as an answer: `200` when asked for, `401` after a wrong password (which is
/// the page, not a problem document: a person reads it).
pub fn respond(code: &str, status: StatusCode) -> HttpResponse {
    crate::markup::html_page(
        status,
        CONTENT_SECURITY_POLICY,
        "no-referrer",
        page(code, status == StatusCode::UNAUTHORIZED),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_escaped_and_the_message_shown_only_after_a_wrong_try() {
        let page = page("a<b>\"c'&", false);
        assert!(
            page.contains(r#"action="/a&lt;b&gt;&quot;c&#39;&amp;""#),
            "{page}"
        );
        assert!(!page.contains("Wrong password"));
        assert!(super::page("abc", true).contains("Wrong password"));
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere() {
        let page = page("abc", true);
        for needle in [
            "src=", "href=", "<script", "url(", "@import", "http:", "https:",
        ] {
            assert!(!page.contains(needle), "{needle} in {page}");
        }
        assert!(page.contains(r#"<label for="password">"#));
    }
}
