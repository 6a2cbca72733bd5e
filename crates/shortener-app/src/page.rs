/// A keyset page request: items strictly after `after` in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Id of the last item of the previous page.
    pub after: Option<uuid::Uuid>,
    /// At most this many items (1..=500, checked at the edge).
    pub limit: u32,
}

/// One page of a list and where the next one starts (`None` on the last page). `C` is the
/// list's keyset position: an id for most lists, `(occurred_at, id)` for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C = uuid::Uuid> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Where the next page starts.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only proves there is more.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, position: impl Fn(&T) -> C) -> Page<T, C> {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(&position)
        } else {
            None
        };
        Page { items: rows, next }
    }
}
