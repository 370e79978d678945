/* SPDX-License-Identifier: MIT */
/* schema_check.c — see schema_check.h. It reads the version table that
 * sqlite.c and pg.c keep (schema_migrations: one row per applied version)
 * and counts their migration lists for the latest version. */
#include <errno.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/migrations_pg.h"
#include "store/migrations_sqlite.h"
#include "store/identity.h"
#include "store/schema_check.h"

/* "file:PATH?mode=ro" with PATH percent-encoded (SQLite's URI filenames);
 * false when @out is too small. */
static bool sqlite_uri(const char *path, char *out, size_t outsz)
{
	buf b;
	buf_init(&b, outsz - 1);
	int rc = buf_puts(&b, "file:");
	for (const unsigned char *p = (const unsigned char *)path; !rc && *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9') || strchr("/-._~", *p);
		rc = plain ? buf_putc(&b, (char)*p) : buf_printf(&b, "%%%02X", *p);
	}
	if (!rc)
		rc = buf_puts(&b, "?mode=ro");
	bool ok = !rc && str_copy(out, outsz, b.data);
	buf_free(&b);
	return ok;
}

static int check_sqlite(const char *path, int *out_current, th_error *err)
{
	*out_current = 0;
	if (str_eq(path, ":memory:"))
		return 0; /* a private in-memory database always starts empty */
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0; /* not created yet: every migration is pending */
		return th_err(err, TH_EUNAVAIL, "DATABASE_URL: cannot open %s: %s", path,
		              strerror(errno));
	}
	/* A read-only connection still creates the -wal and -shm files of a WAL
	 * database when they are missing. They are missing only when no
	 * connection has the database open and the last one checkpointed it all,
	 * so the main file is then complete: read it as immutable, creating
	 * nothing. When they exist, a normal read-only open sees what the WAL holds. */
	char wal[4096 + 8], uri[3 * 4096 + 32];
	if (!str_printf(wal, sizeof wal, "%s-wal", path) || !sqlite_uri(path, uri, sizeof uri))
		return th_err(err, TH_ECONFIG, "DATABASE_URL: the SQLite path is too long");
	bool quiet = stat(wal, &st) != 0 && errno == ENOENT;
	if (quiet && !str_printf(uri + strlen(uri), sizeof uri - strlen(uri), "&immutable=1"))
		return th_err(err, TH_ECONFIG, "DATABASE_URL: the SQLite path is too long");
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int ret = 0;
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		ret = th_err(err, TH_EUNAVAIL, "DATABASE_URL: cannot open %s: %s", path,
		             db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	/* no schema_migrations table: an empty file, nothing applied yet */
	if (sqlite3_prepare_v2(db,
	                       "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
	                       "name = 'schema_migrations'",
	                       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW) {
		ret = th_err(err, TH_ESTORE, "DATABASE_URL: %s is not a readable SQLite store: %s",
		             path, sqlite3_errmsg(db));
		goto out;
	}
	int has_table = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	q = NULL;
	if (!has_table)
		goto out;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
	                       &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW) {
		ret = th_err(err, TH_ESTORE, "DATABASE_URL: reading the schema version of %s: %s",
		             path, sqlite3_errmsg(db));
		goto out;
	}
	*out_current = sqlite3_column_int(q, 0);
out:
	sqlite3_finalize(q);
	sqlite3_close(db);
	return ret;
}

/* @url without our own query parameters (pool_size, statement_timeout), which
 * libpq would refuse; the caller frees it after wiping it (it may hold a password). */
static char *libpq_url(const char *url)
{
	buf out;
	buf_init(&out, 8192);
	int rc = store_libpq_url(&out, url);
	char *s = rc ? NULL : buf_detach(&out, NULL);
	if (out.data)
		explicit_bzero(out.data, out.len);
	buf_free(&out);
	return s;
}

static int check_pg(const char *url, int *out_current, th_error *err)
{
	*out_current = 0;
	char masked[160];
	mask_url(url, masked, sizeof masked);
	char *conninfo = libpq_url(url);
	if (!conninfo)
		return th_err(err, TH_ENOMEM, "out of memory");
	const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
	const char *vals[] = {"10", conninfo, "trellohook migrate --check", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	explicit_bzero(conninfo, strlen(conninfo));
	free(conninfo);
	PGresult *r = NULL;
	int ret = 0;
	if (!c || PQstatus(c) != CONNECTION_OK) {
		char msg[200];
		str_copy(msg, sizeof msg, c ? PQerrorMessage(c) : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		ret = th_err(err, TH_EUNAVAIL,
		             "DATABASE_URL: cannot connect to PostgreSQL at %s: %s", masked, msg);
		goto out;
	}
	/* read only: the server refuses any write, whatever happens here */
	r = PQexec(c, "BEGIN READ ONLY");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	/* no schema_migrations table: an empty database, nothing applied yet */
	r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		goto fail;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
		goto out;
	PQclear(r);
	r = PQexec(c, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		goto fail;
	int64_t v;
	if (num_parse_i64(PQgetvalue(r, 0, 0), 0, INT32_MAX, &v) != 0)
		goto fail;
	*out_current = (int)v;
	goto out;
fail:
	ret = th_err(err, TH_ESTORE, "DATABASE_URL: reading the schema version at %s: %s", masked,
	             PQerrorMessage(c));
	if (err)
		err->msg[strcspn(err->msg, "\n")] = '\0';
out:
	PQclear(r);
	PQfinish(c);
	return ret;
}

int store_schema_check(const char *database_url, int *out_current, int *out_latest,
                       const char **out_kind, th_error *err)
{
	const char *u = database_url ? database_url : "";
	*out_current = 0;
	*out_latest = 0;
	*out_kind = "";
	if (str_starts(u, "sqlite:")) {
		const char *path = u + strlen("sqlite:");
		if (str_starts(path, "//"))
			path += 2; /* sqlite:///abs/path */
		if (!*path)
			return th_err(err, TH_ECONFIG, "DATABASE_URL: sqlite: needs a file path");
		*out_kind = "sqlite";
		*out_latest = (int)TH_ARRAY_LEN(sqlite_migrations);
		return check_sqlite(path, out_current, err);
	}
	if (str_starts(u, "postgresql://") || str_starts(u, "postgres://")) {
		*out_kind = "postgresql";
		*out_latest = (int)TH_ARRAY_LEN(pg_migrations);
		return check_pg(u, out_current, err);
	}
	return th_err(err, TH_ECONFIG,
	              "DATABASE_URL is not understood; expected sqlite:PATH or "
	              "postgresql://user:pass@host:port/db");
}
