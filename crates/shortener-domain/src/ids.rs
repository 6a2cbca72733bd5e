use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::DomainError;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A new UUIDv7: ids sort by creation time, which keyset pagination relies on.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            /// Wraps an id read back from storage or a request.
            pub fn from_uuid(u: Uuid) -> Self {
                $name(u)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map($name)
                    .map_err(|_| DomainError::InvalidId(stringify!($name)))
            }
        }
    };
}

id!(
    /// Identifies an account.
    AccountId
);
id!(
    /// Identifies an API key (and, for admin keys, the audit actor).
    KeyId
);
id!(
    /// Identifies a link independently of its code.
    LinkId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_sortable_and_round_trip_through_text() {
        let a = LinkId::new();
        let b = LinkId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b, "later ids sort after earlier ones");
        assert_eq!(a.to_string().parse::<LinkId>(), Ok(a));
        assert_eq!(
            "nope".parse::<AccountId>(),
            Err(DomainError::InvalidId("AccountId"))
        );
    }
}
