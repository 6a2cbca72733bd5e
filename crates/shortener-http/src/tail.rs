//! `shortener audit tail`: the audit log on the operator's terminal, one JSON object per
//! line, each exactly as the API renders an entry.

use std::io::Write;
use std::time::Duration;

use audit::{AuditEntry, AuditFilter, AuditLog};
use shortener_app::{AppError, AuditService, PageRequest};

use crate::ProcessError;
use crate::audit_log::{AuditEntryDto, AuditParams};

/// Entries printed when `--limit` is not given, as `tail` does.
pub const DEFAULT_LINES: u32 = 20;
/// How often `--follow` looks for new entries.
const POLL: Duration = Duration::from_secs(1);
/// Entries fetched per query while following.
const FOLLOW_BATCH: u32 = 500;

fn print(out: &mut impl Write, entries: &[AuditEntry]) -> Result<(), ProcessError> {
    for e in entries {
        serde_json::to_writer(&mut *out, &AuditEntryDto::from(e))
            .map_err(|e| ProcessError::Output(e.into()))?;
        writeln!(out).map_err(ProcessError::Output)?;
    }
    out.flush().map_err(ProcessError::Output)
}

/// Prints the newest matching entries, oldest of them first; with `follow`, keeps printing
/// new ones as they are committed until the process is stopped.
pub async fn tail<L: AuditLog<Error = AppError>>(
    log: &AuditService<L>,
    params: &AuditParams,
    follow: bool,
    out: &mut impl Write,
) -> Result<(), ProcessError> {
    let (filter, page) = AuditParams {
        limit: Some(params.limit.unwrap_or(DEFAULT_LINES)),
        ..params.clone()
    }
    .parse()?;
    let mut page = log.page(filter.clone(), page).await?;
    page.items.reverse();
    print(out, &page.items)?;
    if !follow {
        return Ok(());
    }
    let mut last = page.items.last().map(|e| (e.occurred_at, e.id));
    loop {
        tokio::time::sleep(POLL).await;
        // Everything newer than the last line printed, newest first, page by page.
        let since = match (filter.since, last) {
            (Some(s), Some((t, _))) => Some(s.max(t)),
            (s, l) => s.or(l.map(|(t, _)| t)),
        };
        let newer = AuditFilter {
            since,
            ..filter.clone()
        };
        let mut fresh = Vec::new();
        let mut after = None;
        loop {
            let batch = PageRequest {
                after,
                limit: FOLLOW_BATCH,
            };
            let page = log.page(newer.clone(), batch).await?;
            fresh.extend(
                page.items
                    .into_iter()
                    .filter(|e| last.is_none_or(|l| (e.occurred_at, e.id) > l)),
            );
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        fresh.reverse();
        if let Some(e) = fresh.last() {
            last = Some((e.occurred_at, e.id));
        }
        print(out, &fresh)?;
    }
}
