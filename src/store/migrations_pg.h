/* SPDX-License-Identifier: MIT */
/*
 * migrations_pg.h — the PostgreSQL schema as an ordered list of migrations,
 * the twin of migrations_sqlite.h: the same tables, columns, constraints and
 * indexes, in PostgreSQL types. Migration i (0-based) brings the schema to
 * version i + 1. Never edit a migration that has shipped: append a new one.
 * Included by pg.c only.
 *
 * Differences from SQLite, all deliberate:
 *  - events.payload is BYTEA: the body exactly as received, any bytes;
 *  - times are BIGINT milliseconds since the epoch (0: never), flags BOOLEAN;
 *  - sessions."user" is quoted (a reserved word in PostgreSQL);
 *  - deliveries.seq (identity) stands in for SQLite's rowid (listing order).
 * As in SQLite, events.webhook_id and deliveries.handler_id have NO foreign
 * key (history outlives webhooks and handlers).
 */
#ifndef TH_MIGRATIONS_PG_H
#define TH_MIGRATIONS_PG_H

static const char *const pg_migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE webhooks ("
    "  id TEXT PRIMARY KEY,"
    "  trello_id TEXT,"
    "  id_model TEXT NOT NULL,"
    "  model_type TEXT,"
    "  model_name TEXT,"
    "  description TEXT,"
    "  callback_url TEXT NOT NULL,"
    "  token TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  active BOOLEAN NOT NULL DEFAULT false,"
    "  consecutive_failures INTEGER NOT NULL DEFAULT 0,"
    "  first_consecutive_fail_at BIGINT NOT NULL DEFAULT 0,"
    "  created_at BIGINT NOT NULL DEFAULT 0,"
    "  last_event_at BIGINT NOT NULL DEFAULT 0,"
    "  CONSTRAINT webhooks_model_token UNIQUE (id_model, token)"
    ");"
    "CREATE TABLE tokens ("
    "  token TEXT PRIMARY KEY,"
    "  member TEXT,"
    "  expires_at BIGINT NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL,"
    "  checked_at BIGINT NOT NULL DEFAULT 0,"
    "  created_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE events ("
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id TEXT UNIQUE NOT NULL,"
    "  webhook_id TEXT NOT NULL,"
    "  action_id TEXT NOT NULL,"
    "  action_type TEXT,"
    "  action_date TEXT,"
    "  model_id TEXT,"
    "  board_id TEXT,"
    "  board_name TEXT,"
    "  list_id TEXT,"
    "  list_name TEXT,"
    "  card_id TEXT,"
    "  card_name TEXT,"
    "  member TEXT,"
    "  summary TEXT,"
    "  payload BYTEA NOT NULL,"
    "  received_at BIGINT NOT NULL DEFAULT 0,"
    "  CONSTRAINT events_webhook_action UNIQUE (webhook_id, action_id)"
    ");"
    "CREATE INDEX events_webhook_seq ON events (webhook_id, seq);"
    "CREATE INDEX events_type_seq ON events (action_type, seq);"
    "CREATE INDEX events_received_at ON events (received_at);"
    "CREATE TABLE handlers ("
    "  id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  on_types TEXT,"
    "  model TEXT,"
    "  secret TEXT,"
    "  enabled BOOLEAN NOT NULL DEFAULT true,"
    "  created_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE deliveries ("
    "  id TEXT PRIMARY KEY,"
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,"
    "  event_id TEXT NOT NULL REFERENCES events (id),"
    "  handler_id TEXT NOT NULL,"
    "  generation INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at BIGINT NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  updated_at BIGINT NOT NULL DEFAULT 0,"
    "  claimed_until BIGINT NOT NULL DEFAULT 0,"
    "  webhook_id TEXT NOT NULL,"  /* denormalised from events: ordering per webhook */
    "  event_seq BIGINT NOT NULL," /* denormalised from events: ordering per webhook */
    "  CONSTRAINT deliveries_event_handler_generation UNIQUE (event_id, handler_id, generation)"
    ");"
    "CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);"
    "CREATE INDEX deliveries_order ON deliveries (webhook_id, handler_id, event_seq);"
    "CREATE INDEX deliveries_handler ON deliveries (handler_id, status);"
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY,"
    "  pwhash TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE sessions ("
    "  id_hash TEXT PRIMARY KEY,"
    "  \"user\" TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,"
    "  csrf TEXT NOT NULL,"
    "  expires_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX sessions_expires ON sessions (expires_at);",
    /* 2: partial indexes over unfinished deliveries for the claim query. The
     * order rule ("no unfinished delivery of an earlier event of the same
     * webhook to the same handler") became one index seek instead of a walk
     * over that queue's finished history, and the claim walks unfinished
     * deliveries in event order and stops at its limit instead of sorting
     * every due row: measured 36 ms -> 1 ms per claim with 3000 waiting. */
    "CREATE INDEX deliveries_unfinished ON deliveries (webhook_id, handler_id, event_seq)"
    " WHERE status IN ('pending', 'running', 'failed');"
    "CREATE INDEX deliveries_queue ON deliveries (event_seq, generation)"
    " WHERE status IN ('pending', 'running', 'failed');",
    /* 3: no query filters or orders events by received_at (listings use seq,
     * which grows in the same order); its index only cost every stored event
     * one more B-tree insert inside the group commit. */
    "DROP INDEX IF EXISTS events_received_at;",
    /* 4: a token's identity (see migrations_sqlite.h, 4): the keyed
     * fingerprint the service computes; NULL for rows it has not filled. */
    "ALTER TABLE webhooks ADD COLUMN token_fp TEXT;"
    "ALTER TABLE webhooks ADD CONSTRAINT webhooks_model_token_fp UNIQUE (id_model, token_fp);"
    "ALTER TABLE tokens ADD COLUMN token_fp TEXT;"
    "ALTER TABLE tokens ADD CONSTRAINT tokens_token_fp UNIQUE (token_fp);",
    /* 5: which process claimed a running delivery ("HOST:PID:START"), so
     * one that died is recovered at start-up rather than after its lease. */
    "ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;",
    /* 6: where backfill stands per webhook (see migrations_sqlite.h, 6). */
    "CREATE TABLE backfill_marks ("
    "  webhook_id TEXT PRIMARY KEY,"
    "  last_action_id TEXT,"
    "  last_action_at BIGINT NOT NULL DEFAULT 0,"
    "  model_kind TEXT,"
    "  error TEXT,"
    "  recovered BIGINT NOT NULL DEFAULT 0,"
    "  gap_from BIGINT NOT NULL DEFAULT 0,"
    "  gap_to BIGINT NOT NULL DEFAULT 0,"
    "  updated_at BIGINT NOT NULL DEFAULT 0"
    ");",
    /* 7: hourly rollup of events per (webhook, action type), written in the
     * same transaction as the events (one upsert per distinct key per
     * batch), so the admin's charts read a few hundred small rows instead of
     * scanning events (see migrations_sqlite.h). Filled from the events already stored. */
    "CREATE TABLE event_rollup_hour ("
    "  hour BIGINT NOT NULL,"
    "  webhook_id TEXT NOT NULL,"
    "  action_type TEXT NOT NULL,"
    "  n BIGINT NOT NULL,"
    "  PRIMARY KEY (hour, webhook_id, action_type)"
    ");"
    "INSERT INTO event_rollup_hour (hour, webhook_id, action_type, n)"
    " SELECT received_at / 3600000, webhook_id, coalesce(action_type, ''), count(*)"
    " FROM events GROUP BY 1, 2, 3;",
    /* 8: an event's source and who acted as an id (see migrations_sqlite.h,
     * 8). Rows stored before take the id from their payload: a pattern over
     * the bytes, which cannot fail on a body that is not UTF-8 or not JSON
     * the way a cast to jsonb would (the first idMemberCreator of a Trello
     * body is the action's; its model has none). */
    "ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'delivery';"
    "ALTER TABLE events ADD COLUMN member_id TEXT;"
    "UPDATE events SET member_id = substring(encode(payload, 'escape')"
    " FROM '\"idMemberCreator\"\\s*:\\s*\"([0-9a-fA-F]{24})\"');",
    /* 9: how many events each webhook has, kept in the same transaction as
     * the events (one upsert per webhook per batch), so the webhook listing
     * reads one row per webhook instead of counting its events (a count(*)
     * per webhook made the dashboard take ~190 ms with a million events).
     * Keyed by webhook id and not a column of webhooks, like events.webhook_id:
     * a removed webhook's history keeps its count. Filled from the events
     * already stored. Whatever deletes events must subtract here. */
    "CREATE TABLE webhook_event_count ("
    "  webhook_id TEXT PRIMARY KEY,"
    "  n BIGINT NOT NULL"
    ");"
    "INSERT INTO webhook_event_count (webhook_id, n)"
    " SELECT webhook_id, count(*) FROM events GROUP BY webhook_id;"
    /* and the hourly delivery rollup: attempts per (hour, handler, outcome,
     * run-time bucket, see store.h), written with each outcome in its
     * transaction, for the dashboard's deliveries chart and the handlers'
     * success rate and p50/p95. Outcomes before it carried no run time:
     * each finished delivery counts once, in its last state, at bucket -1. */
    "CREATE TABLE delivery_rollup_hour ("
    "  hour BIGINT NOT NULL,"
    "  handler_id TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  bucket INTEGER NOT NULL,"
    "  n BIGINT NOT NULL,"
    "  PRIMARY KEY (hour, handler_id, status, bucket)"
    ");"
    "INSERT INTO delivery_rollup_hour (hour, handler_id, status, bucket, n)"
    " SELECT updated_at / 3600000, handler_id, status, -1, count(*) FROM deliveries"
    " WHERE status IN ('done', 'failed', 'dead') GROUP BY 1, 2, 3;",
};

#endif
