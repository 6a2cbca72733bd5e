//! Logging set-up, once, in the binary.
//!
//! actix-http logs every malformed request and every connection a client breaks off as an
//! ERROR of its own (`actix_http::h1::dispatcher`), so anyone could fill the log with our
//! "errors". Those lines are the client's fault: the originals are not printed; they are
//! counted, and once a second, when there were any, one WARN of `shortener::clients` says
//! how many and what the last one was. (It cannot be written from inside the subscriber:
//! tracing drops events raised while it dispatches one.)

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::config::LogFormat;

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
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    Registry::default()
        .with(filter)
        .with(ClientFaults)
        .with(fmt)
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
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

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
}
