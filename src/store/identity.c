/* SPDX-License-Identifier: MIT */
/* identity.c — see identity.h. */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store/identity.h"

#define FIRST_VERSION_SQL "SELECT applied_at FROM schema_migrations WHERE version = 1"

const char *store_sqlite_file(const char *url)
{
	if (!url || !str_starts(url, "sqlite:"))
		return NULL;
	const char *p = url + strlen("sqlite:");
	return str_starts(p, "//") ? p + 2 : p;
}

static bool is_pg(const char *url)
{
	return url && (str_starts(url, "postgresql://") || str_starts(url, "postgres://"));
}

/*
 * Append @url to @out without trellohook's own query parameters (pool_size,
 * statement_timeout), which libpq refuses; every other parameter keeps its
 * order. 0, or the buffer's failure code (TH_ETOOBIG, TH_ENOMEM). The caller
 * owns @out and should wipe it after use (the URL may hold a password).
 * Thread-safe (touches only @out).
 */
int store_libpq_url(buf *out, const char *url)
{
	const char *q = strchr(url, '?');
	int rc = buf_append(out, url, q ? (size_t)(q - url) : strlen(url));
	bool first = true;
	for (const char *p = q ? q + 1 : NULL; !rc && p && *p;) {
		size_t len = strcspn(p, "&");
		bool ours = (len >= 10 && !strncmp(p, "pool_size=", 10)) ||
		            (len >= 18 && !strncmp(p, "statement_timeout=", 18));
		if (!ours && len) {
			rc = buf_putc(out, first ? '?' : '&');
			if (!rc)
				rc = buf_append(out, p, len);
			first = false;
		}
		p += len + (p[len] == '&');
	}
	return rc;
}

/* A libpq connection to @url without trellohook's own URL parameters
 * (pool_size, statement_timeout), which libpq refuses. NULL with @err set. */
static PGconn *pg_connect(const char *url, th_error *err)
{
	buf u;
	buf_init(&u, 8192);
	int rc = store_libpq_url(&u, url);
	PGconn *c = NULL;
	if (!rc) {
		const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
		const char *vals[] = {"5", u.data, "trellohook doctor", NULL};
		c = PQconnectdbParams(keys, vals, 1);
	}
	if (u.data)
		explicit_bzero(u.data, u.len);
	buf_free(&u);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		char masked[160], msg[200];
		mask_url(url, masked, sizeof masked);
		str_copy(msg, sizeof msg, c ? PQerrorMessage(c) : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		th_err(err, TH_EUNAVAIL, "cannot connect to PostgreSQL at %s: %s", masked, msg);
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* The first value of @sql on @c, or NULL with @err set (free() it). */
static char *pg_value(PGconn *c, const char *sql, th_error *err)
{
	PGresult *r = PQexec(c, sql);
	char *v = NULL;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		th_err(err, TH_ESTORE, "%s", PQerrorMessage(c));
		if (err)
			err->msg[strcspn(err->msg, "\n")] = '\0';
	} else if (PQntuples(r) < 1) {
		th_err(err, TH_ENOTFOUND, "the store has no schema yet (run trellohook migrate)");
	} else if (!(v = str_dup(PQgetvalue(r, 0, 0)))) {
		th_err(err, TH_ENOMEM, "out of memory");
	}
	PQclear(r);
	return v;
}

static int sqlite_open(const char *path, sqlite3 **db, th_error *err)
{
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		int rc = th_err(err, TH_EUNAVAIL, "cannot open the SQLite store %s: %s", path,
		                *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return rc;
	}
	sqlite3_busy_timeout(*db, 5000);
	return 0;
}

/* The first value of @sql on a connection of its own to the PostgreSQL store
 * @url (closed before returning), or NULL with *@rc and @err set (TH_ECONFIG
 * for a URL that is not PostgreSQL's). free() the value. */
static char *pg_value_at(const char *url, const char *sql, int *rc, th_error *err)
{
	if (!is_pg(url)) {
		*rc = th_err(err, TH_ECONFIG, "DATABASE_URL is not understood");
		return NULL;
	}
	PGconn *c = pg_connect(url, err);
	if (!c) {
		*rc = err ? err->code : TH_EUNAVAIL;
		return NULL;
	}
	char *v = pg_value(c, sql, err);
	PQfinish(c);
	if (!v)
		*rc = err ? err->code : TH_ESTORE;
	return v;
}

int store_identity(const char *database_url, char *out, size_t outsz, th_error *err)
{
	const char *path = store_sqlite_file(database_url);
	if (path) {
		sqlite3 *db = NULL;
		sqlite3_stmt *q = NULL;
		int ret = sqlite_open(path, &db, err);
		if (ret)
			return ret;
		if (sqlite3_prepare_v2(db, FIRST_VERSION_SQL, -1, &q, NULL) != SQLITE_OK)
			ret = th_err(err, TH_ESTORE, "reading the store's schema: %s",
			             sqlite3_errmsg(db));
		else if (sqlite3_step(q) != SQLITE_ROW)
			ret = th_err(err, TH_ENOTFOUND,
			             "the store has no schema yet (run trellohook migrate)");
		else if (!str_printf(out, outsz, "sqlite:%lld",
		                     (long long)sqlite3_column_int64(q, 0)))
			ret = th_err(err, TH_EINVAL, "store identity: buffer too small");
		sqlite3_finalize(q);
		sqlite3_close(db);
		return ret;
	}
	int ret = 0;
	char *v = pg_value_at(database_url, FIRST_VERSION_SQL, &ret, err);
	if (!v)
		return ret;
	bool ok = str_printf(out, outsz, "postgresql:%s", v);
	free(v);
	return ok ? 0 : th_err(err, TH_EINVAL, "store identity: buffer too small");
}

int store_check_writable(const char *database_url, th_error *err)
{
	const char *path = store_sqlite_file(database_url);
	if (path) {
		sqlite3 *db = NULL;
		int ret = sqlite_open(path, &db, err);
		if (ret)
			return ret;
		char *emsg = NULL;
		if (sqlite3_db_readonly(db, "main") == 1)
			ret = th_err(err, TH_EIO, "%s is read-only for this user", path);
		else if (sqlite3_exec(db, "BEGIN IMMEDIATE; ROLLBACK", NULL, NULL, &emsg) !=
		         SQLITE_OK)
			ret = th_err(err, TH_ESTORE, "cannot take the write lock of %s: %s", path,
			             emsg ? emsg : "?");
		sqlite3_free(emsg);
		sqlite3_close(db);
		return ret;
	}
	int ret = 0;
	char *v = pg_value_at(
	    database_url,
	    "SELECT NOT pg_is_in_recovery() AND has_table_privilege('events', 'INSERT')", &ret,
	    err);
	if (!v)
		return ret;
	ret = str_eq(v, "t") ? 0
	                     : th_err(err, TH_EIO,
	                              "the PostgreSQL server is a read-only standby or the role "
	                              "may not insert into events");
	free(v);
	return ret;
}
