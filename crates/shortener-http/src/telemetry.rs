//! Logging set-up, once, in the binary.
//!
//! actix-http logs every malformed request and every connection a client breaks off as an
//! ERROR of its own (`actix_http::h1::dispatcher`), so anyone could fill the log with our
//! "errors". Those lines are the client's fault: the originals are not printed; they are
//! counted, and once a second, when there were any, one WARN of `shortener::clients` says
//! how many and what the last one was. (It cannot be written from inside the subscriber:
//! tracing drops events raised while it dispatches one.)
//!
//! Every line written while a request is handled carries its id ([`RequestId::current`]),
//! added by the event formatter ([`WithRequestId`]) rather than by a span: a span on the
//! redirect cost a third of its cached rate, and the id is already at hand in a
//! task-local.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::config::LogFormat;
use crate::request_id::RequestId;

/// Installs the global subscriber, writing to stderr. `RUST_LOG` overrides the configured
/// filter.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) is harmless; ignore the error.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if subscriber(format, filter, ansi, std::io::stderr)
        .try_init()
        .is_ok()
    {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                report_client_faults();
            }
        });
    }
}

/// The subscriber `init` installs, writing to `writer` (with colours when `ansi`).
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Colours only for a person at a terminal, never into a file or a log shipper.
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    let fmt = match format {
        // The inner format is told about colours itself: it writes into a buffer first
        // when there is an id to add, and a buffer is not a terminal.
        LogFormat::Text => fmt
            .event_format(WithRequestId::text(format::format().with_ansi(ansi)))
            .boxed(),
        LogFormat::Json => fmt.json().map_event_format(WithRequestId::json).boxed(),
    };
    Registry::default()
        .with(filter)
        .with(ClientFaults)
        .with(fmt)
}

/// An event format that adds the current request's id to the line `inner` writes:
/// ` request_id=<id>` at the end of a text line, a `"request_id":"<id>"` member first in a
/// JSON object. Outside a request the line is `inner`'s, untouched. The line is formatted
/// into a buffer first, so this costs an allocation per line, and only inside a request.
pub struct WithRequestId<E> {
    inner: E,
    json: bool,
}

impl<E> WithRequestId<E> {
    /// Around a text format.
    pub fn text(inner: E) -> Self {
        WithRequestId { inner, json: false }
    }

    /// Around a JSON format (one object per line).
    pub fn json(inner: E) -> Self {
        WithRequestId { inner, json: true }
    }
}

impl<S, N, E> FormatEvent<S, N> for WithRequestId<E>
where
    E: FormatEvent<S, N>,
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(id) = RequestId::current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        if self.json {
            splice_json(&line, id.as_str(), &mut writer)
        } else {
            let (body, end) = split_newline(&line);
            write!(writer, "{body} request_id={id}{end}")
        }
    }
}

/// `line` without its trailing newline, and that newline.
fn split_newline(line: &str) -> (&str, &str) {
    match line.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (line, ""),
    }
}

/// Writes the JSON object `line` with `"request_id":"<id>"` as its first member; a line
/// that is not an object is written as it is.
fn splice_json(line: &str, id: &str, out: &mut impl fmt::Write) -> fmt::Result {
    let Some(rest) = line.strip_prefix('{') else {
        return out.write_str(line);
    };
    out.write_str("{\"request_id\":\"")?;
    // An id is visible ASCII: of JSON's special characters it can hold only these two.
    for part in id.split_inclusive(['"', '\\']) {
        match part.strip_suffix(['"', '\\']) {
            Some(before) => {
                out.write_str(before)?;
                out.write_char('\\')?;
                out.write_str(&part[before.len()..])?;
            }
            None => out.write_str(part)?,
        }
    }
    out.write_char('"')?;
    if !rest.trim_start().starts_with('}') {
        out.write_char(',')?;
    }
    out.write_str(rest)
}

/// An ERROR that actix-http logs for one connection: a client's malformed request, or a
/// connection it broke off.
fn is_client_fault(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && meta.target().starts_with("actix_http::h1")
}

/// Keeps actix-http's per-connection errors from every layer, counting them instead.
struct ClientFaults;

/// Client faults seen since the last report, and the last one's message.
static CLIENT_FAULTS: AtomicU64 = AtomicU64::new(0);
static LAST_CLIENT_FAULT: Mutex<String> = Mutex::new(String::new());

impl<S: Subscriber> Layer<S> for ClientFaults {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        if !is_client_fault(event.metadata()) {
            return true;
        }
        CLIENT_FAULTS.fetch_add(1, Ordering::Relaxed);
        // Best effort: under a flood, one of the messages is enough.
        if let Ok(mut last) = LAST_CLIENT_FAULT.try_lock() {
            let mut message = Message(String::new());
            event.record(&mut message);
            *last = message.0;
        }
        false
    }
}

/// Logs, as one WARN, the client faults counted since the last call (if any).
fn report_client_faults() {
    let count = CLIENT_FAULTS.swap(0, Ordering::Relaxed);
    if count == 0 {
        return;
    }
    let last = LAST_CLIENT_FAULT
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    tracing::warn!(
        target: "shortener::clients",
        count,
        last = %last,
        "clients sent malformed requests or broke off connections"
    );
}

/// The `message` of an event.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A log writer that keeps what it is given, for tests that read their log lines.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn a_flood_of_client_faults_is_one_warning_and_other_errors_still_print() {
        let out = Captured::default();
        let subscriber = subscriber(LogFormat::Text, EnvFilter::new("info"), false, out.clone());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..300 {
                tracing::error!(target: "actix_http::h1::dispatcher", "stream error: request parse error: invalid HTTP version specified");
            }
            report_client_faults();
            report_client_faults(); // nothing new: nothing written
            tracing::error!(target: "shortener_http::problem", "request failed");
        });
        let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("WARN"), "{text}");
        assert!(lines[0].contains("count=300"), "{text}");
        assert!(lines[0].contains("invalid HTTP version"), "{text}");
        assert!(
            lines[1].contains("ERROR") && lines[1].contains("request failed"),
            "{text}"
        );
    }

    /// What `format` writes for one INFO event, inside a request with `id` when there is
    /// one, inside an `/api` request's span.
    fn logged(format: LogFormat, id: Option<&str>) -> String {
        let out = Captured::default();
        let subscriber = subscriber(format, EnvFilter::new("info"), false, out.clone());
        tracing::subscriber::with_default(subscriber, || {
            let log = || {
                let span = tracing::info_span!("request", method = "GET", route = "/api/v1/links");
                let _entered = span.enter();
                tracing::info!(code = "abc", "something worth a line");
            };
            match id {
                Some(id) => RequestId::in_scope(RequestId::parse(id.as_bytes()).unwrap(), log),
                None => log(),
            }
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_lines_of_a_request_end_with_its_id() {
        let line = logged(LogFormat::Text, Some("3f2b8c0e9a7d4e61b5c2a8f0d1e9b7c4"));
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.ends_with(" request_id=3f2b8c0e9a7d4e61b5c2a8f0d1e9b7c4\n"),
            "{line}"
        );
        assert!(
            line.contains("something worth a line code=\"abc\""),
            "{line}"
        );
        assert!(line.contains("request{method=\"GET\""), "{line}");

        let line = logged(LogFormat::Text, None);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(!line.contains("request_id"), "{line}");
        assert!(line.contains("something worth a line"), "{line}");
    }

    #[test]
    fn json_lines_of_a_request_have_a_request_id_member() {
        // A client's id may hold the two characters JSON must escape.
        for id in ["3f2b8c0e9a7d4e61b5c2a8f0d1e9b7c4", r#"client"quoted\back\"#] {
            let line = logged(LogFormat::Json, Some(id));
            assert_eq!(line.lines().count(), 1, "{line}");
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(value["request_id"], id, "{line}");
            assert_eq!(value["level"], "INFO", "{line}");
            assert_eq!(
                value["fields"]["message"], "something worth a line",
                "{line}"
            );
            assert_eq!(value["fields"]["code"], "abc", "{line}");
            assert_eq!(value["span"]["route"], "/api/v1/links", "{line}");
        }

        let line = logged(LogFormat::Json, None);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(value.get("request_id").is_none(), "{line}");
        assert_eq!(
            value["fields"]["message"], "something worth a line",
            "{line}"
        );
    }

    #[test]
    fn the_member_is_spliced_into_any_object() {
        let spliced = |line: &str| {
            let mut out = String::new();
            splice_json(line, "i\"d", &mut out).unwrap();
            out
        };
        assert_eq!(spliced("{}\n"), "{\"request_id\":\"i\\\"d\"}\n");
        assert_eq!(
            spliced("{\"a\":1}\n"),
            "{\"request_id\":\"i\\\"d\",\"a\":1}\n"
        );
        assert_eq!(spliced("not json\n"), "not json\n");
    }
}
