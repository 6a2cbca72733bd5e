//! The audit log's storage: rows of `audit.entries` (in the audit module's own schema),
//! their `changes` as JSONB, and the keyset-paged query behind the API and the CLI.

use std::collections::BTreeMap;

use audit::{
    Action, Actor, AuditEntry, AuditLog, AuditQuery, Change, Changes, Entity, EntityType, Value,
};
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde_json::{Map, Value as Json};
use shortener_app::AppError;
use uuid::Uuid;

use crate::schema::audit_entries as e;
use crate::store::corrupt;
use crate::{PgError, PgStore};

#[derive(Queryable, Selectable)]
#[diesel(table_name = e, check_for_backend(diesel::pg::Pg))]
struct EntryRow {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    actor_kind: String,
    actor_id: Option<Uuid>,
    action: String,
    entity_type: String,
    entity_id: String,
    account_id: Option<Uuid>,
    changes: Json,
}

/// An entry as written: everything but its time, which the database's clock gives it at
/// the insert (see [`record_at_database_time`]).
#[derive(Insertable)]
#[diesel(table_name = e, check_for_backend(diesel::pg::Pg))]
struct NewEntryRow {
    id: Uuid,
    actor_kind: String,
    actor_id: Option<Uuid>,
    action: String,
    entity_type: String,
    entity_id: String,
    account_id: Option<Uuid>,
    changes: Json,
}

/// Appends `entry` inside the caller's transaction, timed by the database's clock at the
/// insert, not by the instance's: one clock for every instance, and a time no earlier than
/// the start of the transaction that writes it. That is what lets readers stop short of
/// every entry that could still commit ([`AuditLog::entries`]).
pub(crate) async fn record_at_database_time(
    conn: &mut diesel_async::AsyncPgConnection,
    entry: &AuditEntry,
) -> Result<(), PgError> {
    diesel::insert_into(e::table)
        .values((
            NewEntryRow::from_entry(entry),
            e::occurred_at.eq(sql::<Timestamptz>("clock_timestamp()")),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// [`record_at_database_time`] for many entries, in one statement.
pub(crate) async fn record_all_at_database_time(
    conn: &mut diesel_async::AsyncPgConnection,
    entries: &[AuditEntry],
) -> Result<(), PgError> {
    if entries.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = entries
        .iter()
        .map(|entry| {
            (
                NewEntryRow::from_entry(entry),
                e::occurred_at.eq(sql::<Timestamptz>("clock_timestamp()")),
            )
        })
        .collect();
    diesel::insert_into(e::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}

impl NewEntryRow {
    fn from_entry(entry: &AuditEntry) -> NewEntryRow {
        NewEntryRow {
            id: entry.id,
            actor_kind: entry.actor.kind().to_owned(),
            actor_id: entry.actor.id(),
            action: entry.action.as_str().to_owned(),
            entity_type: entry.entity.kind.as_str().to_owned(),
            entity_id: entry.entity.id.clone(),
            account_id: entry.account_id,
            changes: changes_to_json(&entry.changes),
        }
    }
}

#[derive(QueryableByName)]
struct Watermark {
    #[diesel(sql_type = Timestamptz)]
    below: DateTime<Utc>,
}

/// The instant below which no entry can still appear: the start of this statement, or of
/// the oldest transaction in this database that has written anything and not finished, if
/// earlier (`audit.write_horizon()`, migration `000013`, which sees every session whatever
/// role asks). An entry is timed at its insert, no earlier than its transaction's start,
/// so every entry not yet committed, and every one still to be written, is at or after it.
/// Read before the entries (in a statement of its own, whose snapshot comes later): a
/// transaction that commits in between is then either counted here or visible there.
async fn watermark(conn: &mut diesel_async::AsyncPgConnection) -> Result<DateTime<Utc>, PgError> {
    let w: Watermark = diesel::sql_query("SELECT audit.write_horizon() AS below")
        .get_result(conn)
        .await?;
    Ok(w.below)
}

#[derive(QueryableByName)]
struct WatermarkAt {
    #[diesel(sql_type = Timestamptz)]
    below: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    position: i64,
}

/// The [`watermark`], and the primary's WAL position read after it: every entry below the
/// watermark committed before that position.
async fn watermark_and_position(
    conn: &mut diesel_async::AsyncPgConnection,
) -> Result<(DateTime<Utc>, u64), PgError> {
    let w: WatermarkAt = diesel::sql_query(
        "SELECT audit.write_horizon() AS below, \
                (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS position",
    )
    .get_result(conn)
    .await?;
    Ok((w.below, u64::try_from(w.position).unwrap_or(u64::MAX)))
}

/// A recorded value as JSON; times as RFC 3339 text, exactly as the API shows them.
fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Text(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        Value::Bool(b) => Json::Bool(*b),
        Value::Time(t) => Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        Value::List(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
    }
}

fn value_from_json(j: &Json) -> Result<Value, PgError> {
    Ok(match j {
        Json::Null => Value::Null,
        // Times come back as their text: what the API shows is the same either way.
        Json::String(s) => Value::Text(s.clone()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Int(n.as_i64().ok_or_else(|| corrupt("audit value", n))?),
        Json::Array(items) => Value::List(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| corrupt("audit value", j))?,
        ),
        other => return Err(corrupt("audit value", other)),
    })
}

/// `{"field": {"old": ..., "new": ...}, ...}`.
fn changes_to_json(c: &Changes) -> Json {
    Json::Object(
        c.fields()
            .iter()
            .map(|(name, ch)| {
                let mut pair = Map::new();
                pair.insert("old".into(), value_to_json(&ch.old));
                pair.insert("new".into(), value_to_json(&ch.new));
                (name.clone(), Json::Object(pair))
            })
            .collect(),
    )
}

fn changes_from_json(j: &Json) -> Result<Changes, PgError> {
    let Json::Object(fields) = j else {
        return Err(corrupt("audit changes", "not an object"));
    };
    let mut map = BTreeMap::new();
    for (name, pair) in fields {
        let side = |k: &str| value_from_json(pair.get(k).unwrap_or(&Json::Null));
        map.insert(
            name.clone(),
            Change {
                old: side("old")?,
                new: side("new")?,
            },
        );
    }
    Ok(Changes::from_map(map))
}

impl EntryRow {
    fn into_entry(self) -> Result<AuditEntry, PgError> {
        let actor = Actor::from_parts(&self.actor_kind, self.actor_id)
            .ok_or_else(|| corrupt("audit actor", &self.actor_kind))?;
        let action: Action = self
            .action
            .parse()
            .map_err(|e| corrupt("audit action", e))?;
        let kind: EntityType = self
            .entity_type
            .parse()
            .map_err(|e| corrupt("audit entity type", e))?;
        AuditEntry::from_parts(
            self.id,
            self.occurred_at,
            actor,
            action,
            Entity {
                kind,
                id: self.entity_id,
            },
            self.account_id,
            changes_from_json(&self.changes)?,
        )
        .map_err(|e| corrupt("audit entry", e))
    }
}

impl AuditLog for PgStore {
    type Error = AppError;

    /// Newest first, and only entries older than the [`watermark`]: an entry that commits
    /// late can never land behind a reader who has already passed its place.
    async fn entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, AppError> {
        let (below, mut conn) = match &self.replicas {
            None => {
                let mut conn = self.db().conn().await?;
                (watermark(&mut conn).await?, conn)
            }
            // The watermark is the primary's (a replica sees none of the primary's open
            // transactions); the entries are read on a replica that has replayed past
            // the position the primary had then, so no entry below it is missing there.
            Some(replicas) => {
                let (below, position) = {
                    let mut primary = self.db().conn().await?;
                    watermark_and_position(&mut primary).await?
                };
                (below, replicas.conn_at(position, self.db()).await?)
            }
        };
        let f = &query.filter;
        let mut q = e::table
            .filter(e::occurred_at.lt(below))
            .select(EntryRow::as_select())
            .order((e::occurred_at.desc(), e::id.desc()))
            .limit(i64::from(query.limit))
            .into_boxed();
        if let Some(t) = f.entity_type {
            q = q.filter(e::entity_type.eq(t.as_str()));
        }
        if let Some(id) = &f.entity_id {
            q = q.filter(e::entity_id.eq(id.clone()));
        }
        if let Some(id) = f.actor_id {
            q = q.filter(e::actor_id.eq(id));
        }
        if let Some(a) = f.action {
            q = q.filter(e::action.eq(a.as_str()));
        }
        if let Some(t) = f.since {
            q = q.filter(e::occurred_at.ge(t));
        }
        if let Some(t) = f.until {
            q = q.filter(e::occurred_at.lt(t));
        }
        if let Some(a) = f.account {
            q = q.filter(e::account_id.eq(a));
        }
        if let Some(c) = query.after {
            // A row comparison, so PostgreSQL walks each `(..., occurred_at DESC, id DESC)`
            // index straight from the cursor.
            q = q.filter(
                sql::<Bool>("(occurred_at, id) < (")
                    .bind::<Timestamptz, _>(c.occurred_at)
                    .sql(", ")
                    .bind::<SqlUuid, _>(c.id)
                    .sql(")"),
            );
        }
        let rows = q.load(&mut conn).await.map_err(PgError::from)?;
        Ok(rows
            .into_iter()
            .map(EntryRow::into_entry)
            .collect::<Result<_, _>>()?)
    }
}
