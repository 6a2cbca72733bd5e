//! `Idempotency-Key` at the edge (draft-ietf-httpapi-idempotency-key-header): reading the
//! key, what identifies a request under it, and answers recorded and replayed. What a key
//! guarantees, and how, is `shortener_app::IdempotencyKey`'s and its use cases'.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use shortener_app::{Answer, AppError, IdempotencyKey, Recorded};

use crate::Error;
use crate::problem::Problem;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The header as both creates document it (`params(idempotency::Header)`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read from the request by [`key`]; this only documents it
pub struct Header {
    /// 1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer back.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
}
/// Set to `true` on an answer recorded earlier, so a caller can tell a replay apart.
pub const REPLAYED: &str = "idempotent-replayed";

/// The key `req` carries, if any, bound to the request: its path and its JSON body in
/// canonical form (object keys sorted, no spaces), so a retry whose body differs only in
/// key order or spacing is the same request. The draft sends the key as a structured
/// field string (`"…"`); the quotes are not part of the key, so `"k"` and `k` are one key.
///
/// A link's `password` is not part of it, only whether one was given: the request's hash
/// is stored for a day, and a fast unsalted hash of a body holding a password would let
/// whoever reads the database test guesses far faster than against its Argon2id hash. So
/// a retry that differs from the first only in the password gets the first answer back.
pub fn key(req: &HttpRequest, body: &Value) -> Result<Option<IdempotencyKey>, Error> {
    let mut values = req.headers().get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid =
        || Error::Validation("Idempotency-Key must be sent once, as visible ASCII".into());
    if values.next().is_some() {
        return Err(invalid());
    }
    let raw = value.to_str().map_err(|_| invalid())?;
    let raw = raw.trim();
    let key = raw
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(raw);
    let mut request = String::from(req.path());
    request.push('\n');
    canonical(body, &mut request);
    Ok(Some(IdempotencyKey::new(key, request.as_bytes())?))
}

/// What stands for a password's text in the canonical form.
const PASSWORD: &str = "\"[password]\"";

/// `value` as JSON with every object's keys in order, whatever order they came in, and the
/// text of every `password` replaced by [`PASSWORD`].
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, v)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                match v {
                    Value::String(_) if name == "password" => out.push_str(PASSWORD),
                    v => canonical(v, out),
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// An answer to record: `body` as JSON with `status`.
pub fn record(status: StatusCode, body: &impl Serialize) -> Recorded {
    match serde_json::to_string(body) {
        Ok(body) => Recorded {
            status: status.as_u16(),
            body,
        },
        Err(e) => record_error(&AppError::internal_from("serialising an answer", e)),
    }
}

/// A refusal to record: its problem document, with its status.
pub fn record_error(e: &AppError) -> Recorded {
    let problem = Problem::of(e);
    Recorded {
        status: problem.status,
        // Serialising a struct of strings cannot fail; fall back to an empty object anyway.
        body: serde_json::to_string(&problem).unwrap_or_else(|_| "{}".into()),
    }
}

/// The response that sends `answer`: its status and body as recorded; a created link's
/// `Location`; `Idempotent-Replayed: true` when it was recorded earlier.
pub fn respond(answer: Answer) -> HttpResponse {
    let Answer { recorded, replayed } = answer;
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    let ctype = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(ctype)));
    if status == StatusCode::CREATED {
        let code = serde_json::from_str::<Value>(&recorded.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        if let Some(code) = code {
            res.insert_header((header::LOCATION, format!("/api/v1/links/{code}")));
        }
    }
    if replayed {
        res.insert_header((REPLAYED, HeaderValue::from_static("true")));
    }
    res.body(recorded.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(v: Value) -> String {
        let mut out = String::new();
        canonical(&v, &mut out);
        out
    }

    #[test]
    fn key_order_and_spacing_do_not_change_a_request() {
        let a: Value = serde_json::from_str(
            r#"{"url": "https://a.example/", "code": "x1y", "n": [1, {"b": 2, "a": 1}]}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"n":[1,{"a":1,"b":2}],"code":"x1y","url":"https://a.example/"}"#,
        )
        .unwrap();
        assert_eq!(canon(a.clone()), canon(b));
        assert_eq!(
            canon(a),
            r#"{"code":"x1y","n":[1,{"a":1,"b":2}],"url":"https://a.example/"}"#
        );
    }

    #[test]
    fn no_password_reaches_the_request_hash() {
        let one = canon(serde_json::json!({"url": "https://a/", "password": "first secret"}));
        let two = canon(serde_json::json!({"url": "https://a/", "password": "second secret"}));
        assert_eq!(one, two);
        assert!(!one.contains("secret"), "{one}");
        let bulk =
            canon(serde_json::json!({"links": [{"url": "https://a/", "password": "bulk secret"}]}));
        assert!(!bulk.contains("secret"), "{bulk}");
        // Whether a password was given still tells two requests apart.
        assert_ne!(one, canon(serde_json::json!({"url": "https://a/"})));
        assert_ne!(
            one,
            canon(serde_json::json!({"url": "https://a/", "password": null}))
        );
    }

    use proptest::prelude::*;

    /// Arbitrary JSON, a few levels deep.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `v` as JSON text with every object's fields in reverse order and spaces between
    /// tokens, as another client may send the same request.
    fn reordered(v: &Value) -> String {
        match v {
            Value::Object(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .rev()
                    .map(|(k, v)| format!("{} : {}", Value::String(k.clone()), reordered(v)))
                    .collect();
                format!("{{ {} }}", parts.join(" , "))
            }
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(reordered).collect();
                format!("[ {} ]", parts.join(" , "))
            }
            other => other.to_string(),
        }
    }

    proptest! {
        /// The canonical form is JSON that reads back as the same value, and no field
        /// order changes it: the same request is the same request however it is sent.
        #[test]
        fn the_canonical_form_is_the_value_in_any_field_order(v in json()) {
            let c = canon(v.clone());
            prop_assert_eq!(serde_json::from_str::<Value>(&c).unwrap(), v.clone());
            let sent: Value = serde_json::from_str(&reordered(&v)).unwrap();
            prop_assert_eq!(canon(sent), c);
        }

        /// Whatever the header holds, the key is refused or taken, never a panic; a key
        /// taken is 1 to 255 visible ASCII characters, without the draft's quotes.
        #[test]
        fn any_header_value_is_a_key_or_a_validation_problem(raw in "\\PC{0,300}") {
            let Ok(value) = HeaderValue::from_str(&raw) else { return Ok(()) };
            let req = actix_web::test::TestRequest::post()
                .uri("/api/v1/links")
                .insert_header((HEADER, value))
                .to_http_request();
            match key(&req, &Value::Null) {
                Ok(Some(k)) => {
                    let k = k.as_str();
                    prop_assert!(!k.is_empty() && k.len() <= 255, "{:?}", k);
                    prop_assert!(k.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{:?}", k);
                }
                Ok(None) => prop_assert!(false, "a key was sent"),
                Err(e) => prop_assert!(matches!(e, Error::Validation(_) | Error::App(AppError::Validation(_))), "{e:?}"),
            }
        }
    }
}
