//! Arrays bound as query parameters, encoded in one pass.
//!
//! The click counter's writes bind a few arrays of tens of thousands of numbers, ids, days
//! and labels. diesel encodes an array element by element, each through a buffer of its own and
//! a dynamically dispatched write: about 190 instructions an element, which made encoding
//! the largest cost of a flush in the service (measured with callgrind, issue #17). Here the
//! whole array is laid out in PostgreSQL's binary array format in one buffer and written
//! at once.

use std::io::Write as _;

use chrono::NaiveDate;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{
    Array, BigInt, Date, HasSqlType, Integer, SmallInt, Text, Uuid as SqlUuid,
};
use uuid::Uuid;

/// A value as an array element: its binary form, as PostgreSQL's `*_send` functions give
/// it (numbers in network byte order).
pub trait Element {
    /// Its SQL type.
    type Sql;
    /// Bytes of its binary form.
    fn size(&self) -> usize;
    /// Appends its binary form.
    fn put(&self, out: &mut Vec<u8>);
    /// Appends its length (an `i32`) and its binary form, as an array element. Types of
    /// a fixed size append both at once: one capacity check an element, not two.
    fn put_element(&self, out: &mut Vec<u8>) {
        let size = i32::try_from(self.size()).unwrap_or(i32::MAX);
        out.extend_from_slice(&size.to_be_bytes());
        self.put(out);
    }
}

/// A fixed-size value's `N` bytes as an array element (`M` = 4 + `N`): its length, then
/// the bytes.
fn fixed<const N: usize, const M: usize>(bytes: [u8; N], out: &mut Vec<u8>) {
    let mut element = [0u8; M];
    element[..4].copy_from_slice(&(N as i32).to_be_bytes());
    element[4..].copy_from_slice(&bytes);
    out.extend_from_slice(&element);
}

impl Element for i16 {
    type Sql = SmallInt;
    fn size(&self) -> usize {
        2
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn put_element(&self, out: &mut Vec<u8>) {
        fixed::<2, 6>(self.to_be_bytes(), out);
    }
}

impl Element for i32 {
    type Sql = Integer;
    fn size(&self) -> usize {
        4
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn put_element(&self, out: &mut Vec<u8>) {
        fixed::<4, 8>(self.to_be_bytes(), out);
    }
}

impl Element for i64 {
    type Sql = BigInt;
    fn size(&self) -> usize {
        8
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn put_element(&self, out: &mut Vec<u8>) {
        fixed::<8, 12>(self.to_be_bytes(), out);
    }
}

impl Element for Uuid {
    type Sql = SqlUuid;
    fn size(&self) -> usize {
        16
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn put_element(&self, out: &mut Vec<u8>) {
        fixed::<16, 20>(*self.as_bytes(), out);
    }
}

/// PostgreSQL's day zero: a `date` is sent as days since then.
const PG_EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(day) => day,
    None => panic!("2000-01-01 is a day"),
};

impl Element for NaiveDate {
    type Sql = Date;
    fn size(&self) -> usize {
        4
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&pg_day(*self).to_be_bytes());
    }
    fn put_element(&self, out: &mut Vec<u8>) {
        fixed::<4, 8>(pg_day(*self).to_be_bytes(), out);
    }
}

/// `day` as PostgreSQL sends a `date`: days since [`PG_EPOCH`].
fn pg_day(day: NaiveDate) -> i32 {
    // Every NaiveDate is within ±262 143 years: the day number fits an i32.
    i32::try_from(day.signed_duration_since(PG_EPOCH).num_days()).unwrap_or(0)
}

impl Element for &str {
    type Sql = Text;
    fn size(&self) -> usize {
        self.len()
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

/// A slice bound as a one-dimensional PostgreSQL array without NULLs.
#[derive(Debug)]
pub struct ArrayParam<'a, T>(pub &'a [T]);

impl<T> ToSql<Array<T::Sql>, Pg> for ArrayParam<'_, T>
where
    T: Element + std::fmt::Debug,
    Pg: HasSqlType<T::Sql>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let oid = <Pg as HasSqlType<T::Sql>>::metadata(out.metadata_lookup()).oid()?;
        let len = i32::try_from(self.0.len())?;
        let bytes: usize = self.0.iter().map(|v| 4 + v.size()).sum();
        let mut buf = Vec::with_capacity(20 + bytes);
        // Dimensions, the has-NULLs flag, the element type; the one dimension's length
        // and lower bound; then each element's length and bytes.
        buf.extend_from_slice(&1i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&oid.to_be_bytes());
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&1i32.to_be_bytes());
        for value in self.0 {
            value.put_element(&mut buf);
        }
        out.write_all(&buf)?;
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use diesel::query_builder::BindCollector;
    use diesel::query_builder::bind_collector::RawBytesBindCollector;

    use super::*;

    /// Built-in types have static OIDs: nothing is looked up.
    struct Builtin;

    impl diesel::pg::PgMetadataLookup for Builtin {
        fn lookup_type(&mut self, name: &str, _: Option<&str>) -> diesel::pg::PgTypeMetadata {
            unreachable!("{name} is not a built-in type")
        }
    }

    /// The bytes diesel's own encoding gives `value` as `ST`.
    fn diesel_bytes<ST, V>(value: &V) -> Vec<u8>
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg> + ?Sized,
        ST: diesel::sql_types::SqlType,
    {
        let mut collector = RawBytesBindCollector::<Pg>::new();
        collector
            .push_bound_value::<ST, V>(value, &mut Builtin)
            .expect("diesel encodes it");
        collector.binds.pop().flatten().expect("one bind, not NULL")
    }

    fn ours<T>(values: &[T]) -> Vec<u8>
    where
        T: Element + std::fmt::Debug,
        Pg: HasSqlType<T::Sql>,
        T::Sql: diesel::sql_types::SqlType,
        Array<T::Sql>: diesel::sql_types::SqlType,
    {
        diesel_bytes::<Array<T::Sql>, _>(&ArrayParam(values))
    }

    #[test]
    fn arrays_encode_exactly_as_diesel_encodes_them() {
        let days = [
            NaiveDate::from_ymd_opt(2026, 12, 7).expect("a day"),
            NaiveDate::from_ymd_opt(1999, 12, 31).expect("a day"),
            PG_EPOCH,
        ];
        assert_eq!(ours(&days[..]), diesel_bytes::<Array<Date>, _>(&days[..]));
        let ids = [Uuid::from_u128(1), Uuid::from_u128(u128::MAX - 7)];
        assert_eq!(ours(&ids[..]), diesel_bytes::<Array<SqlUuid>, _>(&ids[..]));
        let longs = [0i64, -1, i64::MAX, 42];
        assert_eq!(
            ours(&longs[..]),
            diesel_bytes::<Array<BigInt>, _>(&longs[..])
        );
        let ints = [7i32, i32::MIN];
        assert_eq!(
            ours(&ints[..]),
            diesel_bytes::<Array<Integer>, _>(&ints[..])
        );
        let shorts = [1023i16, 0];
        assert_eq!(
            ours(&shorts[..]),
            diesel_bytes::<Array<SmallInt>, _>(&shorts[..])
        );
        let texts = ["(direct)", "", "xn--bcher-kva.example", "caf\u{e9}"];
        assert_eq!(ours(&texts[..]), diesel_bytes::<Array<Text>, _>(&texts[..]));
        let none: [i64; 0] = [];
        assert_eq!(ours(&none[..]), diesel_bytes::<Array<BigInt>, _>(&none[..]));
    }
}
