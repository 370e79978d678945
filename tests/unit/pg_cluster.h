/* SPDX-License-Identifier: MIT */
/* pg_cluster — the PostgreSQL server a unit test binary runs against:
 * TH_TEST_PG_URL when set (a role allowed to CREATE DATABASE), else a
 * throwaway cluster started with scripts/pg.sh (TH_PG_SCRIPT). Shared by
 * test_store_pg.c and test_store_upgrade.c. */
#ifndef TH_TEST_PG_CLUSTER_H
#define TH_TEST_PG_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

/* Filled once by pg_cluster_start(), read-only afterwards. */
typedef struct pg_cluster {
	bool skip;        /* no server and TH_SKIP_PG=1: the PostgreSQL tests skip */
	bool own;         /* we started the cluster (so we may restart it) */
	char dir[64];     /* the cluster's directory when own */
	char script[512]; /* scripts/pg.sh */
	char base[512];   /* URL of the maintenance database */
} pg_cluster;

/* Find the server, or start one in a new /tmp/@prefix-XXXXXX directory. When
 * neither is possible (no server binaries, no URL) says so loudly on stderr,
 * naming @what ("STORE", "UPGRADE"), and fails (-1) unless TH_SKIP_PG=1 asked
 * for a skip: then sets ->skip and returns 0 (pg_optional.h). Returns 0, or
 * -1 when there is no server or starting it failed. */
int pg_cluster_start(pg_cluster *pc, const char *prefix, const char *what);
/* Stop the cluster when we started it. */
void pg_cluster_stop(const pg_cluster *pc);
/* @base with its database name replaced by @db and the extra query @q added
 * (may be ""). */
void pg_url_with_db(char *out, size_t size, const char *base, const char *db, const char *q);

#endif
