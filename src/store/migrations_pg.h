/* SPDX-License-Identifier: MIT */
/*
 * migrations_pg.h — the PostgreSQL schema: the shared migrations
 * (migrations_schema.h) in PostgreSQL's words, the same tables, columns,
 * constraints and indexes. Included by pg.c (and schema_check.c) only.
 *
 * Differences from SQLite, all deliberate:
 *  - events.payload is BYTEA: the body exactly as received, any bytes;
 *  - times are BIGINT milliseconds since the epoch (0: never), flags BOOLEAN;
 *  - sessions."user" is quoted (a reserved word in PostgreSQL);
 *  - deliveries.seq (identity) stands in for SQLite's rowid (listing order);
 *  - UNIQUE constraints have names (migration 4 adds to them by name).
 */
#ifndef TH_MIGRATIONS_PG_H
#define TH_MIGRATIONS_PG_H

#define MIGRATIONS pg_migrations
#define M_BIG "BIGINT"
#define M_FALSE "BOOLEAN NOT NULL DEFAULT false"
#define M_TRUE "BOOLEAN NOT NULL DEFAULT true"
#define M_SEQ "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
#define M_BYTES "BYTEA"
#define M_UNIQUE(name) "CONSTRAINT " name " "
#define M_DELIVERY_SEQ "  seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,"
#define M_USER "\"user\""
#define M_ROWID ""
#define M_4_UNIQUE_FP                                                                              \
	"ALTER TABLE webhooks ADD COLUMN token_fp TEXT;"                                           \
	"ALTER TABLE webhooks ADD CONSTRAINT webhooks_model_token_fp UNIQUE (id_model, token_fp);" \
	"ALTER TABLE tokens ADD COLUMN token_fp TEXT;"                                             \
	"ALTER TABLE tokens ADD CONSTRAINT tokens_token_fp UNIQUE (token_fp);"
/* a pattern over the bytes, which cannot fail on a body that is not UTF-8
 * or not JSON the way a cast to jsonb would (the first idMemberCreator of a
 * Trello body is the action's; its model has none) */
#define M_8_MEMBER_ID                                                       \
	"UPDATE events SET member_id = substring(encode(payload, 'escape')" \
	" FROM '\"idMemberCreator\"\\s*:\\s*\"([0-9a-fA-F]{24})\"');"
/* nothing: an update that is not HOT (any update of status, which
 * deliveries_due keys on) adds an entry to every index whatever the columns,
 * so a partial index's own column would save PostgreSQL nothing */
#define M_11_UNFINISHED "DO $$ BEGIN END $$;"

#include "store/migrations_schema.h"

#endif
