//! Metrics at the edge: the one Prometheus registry ([`Registry`]), the middleware that
//! measures every request ([`Observe`]), the process's own figures, and `GET /metrics`.
//!
//! The registry is built here and handed to every component as a
//! [`shortener_app::metrics::Meter`] (see `startup.rs`); the names are in
//! [`shortener_app::metrics::CATALOG`]. A scrape runs the observers (gauges read from their
//! owners), reads `/proc/self` and renders. Histogram samples are folded into their
//! buckets every second as well, so that memory stays flat between scrapes.
//!
//! [`Observe`] wraps the whole app, redirects included, so it must cost a redirect next to
//! nothing. Recording straight into the registry's histogram cost a cached redirect about
//! 600 ns of CPU on two workers (measured: the registry's sample buffer and counters are
//! atomics both cores write, and each write then waits for the other core's cache line),
//! about 5 % of a redirect; replaying each worker's requests into it once a second, one
//! sample each, still cost about as much (the exporter buffers every sample, then sorts
//! each into its bucket). So each worker tallies its own series ([`Tally`]: a count and a
//! sum per bucket, written by that worker alone), and the duration histogram is rendered
//! from the tallies themselves at each scrape (summed over the workers: the work of a
//! scrape grows with the series, not with the requests); the upkeep, every second, only
//! adds the redirects' new answers to their outcome counters. The route is the resource's
//! name (every route is named after its template in `openapi.rs`): reading it costs no
//! allocation, and a code is never a label value.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use quanta::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shortener_app::metrics::{self, Counter, Gauge, Meter};
use shortener_domain::rate::Policy;

use crate::openapi::Operations;
use crate::problem::{self, Slug};

/// Bucket bounds (seconds) of request and query durations: a cached redirect takes tens of
/// microseconds, an API call a few milliseconds, a timeout seconds.
const SECONDS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds of lookup batch sizes (at most 256 codes a query).
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The service's one registry.
pub struct Registry {
    meter: Meter,
    handle: PrometheusHandle,
    process: Process,
    /// Every worker's request series, moved into the registry at each upkeep.
    tallies: Mutex<Vec<Arc<Tallied>>>,
}

impl Registry {
    /// A registry with the catalog described and the build announced.
    pub fn new() -> Registry {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(metrics::LOOKUP_BATCH.name.into()), BATCH)
            });
        // Both bucket lists are constants and not empty, which is all that can fail.
        let builder = builder.unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let meter = Meter::new(Arc::new(recorder));
        meter
            .gauge(&metrics::BUILD_INFO, &[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        let process = Process::new(&meter);
        // Calibrates the time-stamp counter now rather than on the first request.
        let _ = Instant::now();
        Registry {
            meter,
            handle,
            process,
            tallies: Mutex::default(),
        }
    }

    /// Where components get their instruments.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Adds the redirects the workers answered since the last call to their outcome
    /// counters, and folds recorded samples into their buckets.
    pub fn upkeep(&self) {
        for t in self.tallied() {
            t.flush();
        }
        self.handle.run_upkeep();
    }

    /// Everything, in the Prometheus text format, as of now: the registry's metrics, then
    /// the request duration histogram from the workers' tallies.
    pub fn render(&self) -> String {
        self.meter.observe_now();
        self.process.observe();
        self.upkeep();
        let mut text = self.handle.render();
        render_durations(&self.tallied(), &mut text);
        text
    }

    /// Every worker's series.
    fn tallied(&self) -> Vec<Arc<Tallied>> {
        self.tallies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn keep(&self, tallied: Arc<Tallied>) {
        self.tallies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tallied);
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// What `GET /metrics` renders: the registry, unless metrics are off or served on a
/// listener of their own.
pub struct Exposition(pub Option<Arc<Registry>>);

/// Registers `GET /metrics`.
pub fn routes(ops: &mut Operations) {
    ops.add(__path_scrape, scrape, &[Slug::NotFound]);
}

/// The metrics, in the Prometheus text format (version 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics.",
    description = "Every metric the service exports, in the Prometheus text format; the README lists them. 404 when metrics are switched off (`metrics.enabled = false`) or served on `metrics.listen`.",
    responses((status = 200, description = "The metrics.", content_type = "text/plain", body = String)),
)]
async fn scrape(exposition: web::Data<Exposition>) -> HttpResponse {
    match &exposition.0 {
        Some(registry) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(registry.render()),
        None => problem::respond(
            Slug::NotFound,
            "metrics are switched off here (metrics.enabled, metrics.listen)",
        ),
    }
}

// ---------------------------------------------------------------------------------------
// The request middleware.

/// Measures every request: its duration by route, method and status; for the redirect,
/// its outcome; for a 429, its policy. `None`: metrics are off, and it only passes the
/// request on.
pub struct Observe(pub Option<Arc<Registry>>);

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveService {
            service,
            series: Rc::new(Series::new(self.0.clone())),
        }))
    }
}

/// [`Observe`] on one worker.
pub struct ObserveService<S> {
    service: S,
    series: Rc<Series>,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Observed<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = self.series.registry.is_some().then(Instant::now);
        Observed {
            inner: self.service.call(req),
            started,
            series: self.series.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being answered, and when it arrived.
    pub struct Observed<F> {
        #[pin]
        inner: F,
        started: Option<Instant>,
        series: Rc<Series>,
    }
}

impl<F, B> Future for Observed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx));
        if let (Some(started), Ok(res)) = (this.started, &res) {
            this.series.record(res, started.elapsed());
        }
        Poll::Ready(res)
    }
}

/// The label of the redirect's route (the default service, which has no resource name).
const REDIRECT_ROUTE: &str = "/{code}";
/// The label of requests no named route answered (404s of unknown paths).
const OTHER_ROUTE: &str = "(other)";

/// One worker's series, by route, method and status.
pub struct Series {
    registry: Option<Arc<Registry>>,
    /// Series of named routes.
    named: RefCell<HashMap<String, Vec<Known>>>,
    /// Series of the redirect and of unserved paths: few and hot, so found without
    /// hashing.
    unnamed: RefCell<Vec<(&'static str, Known)>>,
}

/// One series of one worker.
struct Known {
    method: &'static str,
    status: StatusCode,
    tallied: Arc<Tallied>,
}

impl Series {
    fn new(registry: Option<Arc<Registry>>) -> Series {
        Series {
            registry,
            named: RefCell::default(),
            unnamed: RefCell::default(),
        }
    }

    fn record<B>(&self, res: &ServiceResponse<B>, elapsed: std::time::Duration) {
        let Some(registry) = &self.registry else {
            return;
        };
        let req = res.request();
        let status = res.status();
        let method = method_label(req.method());
        let seconds = elapsed.as_secs_f64();
        match req.match_name() {
            Some(route) => {
                let mut named = self.named.borrow_mut();
                let series = match named.get_mut(route) {
                    Some(list) => list,
                    None => named.entry(route.to_owned()).or_default(),
                };
                match series
                    .iter()
                    .find(|k| k.status == status && k.method == method)
                {
                    Some(known) => known.tallied.tally.record(seconds),
                    None => {
                        let known = Known::new(registry, route, method, status);
                        known.tallied.tally.record(seconds);
                        series.push(known);
                    }
                }
            }
            None => {
                // The redirect (one segment), or a path nothing serves.
                let route = match req.path().strip_prefix('/') {
                    Some(code) if !code.is_empty() && !code.contains('/') => REDIRECT_ROUTE,
                    _ => OTHER_ROUTE,
                };
                let mut unnamed = self.unnamed.borrow_mut();
                match unnamed
                    .iter()
                    .find(|(r, k)| *r == route && k.status == status && k.method == method)
                {
                    Some((_, known)) => known.tallied.tally.record(seconds),
                    None => {
                        let known = Known::new(registry, route, method, status);
                        known.tallied.tally.record(seconds);
                        unnamed.push((route, known));
                    }
                }
            }
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(policy) = res.response().extensions().get::<Policy>()
        {
            registry
                .meter()
                .counter(&metrics::RATE_LIMITED, &[policy.as_str()])
                .increment(1);
        }
    }
}

impl Known {
    /// A new series, kept by the registry for its upkeep.
    fn new(registry: &Registry, route: &str, method: &'static str, status: StatusCode) -> Known {
        let meter = registry.meter();
        let tallied = Arc::new(Tallied {
            tally: Tally::default(),
            flushed: Mutex::default(),
            route: route.to_owned(),
            method,
            status,
            outcome: (route == REDIRECT_ROUTE)
                .then(|| redirect_outcome(status))
                .flatten()
                .map(|outcome| meter.counter(&metrics::REDIRECTS, &[outcome])),
        });
        registry.keep(tallied.clone());
        Known {
            method,
            status,
            tallied,
        }
    }
}

/// Buckets of [`SECONDS`], and one past the last (`+Inf`).
const BUCKETS: usize = SECONDS.len() + 1;

/// Requests of one series on one worker: how many fell in each bucket, and their sum.
/// Written by that worker alone (a load and a store, no read-modify-write), read by the
/// registry's upkeep.
#[derive(Default)]
struct Tally {
    counts: [AtomicU64; BUCKETS],
    /// `f64` bits.
    sums: [AtomicU64; BUCKETS],
}

impl Tally {
    fn record(&self, seconds: f64) {
        let b = SECONDS.partition_point(|&le| le < seconds);
        let sum = f64::from_bits(self.sums[b].load(Ordering::Relaxed)) + seconds;
        self.sums[b].store(sum.to_bits(), Ordering::Relaxed);
        // After the sum: whoever sees this count sees the sum that includes it.
        let count = self.counts[b].load(Ordering::Relaxed) + 1;
        self.counts[b].store(count, Ordering::Release);
    }
}

/// A worker's series: its labels, its tally and (for the redirect) the outcome counter the
/// upkeep adds its new requests to.
struct Tallied {
    tally: Tally,
    /// Requests already added to `outcome`.
    flushed: Mutex<u64>,
    route: String,
    method: &'static str,
    status: StatusCode,
    outcome: Option<Counter>,
}

impl Tallied {
    /// Adds the requests tallied since the last call to the outcome counter.
    fn flush(&self) {
        let Some(outcome) = &self.outcome else {
            return;
        };
        let mut flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
        let requests: u64 = self
            .tally
            .counts
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .sum();
        outcome.increment(requests.saturating_sub(*flushed));
        *flushed = requests.max(*flushed);
    }
}

/// One series summed over the workers: requests per bucket (not cumulative) and the sum.
#[derive(Default)]
struct Summed {
    counts: [u64; BUCKETS],
    sum: f64,
}

/// Appends the request duration histogram (text format 0.0.4) from every worker's series,
/// those of one route, method and status summed, in a stable order.
fn render_durations(tallied: &[Arc<Tallied>], out: &mut String) {
    use std::fmt::Write as _;

    let mut series: std::collections::BTreeMap<(&str, &str, u16), Summed> = Default::default();
    for t in tallied {
        let s = series
            .entry((t.route.as_str(), t.method, t.status.as_u16()))
            .or_default();
        for b in 0..BUCKETS {
            // The count first: a sum read after it holds at least those requests.
            s.counts[b] += t.tally.counts[b].load(Ordering::Acquire);
            s.sum += f64::from_bits(t.tally.sums[b].load(Ordering::Relaxed));
        }
    }
    if series.is_empty() {
        return;
    }
    let name = metrics::HTTP_DURATION.name;
    let _ = writeln!(out, "# HELP {name} {}", metrics::HTTP_DURATION.help);
    let _ = writeln!(out, "# TYPE {name} histogram");
    for ((route, method, status), s) in &series {
        let labels = format!(
            "route=\"{}\",method=\"{method}\",status=\"{status}\"",
            escape_label(route)
        );
        let mut cumulative = 0;
        for (b, n) in s.counts.iter().enumerate() {
            cumulative += n;
            match SECONDS.get(b) {
                Some(le) => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", s.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// `value` as a label value of the text format: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A bounded label for any method a client may send.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// What a redirect's status says happened (`None`: not a redirect's answer, e.g. 405).
fn redirect_outcome(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        301 | 302 | 307 | 308 => Some("found"),
        // A password-protected link's form, and the form again after a wrong password.
        200 => Some("protected"),
        401 => Some("wrong_password"),
        404 => Some("not_found"),
        410 => Some("expired"),
        429 => Some("rate_limited"),
        s if s >= 500 => Some("failed"),
        _ => None,
    }
}

/// Registers every series an operator's alert or panel expects to exist before the first
/// event of its kind: a counter that is missing is not zero to PromQL.
pub fn announce(meter: &Meter) {
    for outcome in [
        "found",
        "protected",
        "wrong_password",
        "not_found",
        "expired",
        "rate_limited",
        "failed",
    ] {
        meter.counter(&metrics::REDIRECTS, &[outcome]).increment(0);
    }
    for to in ["replica", "primary"] {
        meter.counter(&metrics::DB_READS, &[to]).increment(0);
    }
    for policy in Policy::ALL {
        meter
            .counter(&metrics::RATE_LIMITED, &[policy.as_str()])
            .increment(0);
    }
}

// ---------------------------------------------------------------------------------------
// The process.

/// The process's own figures, read from `/proc/self` at each scrape (Linux; elsewhere
/// they stay at zero).
struct Process {
    cpu: Counter,
    rss: Gauge,
    vsz: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    threads: Gauge,
}

/// Linux's clock ticks per second as `/proc` reports CPU times (`USER_HZ`, fixed by the
/// kernel's ABI).
const TICKS: f64 = 100.0;

impl Process {
    fn new(meter: &Meter) -> Process {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        meter.gauge(&metrics::PROCESS_START, &[]).set(started);
        Process {
            cpu: meter.counter(&metrics::PROCESS_CPU, &[]),
            rss: meter.gauge(&metrics::PROCESS_RSS, &[]),
            vsz: meter.gauge(&metrics::PROCESS_VSZ, &[]),
            open_fds: meter.gauge(&metrics::PROCESS_OPEN_FDS, &[]),
            max_fds: meter.gauge(&metrics::PROCESS_MAX_FDS, &[]),
            threads: meter.gauge(&metrics::PROCESS_THREADS, &[]),
        }
    }

    fn observe(&self) {
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some((user, system)) = cpu_ticks(&stat)
        {
            // The registry's counters are whole numbers: whole seconds, which `rate()` over
            // minutes resolves well enough.
            self.cpu.absolute(((user + system) as f64 / TICKS) as u64);
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for (field, gauge, scale) in [
                ("VmRSS:", &self.rss, 1024.0),
                ("VmSize:", &self.vsz, 1024.0),
                ("Threads:", &self.threads, 1.0),
            ] {
                if let Some(v) = status_field(&status, field) {
                    gauge.set(v * scale);
                }
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as f64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
            && let Some(max) = max_open_files(&limits)
        {
            self.max_fds.set(max);
        }
    }
}

/// User and system CPU ticks from `/proc/self/stat` (fields 14 and 15; the command name
/// in field 2 may hold spaces and parentheses, so count from its closing one).
fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// The number after `field` in `/proc/self/status`.
fn status_field(status: &str, field: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// The soft limit of "Max open files" in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_linux_writes_them() {
        let stat = "4242 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 9 0 100 1000 50";
        assert_eq!(cpu_ticks(stat), Some((250, 75)));
        let status = "Name:\tshortener\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\nThreads:\t9\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(2048.0));
        assert_eq!(status_field(status, "Threads:"), Some(9.0));
        assert_eq!(status_field(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024.0));
    }

    #[test]
    fn redirect_outcomes_and_method_labels_are_bounded() {
        assert_eq!(redirect_outcome(StatusCode::FOUND), Some("found"));
        assert_eq!(
            redirect_outcome(StatusCode::PERMANENT_REDIRECT),
            Some("found")
        );
        assert_eq!(redirect_outcome(StatusCode::GONE), Some("expired"));
        assert_eq!(
            redirect_outcome(StatusCode::SERVICE_UNAVAILABLE),
            Some("failed")
        );
        assert_eq!(redirect_outcome(StatusCode::METHOD_NOT_ALLOWED), None);
        let odd = Method::from_bytes(b"BREW").unwrap_or(Method::GET);
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn the_duration_histogram_is_rendered_from_every_workers_tallies() {
        let registry = Registry::new();
        let series = |route: &str| {
            let t = Arc::new(Tallied {
                tally: Tally::default(),
                flushed: Mutex::default(),
                route: route.to_owned(),
                method: "GET",
                status: StatusCode::FOUND,
                outcome: Some(registry.meter().counter(&metrics::REDIRECTS, &["found"])),
            });
            registry.keep(t.clone());
            t
        };
        // Two workers' series of one route, and another route with a quote in it.
        let (one, two, odd) = (series("/t"), series("/t"), series("/a\"b"));
        for seconds in [0.000_03, 0.000_04, 0.003] {
            one.tally.record(seconds);
        }
        for seconds in [0.003, 0.004, 20.0] {
            two.tally.record(seconds);
        }
        registry.upkeep();
        registry.upkeep(); // nothing new: nothing counted twice
        one.tally.record(0.000_1); // exactly a bound: its own bucket (le)
        odd.tally.record(1.0);
        let text = registry.render();
        let line = |series: &str| {
            text.lines()
                .find(|l| l.starts_with(series))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{series} in:\n{text}"))
        };
        let name = "shortener_http_request_duration_seconds";
        let bucket = |le: &str| {
            line(&format!(
                "{name}_bucket{{route=\"/t\",method=\"GET\",status=\"302\",le=\"{le}\"}}"
            ))
        };
        assert_eq!(bucket("0.00005"), 2.0);
        assert_eq!(bucket("0.0001"), 3.0);
        assert_eq!(bucket("0.0025"), 3.0);
        assert_eq!(bucket("0.005"), 6.0);
        assert_eq!(bucket("10"), 6.0);
        assert_eq!(bucket("+Inf"), 7.0);
        let sum = line(&format!("{name}_sum{{route=\"/t\""));
        assert!((sum - 20.01017).abs() < 1e-9, "{sum}");
        assert_eq!(line(&format!("{name}_count{{route=\"/t\"")), 7.0);
        assert_eq!(
            line(&format!("{name}_count{{route=\"/a\\\"b\"")),
            1.0,
            "label values are escaped"
        );
        assert_eq!(line("shortener_redirects_total{outcome=\"found\"}"), 8.0);
        assert_eq!(
            text.matches(&format!("# TYPE {name} histogram")).count(),
            1,
            "{text}"
        );
        // The whole text still parses as Prometheus text.
        prom_text_format_parser::Scrape::parse(&text).expect("parses");
    }

    /// What [`Observe`] costs a redirect: a 302 through it with metrics on and off,
    /// interleaved batches on one thread, the same requests each time. `cargo xtask bench`
    /// runs it in release and reports the line it prints.
    #[actix_web::test]
    #[ignore = "a measurement: cargo xtask bench runs it"]
    async fn measure_the_cost_per_request() {
        use crate::cost;

        let registry = Arc::new(Registry::new());
        let on = Observe(Some(registry.clone()))
            .new_transform(cost::found())
            .await
            .unwrap_or_else(|()| unreachable!());
        let off = Observe(None)
            .new_transform(cost::found())
            .await
            .unwrap_or_else(|()| unreachable!());
        cost::extra_ns("metrics-cost-ns", &on, &off, || registry.upkeep()).await;
        let text = registry.render();
        let all = u64::from(cost::BATCH) * cost::ROUNDS as u64;
        assert!(
            text.contains(&format!(
                "shortener_redirects_total{{outcome=\"found\"}} {all}"
            )),
            "{text}"
        );
    }

    #[test]
    fn a_render_has_the_build_and_the_process() {
        let registry = Registry::new();
        let text = registry.render();
        assert!(
            text.contains(&format!(
                "shortener_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        if cfg!(target_os = "linux") {
            let rss = text
                .lines()
                .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
                .and_then(|v| v.parse::<f64>().ok());
            assert!(rss.is_some_and(|v| v > 1e6), "{text}");
        }
    }
}
