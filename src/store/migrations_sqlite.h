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

#include "store/migrations_schema.h"

#endif
