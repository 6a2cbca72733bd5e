//! Rate limiting's state, by the reach of each kind of policy (the rule itself, the sliding
//! window in whole-second slots, is [`shortener_domain::rate`]'s):
//!
//! - [`keys`]: the key policies (`requests`, `admin`), one budget per key shared by every
//!   instance on the database, through the [`RateLedger`] port and leases;
//! - [`address`]: the per-address policies (`auth-failures`, `unknown-codes`,
//!   `passwords`), counted in each instance's memory, bounded.
//!
//! Where the policies apply (the middleware chain, the redirect) is the HTTP edge's
//! business; this module only answers "may this one through, and what is left".

mod address;
mod keys;

pub use address::AddressLimiter;
pub use keys::{KeyLimiter, MAX_LEASE, RateLedger, Take, Taken};
