//! The tables, as diesel sees them. Hand-written to match `migrations/`; the migration
//! tests prove the two agree by running every query against a migrated database.

diesel::table! {
    shortener.accounts (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    shortener.api_keys (id) {
        id -> Uuid,
        lookup -> Text,
        secret_hash -> Bytea,
        kind -> Text,
        account_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    shortener.links (id) {
        id -> Uuid,
        code -> Text,
        account_id -> Uuid,
        target -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        tags -> Array<Text>,
        title -> Nullable<Text>,
        max_visits -> Nullable<Int4>,
        visits_used -> Int8,
        password_hash -> Nullable<Text>,
    }
}

diesel::table! {
    shortener.link_daily_clicks (link_id, day) {
        link_id -> Uuid,
        day -> Date,
        clicks -> Int8,
    }
}

diesel::table! {
    #[sql_name = "subscriptions"]
    subscriptions.subscription_rows (account_id) {
        account_id -> Uuid,
        state -> Text,
        plan -> Nullable<Text>,
        ends_at -> Timestamptz,
        reason -> Nullable<Text>,
        version -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(accounts, subscription_rows);
diesel::allow_tables_to_appear_in_same_query!(api_keys, subscription_rows);
diesel::allow_tables_to_appear_in_same_query!(links, link_daily_clicks);

diesel::table! {
    subscriptions.link_usage (account_id, month) {
        account_id -> Uuid,
        month -> Date,
        links_created -> Int8,
    }
}

diesel::table! {
    #[sql_name = "entries"]
    audit.audit_entries (occurred_at, id) {
        id -> Uuid,
        occurred_at -> Timestamptz,
        actor_kind -> Text,
        actor_id -> Nullable<Uuid>,
        action -> Text,
        entity_type -> Text,
        entity_id -> Text,
        account_id -> Nullable<Uuid>,
        changes -> Jsonb,
    }
}

diesel::table! {
    shortener.idempotency_keys (account_id, key) {
        account_id -> Uuid,
        key -> Text,
        request_hash -> Bytea,
        status -> Int2,
        body -> Text,
        created_at -> Timestamptz,
    }
}
