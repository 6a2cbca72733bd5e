//! Escaping text into HTML and XML (the password form, the QR code's SVG): both give a
//! meaning to the same five characters, and a numeric reference for `'` is valid in
//! both, so one function serves them.

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
