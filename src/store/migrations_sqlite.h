/* SPDX-License-Identifier: MIT */
/*
 * migrations_sqlite.h — the SQLite schema: the shared migrations
 * (migrations_schema.h) in SQLite's words. Included by sqlite.c (and
 * schema_check.c) only.
 *
 * Times and counters are INTEGER (64-bit in SQLite), flags 0/1; rowid keeps
 * the insertion order of deliveries; tables keyed by several columns are
 * WITHOUT ROWID.
 */
#ifndef TH_MIGRATIONS_SQLITE_H
#define TH_MIGRATIONS_SQLITE_H

#define MIGRATIONS sqlite_migrations
#define M_BIG "INTEGER"
#define M_FALSE "INTEGER NOT NULL DEFAULT 0"
#define M_TRUE "INTEGER NOT NULL DEFAULT 1"
#define M_SEQ "INTEGER PRIMARY KEY AUTOINCREMENT"
#define M_BYTES "BLOB"
#define M_UNIQUE(name) ""
#define M_DELIVERY_SEQ ""
#define M_USER "user"
#define M_ROWID " WITHOUT ROWID"
#define M_4_UNIQUE_FP                                                                   \
	"ALTER TABLE webhooks ADD COLUMN token_fp TEXT;"                                \
	"CREATE UNIQUE INDEX webhooks_model_token_fp ON webhooks (id_model, token_fp);" \
	"ALTER TABLE tokens ADD COLUMN token_fp TEXT;"                                  \
	"CREATE UNIQUE INDEX tokens_token_fp ON tokens (token_fp);"
/* where the payload parses (Trello's bodies are JSON; json_valid guards the
 * rare one that is not) */
#define M_8_MEMBER_ID                                                                                   \
	"UPDATE events SET member_id = json_extract(CAST(payload AS TEXT), '$.action.idMemberCreator')" \
	" WHERE json_valid(CAST(payload AS TEXT));"
/* the partial indexes of unfinished deliveries on a column of their own (see
 * migration 11 in migrations_schema.h) */
#define M_11_UNFINISHED                                                                   \
	"ALTER TABLE deliveries ADD COLUMN unfinished INTEGER NOT NULL DEFAULT 1;"        \
	"UPDATE deliveries SET unfinished = 0"                                            \
	" WHERE status NOT IN ('pending', 'running', 'failed');"                          \
	"DROP INDEX deliveries_queue;"                                                    \
	"DROP INDEX deliveries_chain;"                                                    \
	"CREATE INDEX deliveries_queue ON deliveries (event_seq, generation)"             \
	" WHERE unfinished = 1;"                                                          \
	"CREATE INDEX deliveries_chain ON deliveries (handler_id, webhook_id, event_seq)" \
	" WHERE unfinished = 1;"

#include "store/migrations_schema.h"

#endif
