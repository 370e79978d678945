/* SPDX-License-Identifier: MIT */
/*
 * migrations_schema.h — the schema both stores share, as an ordered list of
 * migrations written once: migrations_sqlite.h and migrations_pg.h each
 * define the words that differ (types, constraint names, what one backend
 * does its own way) and include this file to make their array. Migration i
 * (0-based) brings the schema to version i + 1. Never change the SQL of a
 * migration that has shipped: append a new one.
 *
 * The includer defines (this file undefines them at its end):
 *   MIGRATIONS          the array's name
 *   M_BIG               64-bit integers: times in ms since the epoch (0:
 *                       never), counters, seqs
 *   M_FALSE, M_TRUE     a flag's type with its default
 *   M_SEQ               events.seq: a growing primary key
 *   M_BYTES             events.payload: the body exactly as received
 *   M_UNIQUE(name)      a UNIQUE constraint's prefix (PostgreSQL names them)
 *   M_DELIVERY_SEQ      deliveries' insertion order column ("" where rowid is)
 *   M_USER              sessions' user column (a reserved word in PostgreSQL)
 *   M_ROWID             after a table with a composite primary key
 *   M_4_UNIQUE_FP       migration 4's unique fingerprints
 *   M_8_MEMBER_ID       migration 8's member ids of rows stored before
 *   M_11_UNFINISHED     migration 11 (SQLite only)
 *
 * Deliberate absences of foreign keys:
 *  - events.webhook_id has none: deleting a webhook keeps its history, and
 *    the events then refer to no row;
 *  - deliveries.handler_id has none: deleting a handler deletes its
 *    deliveries that are not done (the stores do it explicitly) and keeps the
 *    done ones as history.
 * No include guard: included once per backend.
 */

static const char *const MIGRATIONS[] = {
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
    "  active " M_FALSE ","
    "  consecutive_failures INTEGER NOT NULL DEFAULT 0,"
    "  first_consecutive_fail_at " M_BIG " NOT NULL DEFAULT 0,"
    "  created_at " M_BIG " NOT NULL DEFAULT 0,"
    "  last_event_at " M_BIG " NOT NULL DEFAULT 0,"
    "  " M_UNIQUE(
        "webhooks_model_token") "UNIQUE (id_model, token)"
                                ");"
                                "CREATE TABLE tokens ("
                                "  token TEXT PRIMARY KEY,"
                                "  member TEXT,"
                                "  expires_at " M_BIG " NOT NULL DEFAULT 0,"
                                "  state TEXT NOT NULL,"
                                "  checked_at " M_BIG " NOT NULL DEFAULT 0,"
                                "  created_at " M_BIG " NOT NULL DEFAULT 0"
                                ");"
                                "CREATE TABLE events ("
                                "  seq " M_SEQ ","
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
                                "  payload " M_BYTES " NOT NULL,"
                                "  received_at " M_BIG " NOT NULL DEFAULT 0,"
                                "  " M_UNIQUE(
                                    "events_webhook_action") "UNIQUE (webhook_id, action_id)"
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
                                                             "  enabled " M_TRUE ","
                                                             "  created_at " M_BIG
                                                             " NOT NULL DEFAULT 0"
                                                             ");"
                                                             "CREATE TABLE deliveries ("
                                                             "  id TEXT PRIMARY KEY," M_DELIVERY_SEQ
                                                             "  event_id TEXT NOT NULL REFERENCES events (id),"
                                                             "  handler_id TEXT NOT NULL,"
                                                             "  generation INTEGER NOT NULL DEFAULT 0,"
                                                             "  status TEXT NOT NULL,"
                                                             "  attempts INTEGER NOT NULL DEFAULT 0,"
                                                             "  next_attempt_at " M_BIG
                                                             " NOT NULL DEFAULT 0,"
                                                             "  last_error TEXT,"
                                                             "  updated_at " M_BIG
                                                             " NOT NULL DEFAULT 0,"
                                                             "  claimed_until " M_BIG
                                                             " NOT NULL DEFAULT 0,"
                                                             "  webhook_id TEXT NOT NULL," /* denormalised
                                                                                              from
                                                                                              events:
                                                                                              ordering
                                                                                              per
                                                                                              webhook
                                                                                            */
                                                             "  event_seq " M_BIG
                                                             " NOT NULL," /* denormalised from
                                                                             events: ordering per
                                                                             webhook */
                                                             "  " M_UNIQUE(
                                                                 "deliveries_event_handler_generation") "UNIQUE (event_id, handler_id, generation)"
                                                                                                        ");"
                                                                                                        "CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);"
                                                                                                        "CREATE INDEX deliveries_order ON deliveries (webhook_id, handler_id, event_seq);"
                                                                                                        "CREATE INDEX deliveries_handler ON deliveries (handler_id, status);"
                                                                                                        "CREATE TABLE users ("
                                                                                                        "  name TEXT PRIMARY KEY,"
                                                                                                        "  pwhash TEXT NOT NULL,"
                                                                                                        "  created_at " M_BIG
                                                                                                        " NOT NULL DEFAULT 0"
                                                                                                        ");"
                                                                                                        "CREATE TABLE sessions ("
                                                                                                        "  id_hash TEXT PRIMARY KEY,"
                                                                                                        "  " M_USER
                                                                                                        " TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,"
                                                                                                        "  csrf TEXT NOT NULL,"
                                                                                                        "  expires_at " M_BIG
                                                                                                        " NOT NULL"
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
    /* 4: a token's identity. Sealed tokens carry a random nonce, so equal
     * tokens never compare equal and UNIQUE (id_model, token) could not
     * stop a second webhook for the same (model, token). token_fp is a keyed
     * fingerprint of the plain token, computed by the service (the store
     * cannot open sealed tokens); rows from before stay NULL (NULLs never
     * collide) until the service fills them (svc_tokens_fill_fingerprints). */
    M_4_UNIQUE_FP,
    /* 5: which process claimed a running delivery ("HOST:PID:START"), so
     * one that died is recovered at start-up rather than after its lease. */
    "ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;",
    /* 6: per webhook, where backfill (listing Trello's past actions after
     * downtime) stands: the newest action stored (id, date in ms), the
     * model's kind once learnt, and the last pass's outcome. A row of its
     * own so the hot webhook and event rows stay as they are. */
    "CREATE TABLE backfill_marks ("
    "  webhook_id TEXT PRIMARY KEY,"
    "  last_action_id TEXT,"
    "  last_action_at " M_BIG " NOT NULL DEFAULT 0,"
    "  model_kind TEXT,"
    "  error TEXT,"
    "  recovered " M_BIG " NOT NULL DEFAULT 0,"
    "  gap_from " M_BIG " NOT NULL DEFAULT 0,"
    "  gap_to " M_BIG " NOT NULL DEFAULT 0,"
    "  updated_at " M_BIG " NOT NULL DEFAULT 0"
    ");",
    /* 7: hourly rollup of events per (webhook, action type), written in the
     * same transaction as the events (one upsert per distinct key per
     * batch), so the admin's charts read a few hundred small rows instead of
     * scanning events. Filled from the events already stored. */
    "CREATE TABLE event_rollup_hour ("
    "  hour " M_BIG " NOT NULL,"
    "  webhook_id TEXT NOT NULL,"
    "  action_type TEXT NOT NULL,"
    "  n " M_BIG " NOT NULL,"
    "  PRIMARY KEY (hour, webhook_id, action_type)"
    ")" M_ROWID ";"
    "INSERT INTO event_rollup_hour (hour, webhook_id, action_type, n)"
    " SELECT received_at / 3600000, webhook_id, coalesce(action_type, ''), count(*)"
    " FROM events GROUP BY 1, 2, 3;",
    /* 8: where an event came from ("delivery": POSTed by Trello; "backfill":
     * listed from Trello's actions after downtime), and who acted as an id,
     * so listings (which do not read the payload) can show it. Rows stored
     * before take it from their payload (M_8_MEMBER_ID). */
    "ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'delivery';"
    "ALTER TABLE events ADD COLUMN member_id TEXT;" M_8_MEMBER_ID,
    /* 9: how many events each webhook has, kept in the same transaction as
     * the events (one upsert per webhook per batch), so the webhook listing
     * reads one row per webhook instead of counting its events (a count(*)
     * per webhook made the dashboard take ~190 ms with a million events).
     * Keyed by webhook id and not a column of webhooks, like events.webhook_id:
     * a removed webhook's history keeps its count. Filled from the events
     * already stored. Whatever deletes events must subtract here. */
    "CREATE TABLE webhook_event_count ("
    "  webhook_id TEXT PRIMARY KEY,"
    "  n " M_BIG " NOT NULL"
    ");"
    "INSERT INTO webhook_event_count (webhook_id, n)"
    " SELECT webhook_id, count(*) FROM events GROUP BY webhook_id;"
    /* and the hourly delivery rollup: attempts per (hour, handler, outcome,
     * run-time bucket, see store.h), written with each outcome in its
     * transaction, for the dashboard's deliveries chart and the handlers'
     * success rate and p50/p95. Outcomes before it carried no run time:
     * each finished delivery counts once, in its last state, at bucket -1. */
    "CREATE TABLE delivery_rollup_hour ("
    "  hour " M_BIG " NOT NULL,"
    "  handler_id TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  bucket INTEGER NOT NULL,"
    "  n " M_BIG " NOT NULL,"
    "  PRIMARY KEY (hour, handler_id, status, bucket)"
    ")" M_ROWID ";"
    "INSERT INTO delivery_rollup_hour (hour, handler_id, status, bucket, n)"
    " SELECT updated_at / 3600000, handler_id, status, -1, count(*) FROM deliveries"
    " WHERE status IN ('done', 'failed', 'dead') GROUP BY 1, 2, 3;",
    /* 10: the unfinished deliveries by handler, then webhook, then event: the
     * claim's fallback steps from one (handler, webhook) chain to the next
     * with one seek each (a loose index scan) and finds each chain's head, so
     * rows that cannot be claimed (behind a failed head, of a disabled
     * handler, of a kind not run) cost it nothing; see the claim queries. It
     * also answers the order rule's probe (both columns are equalities), so
     * deliveries_unfinished, which only that probe used, goes: each
     * delivery keeps the same number of index inserts. */
    "CREATE INDEX deliveries_chain ON deliveries (handler_id, webhook_id, event_seq)"
    " WHERE status IN ('pending', 'running', 'failed');"
    "DROP INDEX IF EXISTS deliveries_unfinished;",
    /* 11 (SQLite; nothing on PostgreSQL): the two partial indexes select on
     * deliveries.unfinished (1 until done or dead), not on status. SQLite
     * updates a partial index whenever a column its WHERE names is written,
     * so every claim (pending -> running, which leaves both indexes' keys as
     * they were) deleted and re-inserted both entries: the claim's update
     * cost 17.6 us a row, 6.9 us with the indexes on a column of their own,
     * and the outcome's 15.9 us, 9.4 us (bench/RESULTS.md, session 10). The
     * store keeps the column with every status write (outcome, retry); the
     * claim queries keep their status terms as well, so a row whose column
     * says unfinished after all (SQL run by hand) is still never claimed. */
    M_11_UNFINISHED,
    /* 12: how events.payload is written (store/payload_codec.h): 0 the body
     * exactly as received (every row stored before, every PostgreSQL row,
     * whose TOAST compresses by itself), 1 its length and an LZ4 block (the
     * SQLite store's rows from now on, where that is smaller). Rows stored
     * before keep their bytes: nothing is rewritten. */
    "ALTER TABLE events ADD COLUMN payload_codec INTEGER NOT NULL DEFAULT 0;",
};

#undef MIGRATIONS
#undef M_BIG
#undef M_FALSE
#undef M_TRUE
#undef M_SEQ
#undef M_BYTES
#undef M_UNIQUE
#undef M_DELIVERY_SEQ
#undef M_USER
#undef M_ROWID
#undef M_4_UNIQUE_FP
#undef M_8_MEMBER_ID
#undef M_11_UNFINISHED
