//! The audit table's guarantees, straight at PostgreSQL through raw SQL: history cannot be
//! rewritten (UPDATE, DELETE, TRUNCATE are refused, on the table and on each partition),
//! and entries land in monthly partitions that the service creates ahead.

use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use shortener_testing::TestDb;

fn insert(at: &str) -> String {
    format!(
        "INSERT INTO audit.entries (id, occurred_at, actor_kind, actor_id, action, entity_type, \
         entity_id, changes) VALUES (gen_random_uuid(), '{at}', 'system', NULL, \
         'subscription.expired', 'subscription', 'x', '{{}}')"
    )
}

async fn refused(conn: &mut AsyncPgConnection, sql: &str) {
    let err = conn.batch_execute(sql).await.expect_err(sql);
    assert!(err.to_string().contains("append-only"), "{sql}: {err}");
}

#[derive(QueryableByName)]
struct Part {
    #[diesel(sql_type = Text)]
    part: String,
}

#[tokio::test]
async fn history_cannot_be_rewritten_whatever_is_asked() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    conn.batch_execute(&insert("now()")).await.unwrap();
    let part: Part =
        diesel::sql_query("SELECT tableoid::regclass::text AS part FROM audit.entries")
            .get_result(&mut conn)
            .await
            .unwrap();

    refused(&mut conn, "UPDATE audit.entries SET entity_id = 'y'").await;
    refused(&mut conn, "DELETE FROM audit.entries").await;
    refused(&mut conn, "TRUNCATE audit.entries").await;
    // Going around the parent does not help.
    refused(
        &mut conn,
        &format!("UPDATE {} SET entity_id = 'y'", part.part),
    )
    .await;
    refused(&mut conn, &format!("DELETE FROM {}", part.part)).await;
    refused(&mut conn, &format!("TRUNCATE {}", part.part)).await;

    let left: Part = diesel::sql_query("SELECT entity_id AS part FROM audit.entries")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(left.part, "x", "the entry is untouched");
}

#[tokio::test]
async fn entries_land_in_the_month_they_happened_and_months_are_made_ahead() {
    let db = TestDb::new().await;
    let store = db.store();
    let pool = store.db();
    let mut conn = db.conn().await;
    // No partition for 2030 yet: an entry there has nowhere to go.
    assert!(
        conn.batch_execute(&insert("2030-01-15T00:00:00Z"))
            .await
            .is_err()
    );

    let jan = NaiveDate::from_ymd_opt(2030, 1, 20).unwrap();
    assert_eq!(pool.ensure_audit_partitions(jan, 2).await.unwrap(), 2);
    assert_eq!(
        pool.ensure_audit_partitions(jan, 2).await.unwrap(),
        0,
        "idempotent"
    );

    // Either side of the month boundary.
    conn.batch_execute(&insert("2030-01-31T23:59:59.999999Z"))
        .await
        .unwrap();
    conn.batch_execute(&insert("2030-02-01T00:00:00Z"))
        .await
        .unwrap();
    let parts: Vec<Part> = diesel::sql_query(
        "SELECT tableoid::regclass::text AS part FROM audit.entries \
         WHERE occurred_at >= '2030-01-01' ORDER BY occurred_at",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let parts: Vec<String> = parts.into_iter().map(|p| p.part).collect();
    assert_eq!(parts, ["audit.entries_2030_01", "audit.entries_2030_02"]);
    // New partitions carry the TRUNCATE guard too.
    refused(&mut conn, "TRUNCATE audit.entries_2030_02").await;
}
