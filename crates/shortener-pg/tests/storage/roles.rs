//! The service's role (`shortener_service`, migration 000011), straight at PostgreSQL:
//! connected as the service, nothing that removes, rewrites or hides audit history goes
//! through (detaching or dropping a partition, disabling triggers, replication mode,
//! TRUNCATE, UPDATE, DELETE), no schema object can be made, changed or dropped, and the
//! role owns nothing; adding and reading entries and making months ahead still work. (That
//! everything else the service does works as this role is the rest of the suite: every
//! store, listener and app in the tests connects as it.)

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use shortener_testing::TestDb;

/// What PostgreSQL says when a privilege is missing or only the owner may do it (and not
/// the append-only triggers' "append-only": the statement must not even get that far).
async fn refused(conn: &mut AsyncPgConnection, sql: &str) {
    let err = conn.batch_execute(sql).await.expect_err(sql).to_string();
    assert!(
        err.contains("permission denied") || err.contains("must be owner"),
        "{sql}: {err}"
    );
}

async fn service(db: &TestDb) -> AsyncPgConnection {
    AsyncPgConnection::establish(&db.service_url)
        .await
        .expect("connecting as the service")
}

fn insert(at: &str) -> String {
    format!(
        "INSERT INTO audit.entries (id, occurred_at, actor_kind, actor_id, action, entity_type, \
         entity_id, changes) VALUES (gen_random_uuid(), {at}, 'system', NULL, \
         'subscription.expired', 'subscription', 'x', '{{}}')"
    )
}

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = Text)]
    v: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn text(conn: &mut AsyncPgConnection, sql: &str) -> String {
    diesel::sql_query(sql)
        .get_result::<One>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .v
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// Partitions attached, entries visible, triggers enabled: what history looks like.
async fn history(owner: &mut AsyncPgConnection) -> (i64, i64, i64) {
    (
        count(
            owner,
            "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'audit.entries'::regclass",
        )
        .await,
        count(owner, "SELECT count(*) AS n FROM audit.entries").await,
        count(
            owner,
            "SELECT count(*) AS n FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE c.relnamespace = 'audit'::regnamespace AND t.tgenabled = 'O'",
        )
        .await,
    )
}

#[tokio::test]
async fn the_service_cannot_remove_rewrite_or_hide_audit_history() {
    let db = TestDb::new().await;
    let mut owner = db.conn().await;
    let mut conn = service(&db).await;
    // The service adds entries and reads them back.
    conn.batch_execute(&insert("now()")).await.unwrap();
    conn.batch_execute(&insert("now()")).await.unwrap();
    let part = text(
        &mut conn,
        "SELECT tableoid::regclass::text AS v FROM audit.entries LIMIT 1",
    )
    .await;
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM audit.entries").await,
        2
    );
    let before = history(&mut owner).await;
    assert_eq!(before.1, 2);

    for sql in [
        format!("ALTER TABLE audit.entries DETACH PARTITION {part}"),
        format!("DROP TABLE {part}"),
        "DROP TABLE audit.entries CASCADE".to_owned(),
        "DROP SCHEMA audit CASCADE".to_owned(),
        "ALTER TABLE audit.entries DISABLE TRIGGER ALL".to_owned(),
        "ALTER TABLE audit.entries DISABLE TRIGGER entries_no_update_or_delete".to_owned(),
        format!("ALTER TABLE {part} DISABLE TRIGGER ALL"),
        "DROP TRIGGER entries_no_truncate ON audit.entries".to_owned(),
        format!("DROP TRIGGER entries_no_truncate ON {part}"),
        "SET session_replication_role = replica".to_owned(),
        "TRUNCATE audit.entries".to_owned(),
        format!("TRUNCATE {part}"),
        "UPDATE audit.entries SET entity_id = 'y'".to_owned(),
        "DELETE FROM audit.entries".to_owned(),
        format!("UPDATE {part} SET entity_id = 'y'"),
        format!("DELETE FROM {part}"),
        "ALTER TABLE audit.entries RENAME TO old_entries".to_owned(),
        "ALTER TABLE audit.entries OWNER TO CURRENT_USER".to_owned(),
        "CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger \
         LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"
            .to_owned(),
        "ALTER FUNCTION audit.ensure_partitions(date, integer) SECURITY INVOKER".to_owned(),
        // A month made by hand would belong to the service, which could then drop it.
        "CREATE TABLE audit.entries_2099_12 PARTITION OF audit.entries \
         FOR VALUES FROM ('2099-12-01') TO ('2100-01-01')"
            .to_owned(),
    ] {
        refused(&mut conn, &sql).await;
    }

    assert_eq!(history(&mut owner).await, before, "history is untouched");
    assert_eq!(
        text(
            &mut owner,
            "SELECT string_agg(DISTINCT entity_id, ',') AS v FROM audit.entries"
        )
        .await,
        "x"
    );
}

#[tokio::test]
async fn the_service_owns_nothing_and_cannot_change_the_schema() {
    let db = TestDb::new().await;
    let mut conn = service(&db).await;
    for sql in [
        "CREATE TABLE shortener.x (id int)",
        "CREATE TABLE subscriptions.x (id int)",
        "CREATE TABLE audit.x (id int)",
        "CREATE SCHEMA x",
        "DROP TABLE shortener.links",
        "DROP TABLE shortener.links CASCADE",
        "ALTER TABLE shortener.links ADD COLUMN x int",
        "ALTER TABLE shortener.links DROP COLUMN target",
        "ALTER TABLE shortener.links DISABLE TRIGGER links_notify",
        "CREATE INDEX ON shortener.links (target)",
        "TRUNCATE shortener.links",
        "DELETE FROM shortener.links",
        "DELETE FROM shortener.accounts",
        "DELETE FROM shortener.api_keys",
        "DELETE FROM subscriptions.subscriptions",
        "TRUNCATE subscriptions.link_usage",
        "DROP VIEW shortener.clicks",
        "DROP FUNCTION shortener.link_clicks(uuid)",
        "CREATE OR REPLACE FUNCTION shortener.notify_link_change() RETURNS trigger \
         LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        "DROP TABLE subscriptions.subscriptions",
        "ALTER TABLE subscriptions.subscriptions DROP CONSTRAINT subscriptions_check",
    ] {
        refused(&mut conn, sql).await;
    }

    // Making months ahead creates tables, which still belong to the owner.
    conn.batch_execute("SELECT audit.ensure_partitions('2031-03-01', 2)")
        .await
        .unwrap();
    assert_eq!(
        count(
            &mut conn,
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid) \
                  + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid) \
                  + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid) \
                  + (SELECT count(*) FROM pg_type WHERE typowner = r.oid) AS n \
             FROM pg_roles r WHERE r.rolname = current_user"
        )
        .await,
        0,
        "the service owns nothing"
    );
    #[derive(QueryableByName)]
    struct Powers {
        #[diesel(sql_type = Bool)]
        special: bool,
        #[diesel(sql_type = Bool)]
        member: bool,
    }
    let p: Powers = diesel::sql_query(
        "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication \
                AS special, \
                pg_has_role(current_user, 'shortener_service', 'MEMBER') AS member \
           FROM pg_roles WHERE rolname = current_user",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(!p.special && p.member);
}

#[tokio::test]
async fn the_service_makes_months_ahead_that_it_cannot_drop() {
    let db = TestDb::new().await;
    let mut conn = service(&db).await;
    // No partition for March 2031 yet: the entry has nowhere to go.
    assert!(
        conn.batch_execute(&insert("'2031-03-15T00:00:00Z'"))
            .await
            .is_err()
    );
    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = Integer)]
        created: i32,
    }
    let made: Created =
        diesel::sql_query("SELECT audit.ensure_partitions('2031-03-01', 1) AS created")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(made.created, 1);
    conn.batch_execute(&insert("'2031-03-15T00:00:00Z'"))
        .await
        .unwrap();
    assert_eq!(
        text(
            &mut conn,
            "SELECT tableoid::regclass::text AS v FROM audit.entries \
             WHERE occurred_at >= '2031-03-01'"
        )
        .await,
        "audit.entries_2031_03"
    );
    refused(&mut conn, "DROP TABLE audit.entries_2031_03").await;
    refused(
        &mut conn,
        "ALTER TABLE audit.entries DETACH PARTITION audit.entries_2031_03",
    )
    .await;
    refused(&mut conn, "TRUNCATE audit.entries_2031_03").await;

    // Only the service may call it: not PUBLIC.
    let mut owner = db.conn().await;
    assert_eq!(
        count(
            &mut owner,
            "SELECT count(*) AS n FROM pg_proc p, aclexplode(p.proacl) a \
             WHERE p.oid = 'audit.ensure_partitions(date, integer)'::regprocedure \
               AND a.grantee = 0"
        )
        .await,
        0
    );
}
