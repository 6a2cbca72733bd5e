//! Keyset pages, the one convention every list follows: the use case asks its store for
//! one item more than the page holds ([`PageRequest::overfetch`]), the store returns at
//! most what it was asked for, and [`Page::from_overfetch`] keeps the page and turns the
//! extra item, if any, into the next page's position.

/// A keyset page request: items strictly after `after` in the list's order. `C` is the
/// list's position: an id for most lists, `(occurred_at, id)` for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<C = uuid::Uuid> {
    /// Position of the last item of the previous page.
    pub after: Option<C>,
    /// At most this many items (1..=500, checked at the edge).
    pub limit: u32,
}

impl<C> PageRequest<C> {
    /// What to ask a store for: one item more than the page holds, which only proves that
    /// there is a next page.
    pub fn overfetch(self) -> PageRequest<C> {
        PageRequest {
            limit: self.limit.saturating_add(1),
            ..self
        }
    }
}

/// One page of a list and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C = uuid::Uuid> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Where the next page starts.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page of `limit` items from what an [overfetching](PageRequest::overfetch)
    /// request returned.
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
