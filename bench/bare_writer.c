/* SPDX-License-Identifier: MIT */
/*
 * bare_writer.c — the ceiling under trellohook's durable ingest: how fast
 * this disk (and database) takes batches of events with nothing else in the
 * way.
 *
 * It inserts rows of trellohook's own events table (the database is made by
 * `trellohook migrate`, so the schema, indexes included, is the product's)
 * in batches of BATCH events whose payload is the ~3 KB body of
 * PAYLOAD_FILE, for SECONDS, from one connection and one thread, each batch
 * durable before the next starts, as every 200 of serve is:
 *  - sqlite:PATH — WAL, synchronous=FULL, one transaction per batch, and no
 *    checkpoint during the run (the WAL only grows); each payload LZ4-packed
 *    as the product stores it (store/payload_codec.h: the length as 4 bytes,
 *    then the block; compressed row by row, so the CPU counts) when the
 *    schema has events.payload_codec (migration 12), else raw;
 *  - postgresql://… — one multi-row INSERT per batch (its own transaction),
 *    refusing to run unless fsync and synchronous_commit are on.
 * No HTTP, no signature, no parsing: an upper bound, not a design. Ids are
 * time-ordered like the product's (the unique index grows at its right edge).
 *
 * Built by bench/ingest.sh and bench/ingest_pg.sh, not by the product's build:
 *   cc -O2 bench/bare_writer.c $(pkg-config --cflags --libs sqlite3 liblz4 libpq)
 * usage: bare_writer DATABASE_URL PAYLOAD_FILE SECONDS [BATCH]
 * Prints one line: BARE events=N seconds=S rate=R batch_p50_ms=X batch_p99_ms=Y …
 *   stored_bytes=B (a row's payload as written)
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <lz4.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PAYLOAD (1 << 20)
#define MAX_COMMITS (1 << 20) /* batches timed, at most */

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Strict positive integer (no sign, no spaces, no overflow past 1e6). */
static long parse_count(const char *s, const char *what)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > 1000000 || s[0] == '+' || s[0] == ' ') {
		fprintf(stderr,
		        "bare_writer: %s must be a whole number from 1 to 1000000, got '%s'\n",
		        what, s);
		exit(2);
	}
	return v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Read at most MAX_PAYLOAD bytes of @path into a malloc'd buffer. */
static char *read_payload(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "bare_writer: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *p = malloc(MAX_PAYLOAD);
	*len = p ? fread(p, 1, MAX_PAYLOAD, f) : 0;
	fclose(f);
	if (p && *len == 0) {
		fprintf(stderr, "bare_writer: %s is empty\n", path);
		free(p);
		p = NULL;
	}
	return p;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "bare_writer: %s: %s\n", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* The product's event id shape: 20 characters, time first so ids sort. */
static void make_id(char out[21], uint64_t n)
{
	static const char digits[] =
	    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	uint64_t ms = (uint64_t)time(NULL) * 1000;
	for (int i = 7; i >= 0; i--, ms /= 62)
		out[i] = digits[ms % 62];
	for (int i = 19; i >= 8; i--, n /= 62)
		out[i] = digits[n % 62];
	out[20] = '\0';
}

/* The constant columns, as the product fills them for the bench payload. */
#define CONST_COLS                                                                     \
	"'BareBareBareBare0001', 'updateCard', '2026-11-20T10:41:34.244Z',"            \
	" '6123456789abcdef01234567', '6123456789abcdef01234567', 'Roadmap 2027',"     \
	" '6123456789abcdef0000aa02', 'Doing', '6123456789abcdef0000cc07', 'Ship it'," \
	" 'Zoë Ångström', 'Zoë Ångström moved \"Ship it\" from To do to Doing on Roadmap 2027'"
#define COLS_                                                                             \
	"(webhook_id, action_type, action_date, model_id, board_id, board_name, list_id," \
	" list_name, card_id, card_name, member, summary, id, action_id, payload, received_at"
#define COLS COLS_ ")"
#define COLS_CODEC COLS_ ", payload_codec)"

/* One open database of either kind. */
typedef struct writer {
	sqlite3 *db;       /* sqlite: */
	sqlite3_stmt *ins; /* sqlite: the one-row INSERT */
	PGconn *pg;        /* postgresql: */
	char *pg_sql;      /* postgresql: the BATCH-row INSERT */
	long batch;
	bool pack;           /* sqlite: the schema has payload_codec: store LZ4 */
	char *packed;        /* sqlite: room for one packed payload */
	size_t packed_bytes; /* what the last row's payload took */
} writer;

static int sqlite_open(writer *w, const char *path)
{
	if (sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "bare_writer: %s: %s (make it with `trellohook migrate` first)\n",
		        path, w->db ? sqlite3_errmsg(w->db) : "out of memory");
		return -1;
	}
	if (exec_sql(w->db, "PRAGMA journal_mode=WAL") ||
	    exec_sql(w->db, "PRAGMA synchronous=FULL") ||
	    exec_sql(w->db, "PRAGMA wal_autocheckpoint=0"))
		return -1;
	sqlite3_stmt *q = NULL;
	w->pack = sqlite3_prepare_v2(w->db,
	                             "SELECT 1 FROM pragma_table_info('events')"
	                             " WHERE name = 'payload_codec'",
	                             -1, &q, NULL) == SQLITE_OK &&
	          sqlite3_step(q) == SQLITE_ROW;
	sqlite3_finalize(q);
	static const char raw[] = "INSERT INTO events " COLS " VALUES (" CONST_COLS ", ?, ?, ?, ?)";
	static const char lz4[] =
	    "INSERT INTO events " COLS_CODEC " VALUES (" CONST_COLS ", ?, ?, ?, ?, 1)";
	if (w->pack && !(w->packed = malloc(4 + (size_t)LZ4_compressBound(MAX_PAYLOAD)))) {
		fprintf(stderr, "bare_writer: out of memory\n");
		return -1;
	}
	if (sqlite3_prepare_v2(w->db, w->pack ? lz4 : raw, -1, &w->ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "bare_writer: %s (is this trellohook's schema?)\n",
		        sqlite3_errmsg(w->db));
		return -1;
	}
	return 0;
}

/* One batch in one transaction; @seq numbers the rows. */
static int sqlite_batch(writer *w, const char *payload, size_t plen, uint64_t *seq)
{
	if (exec_sql(w->db, "BEGIN IMMEDIATE"))
		return -1;
	for (long i = 0; i < w->batch; i++) {
		char id[21], action[25];
		make_id(id, ++*seq);
		snprintf(action, sizeof action, "%024" PRIx64, *seq);
		sqlite3_bind_text(w->ins, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(w->ins, 2, action, -1, SQLITE_TRANSIENT);
		const char *stored = payload;
		size_t slen = plen;
		if (w->pack) { /* as store/payload_codec.c packs it */
			int n = LZ4_compress_default(payload, w->packed + 4, (int)plen,
			                             LZ4_compressBound(MAX_PAYLOAD));
			if (n <= 0) {
				fprintf(stderr, "bare_writer: LZ4 failed\n");
				return -1;
			}
			for (int b = 0; b < 4; b++)
				w->packed[b] = (char)(plen >> (8 * b));
			stored = w->packed;
			slen = 4 + (size_t)n;
		}
		w->packed_bytes = slen;
		sqlite3_bind_blob(w->ins, 3, stored, (int)slen, SQLITE_STATIC);
		sqlite3_bind_int64(w->ins, 4, (sqlite3_int64)time(NULL) * 1000);
		if (sqlite3_step(w->ins) != SQLITE_DONE) {
			fprintf(stderr, "bare_writer: insert: %s\n", sqlite3_errmsg(w->db));
			return -1;
		}
		sqlite3_reset(w->ins);
	}
	return exec_sql(w->db, "COMMIT");
}

/* 0 when SHOW @name answers "on". */
static int pg_setting_on(PGconn *pg, const char *name)
{
	char sql[64];
	snprintf(sql, sizeof sql, "SHOW %s", name);
	PGresult *r = PQexec(pg, sql);
	bool on = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	          strcmp(PQgetvalue(r, 0, 0), "on") == 0;
	PQclear(r);
	if (!on)
		fprintf(stderr, "bare_writer: %s is not on: that would not be durable\n", name);
	return on ? 0 : -1;
}

static int pg_open(writer *w, const char *url)
{
	w->pg = PQconnectdb(url);
	if (PQstatus(w->pg) != CONNECTION_OK) {
		fprintf(stderr, "bare_writer: connecting: %s", PQerrorMessage(w->pg));
		return -1;
	}
	if (pg_setting_on(w->pg, "fsync") || pg_setting_on(w->pg, "synchronous_commit"))
		return -1;
	/* INSERT INTO events (...) VALUES (consts, $1, $2, $3, $4), (consts, $5, ...), ... */
	size_t cap = 256 + (size_t)w->batch * (sizeof CONST_COLS + 64);
	w->pg_sql = malloc(cap);
	if (!w->pg_sql)
		return -1;
	size_t n = (size_t)snprintf(w->pg_sql, cap, "INSERT INTO events " COLS " VALUES ");
	for (long i = 0; i < w->batch && n < cap; i++)
		n += (size_t)snprintf(w->pg_sql + n, cap - n,
		                      "%s(" CONST_COLS ", $%ld, $%ld, $%ld, $%ld)", i ? ", " : "",
		                      4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4);
	if (n >= cap) {
		fprintf(stderr, "bare_writer: statement too long\n");
		return -1;
	}
	return 0;
}

/* One batch as one multi-row INSERT (one implicit transaction, one commit). */
static int pg_batch(writer *w, const char *payload, size_t plen, uint64_t *seq)
{
	enum { PER_ROW = 4 };
	size_t np = (size_t)w->batch * PER_ROW;
	const char **vals = calloc(np, sizeof *vals);
	int *lens = calloc(np, sizeof *lens), *fmts = calloc(np, sizeof *fmts);
	char(*text)[3][32] = calloc((size_t)w->batch, sizeof *text);
	int rc = -1;
	if (!vals || !lens || !fmts || !text)
		goto out;
	for (long i = 0; i < w->batch; i++) {
		size_t k = (size_t)i * PER_ROW;
		make_id(text[i][0], ++*seq);
		snprintf(text[i][1], sizeof text[i][1], "%024" PRIx64, *seq);
		snprintf(text[i][2], sizeof text[i][2], "%lld", (long long)time(NULL) * 1000);
		vals[k] = text[i][0];
		vals[k + 1] = text[i][1];
		vals[k + 2] = payload; /* BYTEA, sent binary */
		lens[k + 2] = (int)plen;
		fmts[k + 2] = 1;
		vals[k + 3] = text[i][2];
	}
	PGresult *r = PQexecParams(w->pg, w->pg_sql, (int)np, NULL, vals, lens, fmts, 0);
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		rc = 0;
	else
		fprintf(stderr, "bare_writer: insert: %s", PQerrorMessage(w->pg));
	PQclear(r);
out:
	free(vals);
	free(lens);
	free(fmts);
	free(text);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: bare_writer DATABASE_URL PAYLOAD_FILE SECONDS [BATCH]\n"
		                "  e.g. bare_writer sqlite:/tmp/x/bare.db /tmp/x/one.json 5 32\n"
		                "  (the database made by `trellohook migrate` first)\n");
		return 2;
	}
	bool pg = strncmp(argv[1], "postgres", 8) == 0;
	if (!pg && strncmp(argv[1], "sqlite:", 7) != 0) {
		fprintf(stderr,
		        "bare_writer: DATABASE_URL must be sqlite:PATH or postgresql://..., "
		        "got '%s'\n",
		        argv[1]);
		return 2;
	}
	long seconds = parse_count(argv[3], "SECONDS");
	writer w = {.batch = argc == 5 ? parse_count(argv[4], "BATCH") : 32};
	if (w.batch > 1000) {
		fprintf(stderr, "bare_writer: BATCH must be at most 1000\n");
		return 2;
	}
	size_t plen = 0;
	char *payload = read_payload(argv[2], &plen);
	int64_t *batches = calloc(MAX_COMMITS, sizeof *batches);
	int rc = 1;
	if (!payload || !batches)
		goto out;
	if (pg ? pg_open(&w, argv[1]) : sqlite_open(&w, argv[1] + 7))
		goto out;
	uint64_t seq = 0;
	size_t n = 0;
	int64_t start = mono_us(), until = start + (int64_t)seconds * 1000000;
	while (mono_us() < until && n < MAX_COMMITS) {
		int64_t t0 = mono_us();
		if (pg ? pg_batch(&w, payload, plen, &seq) : sqlite_batch(&w, payload, plen, &seq))
			goto out;
		batches[n++] = mono_us() - t0;
	}
	double took = (double)(mono_us() - start) / 1e6;
	qsort(batches, n, sizeof *batches, cmp_i64);
	printf("BARE events=%" PRIu64 " seconds=%.2f rate=%.0f batch_p50_ms=%.2f "
	       "batch_p99_ms=%.2f batch=%ld payload_bytes=%zu stored_bytes=%zu\n",
	       seq, took, (double)seq / took, n ? batches[n / 2] / 1000.0 : 0.0,
	       n ? batches[n * 99 / 100] / 1000.0 : 0.0, w.batch, plen,
	       w.packed_bytes ? w.packed_bytes : plen);
	rc = 0;
out:
	sqlite3_finalize(w.ins);
	sqlite3_close(w.db);
	PQfinish(w.pg);
	free(w.pg_sql);
	free(w.packed);
	free(batches);
	free(payload);
	return rc;
}
