//! The audit module's ports: where entries are written and where they are read. Both are
//! implemented by shortener-pg; the module itself stays free of any storage or runtime.

use std::future::Future;
use std::pin::Pin;

use crate::{AuditCursor, AuditEntry, AuditFilter};

/// A boxed, sendable future: what object-safe async methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Appends entries inside the transaction of the change they record, so that a change and
/// its entry commit (or roll back) together. Object-safe: the app drives it through
/// `&mut dyn` transactions.
pub trait AuditRecorder: Send {
    /// The implementation's failure (the app's error, in practice).
    type Error;

    /// Appends `entry`; it becomes visible when the surrounding transaction commits.
    fn record(&mut self, entry: AuditEntry) -> BoxFuture<'_, Result<(), Self::Error>>;

    /// Appends every entry of `entries`, in order. Implementations write them in one go
    /// where they can (a bulk create records up to a thousand).
    fn record_all(&mut self, entries: Vec<AuditEntry>) -> BoxFuture<'_, Result<(), Self::Error>>
    where
        Self::Error: Send,
    {
        Box::pin(async move {
            for entry in entries {
                self.record(entry).await?;
            }
            Ok(())
        })
    }
}

/// One read of the log: which entries, from where, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// What to match.
    pub filter: AuditFilter,
    /// Continue strictly after this position (newest first); `None` starts at the newest.
    pub after: Option<AuditCursor>,
    /// At most this many entries.
    pub limit: u32,
}

/// Reads the log, newest first by `(occurred_at, id)`.
pub trait AuditLog: Send + Sync + 'static {
    /// The implementation's failure.
    type Error;

    /// Up to `query.limit` entries matching `query.filter`, after `query.after`.
    fn entries(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, Self::Error>> + Send;
}
