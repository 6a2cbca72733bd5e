//! Every migration's `down` undoes its `up` exactly, checked against a snapshot of the
//! catalog (schemas, relations, columns, constraints, indexes, functions, triggers, types,
//! and who may do what with each schema, relation and function).

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::MigrationHarness;
use shortener_pg::MIGRATIONS;
use shortener_testing::TestDb;

type SyncConn = AsyncConnectionWrapper<AsyncPgConnection>;

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

const SNAPSHOT: &str = r"
WITH user_ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_toast%'
      AND nspname NOT LIKE 'pg_temp%'
)
SELECT line FROM (
    SELECT 'schema ' || nspname AS line FROM user_ns
    UNION ALL
    SELECT 'rel ' || n.nspname || '.' || c.relname || ' kind=' || c.relkind::text
      FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
    UNION ALL
    SELECT 'col ' || n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN user_ns n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'con ' || n.nspname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
      FROM pg_constraint co JOIN user_ns n ON n.oid = co.connamespace
    UNION ALL
    SELECT 'idx ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN user_ns n ON n.oid = c.relnamespace
    UNION ALL
    SELECT 'fn ' || p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid))
      FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p')
    UNION ALL
    SELECT 'trg ' || t.tgname || ' on ' || t.tgrelid::regclass::text || ' ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'type ' || n.nspname || '.' || t.typname
      FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace
    UNION ALL
    -- Privileges as granted, defaults spelled out (a grant taken back leaves the default
    -- written down instead of NULL, which is the same thing).
    SELECT 'acl schema ' || n.nspname || ' ' || a.grantee::regrole::text || ' ' || a.privilege_type
      FROM pg_namespace n JOIN user_ns u ON u.oid = n.oid,
           aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
    UNION ALL
    SELECT 'acl rel ' || n.nspname || '.' || c.relname || ' ' || a.grantee::regrole::text
           || ' ' || a.privilege_type
      FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace,
           aclexplode(coalesce(c.relacl, CASE c.relkind WHEN 'S' THEN acldefault('s', c.relowner)
                                                        ELSE acldefault('r', c.relowner) END)) a
     WHERE c.relkind NOT IN ('i', 'I')
    UNION ALL
    SELECT 'acl fn ' || p.oid::regprocedure::text || ' ' || a.grantee::regrole::text || ' ' || a.privilege_type
      FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace,
           aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
) s
ORDER BY line
";

fn snapshot(conn: &mut SyncConn) -> Vec<String> {
    diesel::sql_query(SNAPSHOT)
        .load::<Line>(conn)
        .expect("catalog snapshot")
        .into_iter()
        .map(|l| l.line)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_down_undoes_its_up() {
    let db = TestDb::empty().await;
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = SyncConn::establish(&url).unwrap();
        // Creates diesel's bookkeeping table, so it is part of every snapshot.
        conn.applied_migrations().unwrap();
        let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS).unwrap();
        assert!(
            migrations.len() >= 2,
            "found {} migrations",
            migrations.len()
        );
        let empty = snapshot(&mut conn);
        for m in &migrations {
            let before = snapshot(&mut conn);
            conn.run_migration(m.as_ref()).unwrap();
            let after = snapshot(&mut conn);
            assert_ne!(before, after, "{} changes the schema", m.name());
            conn.revert_migration(m.as_ref()).unwrap();
            assert_eq!(
                snapshot(&mut conn),
                before,
                "down of {} restores the schema exactly",
                m.name()
            );
            conn.run_migration(m.as_ref()).unwrap();
            assert_eq!(
                snapshot(&mut conn),
                after,
                "{} re-applies cleanly",
                m.name()
            );
        }
        // And all the way back down.
        for m in migrations.iter().rev() {
            conn.revert_migration(m.as_ref()).unwrap();
        }
        assert_eq!(snapshot(&mut conn), empty);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn run_pending_applies_everything_once_and_then_nothing() {
    let db = TestDb::empty().await;
    let first = shortener_pg::run_pending_migrations(&db.url).await.unwrap();
    let total = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .unwrap()
        .len();
    assert_eq!(first.len(), total);
    assert!(
        shortener_pg::run_pending_migrations(&db.url)
            .await
            .unwrap()
            .is_empty()
    );
    // Each module has its own schema.
    let url = db.url.clone();
    let schemas = tokio::task::spawn_blocking(move || {
        let mut conn = SyncConn::establish(&url).unwrap();
        diesel::sql_query("SELECT nspname AS line FROM pg_namespace ORDER BY 1")
            .load::<Line>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|l| l.line)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(schemas.contains(&"shortener".to_owned()));
    assert!(schemas.contains(&"subscriptions".to_owned()));
}
