//! `bare-redirect ADDR LINKS_FILE WORKERS`: the ceiling `cargo xtask bench` measures the
//! service's cached redirects against.
//!
//! A bare actix-web server that answers `GET /{code}` with `302 Found` and the code's
//! target in `Location` (404 for any other code), from a `HashMap` read at start from
//! `LINKS_FILE` (one `code<TAB>target` per line, as the bench writes it), on `WORKERS`
//! worker threads. Nothing else: no middleware, no database, no click counting. The gap
//! between this and the service is what the service's own work costs.
//!
//! Tooling only: built by the bench next to the service, never shipped.

use std::collections::HashMap;
use std::io;
use std::process::ExitCode;

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

const USAGE: &str = "usage: bare-redirect ADDR LINKS_FILE WORKERS
  ADDR        address to listen on, e.g. 127.0.0.1:8081
  LINKS_FILE  one `code<TAB>target` per line
  WORKERS     HTTP worker threads";

type Links = HashMap<String, String>;

/// `GET /{code}`: 302 to the code's target, or 404.
async fn follow(links: web::Data<Links>, req: HttpRequest) -> HttpResponse {
    let code = req.match_info().get("code").unwrap_or_default();
    match links.get(code) {
        Some(target) => HttpResponse::Found()
            .insert_header((header::LOCATION, target.as_str()))
            .finish(),
        None => HttpResponse::NotFound().finish(),
    }
}

fn read_links(path: &str) -> io::Result<Links> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            line.split_once('\t')
                .map(|(code, target)| (code.to_owned(), target.to_owned()))
                .ok_or_else(|| io::Error::other(format!("{path}: no tab in {line:?}")))
        })
        .collect()
}

async fn serve(addr: &str, links: Links, workers: usize) -> io::Result<()> {
    let links = web::Data::new(links);
    HttpServer::new(move || {
        App::new()
            .app_data(links.clone())
            .route("/{code}", web::get().to(follow))
    })
    .workers(workers)
    .bind(addr)?
    .run()
    .await
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, file, workers] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let Some(workers) = workers.parse::<usize>().ok().filter(|w| *w > 0) else {
        eprintln!("bare-redirect: WORKERS must be a positive whole number\n{USAGE}");
        return ExitCode::from(2);
    };
    let links = match read_links(file) {
        Ok(links) => links,
        Err(e) => {
            eprintln!("bare-redirect: reading {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let count = links.len();
    let result = actix_web::rt::System::new().block_on(async move {
        eprintln!("bare-redirect: {count} links, {workers} workers, on {addr}");
        serve(addr, links, workers).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-redirect: {e}");
            ExitCode::FAILURE
        }
    }
}
