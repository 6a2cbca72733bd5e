//! Timing a middleware in process (tests only): a redirect's 302 through it and through
//! the same service without it, in interleaved batches on one thread, so that the machine's
//! drift hits both sides alike. wrk cannot resolve a few hundred nanoseconds on a shared
//! machine; this can. The ignored `measure_the_cost_per_request` tests use it.

use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, fn_service};
use actix_web::test::TestRequest;

/// Requests per batch.
pub(crate) const BATCH: u32 = 20_000;
/// Batches on each side.
pub(crate) const ROUNDS: usize = 15;

/// The service under the middleware: a redirect's answer, and nothing else.
pub(crate) fn found()
-> impl Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error> {
    fn_service(|req: ServiceRequest| async {
        Ok(req.into_response(
            HttpResponse::Found()
                .insert_header(("Location", "https://example.com/"))
                .finish(),
        ))
    })
}

/// What `with` costs a request more than `without` (ns: median, lowest, highest over
/// [`ROUNDS`] pairs of batches); `between` runs after each pair. Prints
/// `<label>: median M min A max B`, the line `cargo xtask bench` reads.
pub(crate) async fn extra_ns<A, B>(
    label: &str,
    with: &A,
    without: &B,
    between: impl Fn(),
) -> [f64; 3]
where
    A: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
    B: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    let mut extra = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let a = per_call(with).await;
        let b = per_call(without).await;
        between();
        extra.push(a - b);
    }
    extra.sort_by(f64::total_cmp);
    let figures = [extra[ROUNDS / 2], extra[0], extra[ROUNDS - 1]];
    println!(
        "{label}: median {:.0} min {:.0} max {:.0}",
        figures[0], figures[1], figures[2]
    );
    figures
}

/// Wall time per request of a batch through `service`.
async fn per_call<S>(service: &S) -> f64
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    let started = Instant::now();
    for _ in 0..BATCH {
        let req = TestRequest::get().uri("/k1a2b3c").to_srv_request();
        std::hint::black_box(service.call(req).await.is_ok());
    }
    started.elapsed().as_nanos() as f64 / f64::from(BATCH)
}
