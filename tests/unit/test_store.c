/* SPDX-License-Identifier: MIT */
/* Unit tests of the store on real SQLite files: the shared store suite
 * (store_suite.c: CRUD and constraints of every table, byte-exact payloads,
 * event listings, the delivery outbox — matching, claim order, leases,
 * finish/retry/replay — and two handles sharing one file) plus what is
 * SQLite's own: DATABASE_URL parsing, opening and migrations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"
#include "store/backup.h"
#include "store/payload_codec.h"
#include "store/peer.h"
#include "store/sqlite_ckpt.h"
#include "store/store.h"
#include "util/util.h"

#include "store_suite.h"

/* ---- fixtures ----------------------------------------------------------------------- */

/* A fresh SQLite file in its own temporary directory. */
typedef struct fx {
	store_fx base; /* first: what the shared suite sees */
	char dir[256];
	char path[300];
} fx;

static int fx_setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	str_copy(f->dir, sizeof f->dir, "/tmp/th-store-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	str_printf(f->path, sizeof f->path, "%s/t.db", f->dir);
	str_printf(f->base.url, sizeof f->base.url, "sqlite:%s", f->path);
	return suite_fx_open(state, &f->base);
}

static int fx_teardown(void **state)
{
	fx *f = *state;
	char p[400];
	store_close(f->base.st);
	const char *sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		str_printf(p, sizeof p, "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- model/types.c: names and handler filters ------------------------------------------- */

static void test_type_names(void **state)
{
	const char *ws[] = {"pending", "active", "disabled", "needs_token", "removing"};
	for (int i = 0; i < 5; i++) {
		enum webhook_state v;
		assert_string_equal(webhook_state_name((enum webhook_state)i), ws[i]);
		assert_int_equal(webhook_state_parse(ws[i], &v), 0);
		assert_int_equal(v, i);
	}
	const char *ts[] = {"unchecked", "valid", "expired", "invalid"};
	for (int i = 0; i < 4; i++) {
		enum token_state v;
		assert_string_equal(token_state_name((enum token_state)i), ts[i]);
		assert_int_equal(token_state_parse(ts[i], &v), 0);
		assert_int_equal(v, i);
	}
	const char *hk[] = {"exec", "forward", "func"};
	for (int i = 0; i < 3; i++) {
		enum handler_kind v;
		assert_string_equal(handler_kind_name((enum handler_kind)i), hk[i]);
		assert_int_equal(handler_kind_parse(hk[i], &v), 0);
		assert_int_equal(v, i);
	}
	const char *ds[] = {"pending", "running", "done", "failed", "dead"};
	for (int i = 0; i < 5; i++) {
		enum delivery_status v;
		assert_string_equal(delivery_status_name((enum delivery_status)i), ds[i]);
		assert_int_equal(delivery_status_parse(ds[i], &v), 0);
		assert_int_equal(v, i);
	}
	enum webhook_state w = WEBHOOK_ACTIVE;
	assert_int_equal(webhook_state_parse("Active", &w), TH_EINVAL);
	assert_int_equal(webhook_state_parse("", &w), TH_EINVAL);
	assert_int_equal(webhook_state_parse(NULL, &w), TH_EINVAL);
	assert_int_equal(webhook_state_parse("active ", &w), TH_EINVAL);
	assert_int_equal(w, WEBHOOK_ACTIVE); /* untouched on failure */
	enum handler_kind k;
	assert_int_equal(handler_kind_parse("exec\n", &k), TH_EINVAL);
	assert_string_equal(webhook_state_name((enum webhook_state)99), "unknown");
	assert_string_equal(delivery_status_name((enum delivery_status) - 1), "unknown");
}

static void test_handler_matches(void **state)
{
	event ev = {0};
	ev.action_type = (char *)"updateCard";
	ev.board_id = (char *)"B";
	ev.list_id = (char *)"L";
	ev.card_id = (char *)"C";
	ev.model_id = (char *)"M";
	handler h = {.enabled = true};
	assert_true(handler_matches(&h, &ev));
	h.enabled = false;
	assert_false(handler_matches(&h, &ev));
	h.enabled = true;
	const char *yes[] = {"updateCard",
	                     "commentCard,updateCard",
	                     " commentCard , updateCard ",
	                     "",
	                     ",,",
	                     "updateCard:idList" /* no payload: type only */,
	                     "updateCard:"};
	for (size_t i = 0; i < TH_ARRAY_LEN(yes); i++) {
		h.on = (char *)yes[i];
		assert_true(handler_matches(&h, &ev));
	}
	const char *no[] = {"updateCar",
	                    "updateCardX",
	                    "commentCard",
	                    "updatecard",
	                    ":idList",
	                    "update Card",
	                    "commentCard,,createCard"};
	for (size_t i = 0; i < TH_ARRAY_LEN(no); i++) {
		h.on = (char *)no[i];
		assert_false(handler_matches(&h, &ev));
	}
	h.on = NULL;
	const char *models[] = {"B", "L", "C", "M"};
	for (size_t i = 0; i < 4; i++) {
		h.model = (char *)models[i];
		assert_true(handler_matches(&h, &ev));
	}
	h.model = (char *)"X";
	assert_false(handler_matches(&h, &ev));
	h.model = (char *)"";
	assert_true(handler_matches(&h, &ev));
	h.model = NULL;

	/* with a payload: the changed field must be in data.old (or data.listAfter
	 * for idList); a payload that does not parse matches on the type alone */
	struct {
		const char *payload, *on;
		bool match;
	} cases[] = {
	    {"{\"action\":{\"data\":{\"old\":{\"name\":\"a\"}}}}", "updateCard:name", true},
	    {"{\"action\":{\"data\":{\"old\":{\"name\":\"a\"}}}}", "updateCard:idList", false},
	    {"{\"action\":{\"data\":{\"old\":{\"name\":\"a\"}}}}", "updateCard:nam", false},
	    {"{\"action\":{\"data\":{\"old\":{\"n\\u0061me\":1}}}}", "updateCard:name", true},
	    {"{\"action\":{\"data\":{\"listAfter\":{\"id\":\"L2\"}}}}", "updateCard:idList", true},
	    {"{\"action\":{\"data\":{\"listAfter\":\"L2\"}}}", "updateCard:idList", false},
	    {"{\"action\":{\"data\":[1,2]}}", "updateCard:idList", false}, /* hostile shapes */
	    {"{\"action\":{\"data\":{\"old\":[\"name\"]}}}", "updateCard:name", false},
	    {"[]", "updateCard:idList", false},
	    {"{\"action\":", "updateCard:idList", true}, /* unparsable: type only */
	    {"{\"action\":{\"data\":{\"old\":{\"name\":1,\"name\":2}}}}", "updateCard:name", true},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
		ev.payload = (char *)cases[i].payload;
		ev.payload_len = strlen(cases[i].payload);
		h.on = (char *)cases[i].on;
		if (handler_matches(&h, &ev) != cases[i].match)
			fail_msg("case %zu: %s on %s", i, cases[i].on, cases[i].payload);
	}
	ev.payload = NULL;
	ev.payload_len = 0;
	ev.action_type = NULL;
	h.on = (char *)"updateCard";
	assert_false(handler_matches(&h, &ev));
	assert_false(handler_matches(NULL, &ev));
	assert_false(handler_matches(&h, NULL));
	webhook_clear(NULL);
	token_clear(NULL);
	handler_clear(NULL);
	delivery_clear(NULL);
}

/* ---- DATABASE_URL and opening ------------------------------------------------------------ */

static void test_open_bad_urls(void **state)
{
	const char *bad[] = {"",        "mysql://x", "sqlite:", "postgres//x", "sqlite://relative",
	                     "SQLITE:x"};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		store *st = (store *)0x1;
		th_error err = {0};
		int rc = store_open(&st, bad[i], &err);
		assert_int_equal(rc, TH_ECONFIG);
		assert_null(st);
		assert_non_null(strstr(err.msg, "DATABASE_URL"));
		assert_non_null(strstr(err.msg, "sqlite:"));
	}
	store *st = NULL;
	th_error err = {0};
	assert_int_equal(store_open(&st, NULL, &err), TH_ECONFIG);
	assert_non_null(strstr(err.msg, "DATABASE_URL"));
	/* an unreachable PostgreSQL fails to open; the password never shows */
	assert_int_not_equal(store_open(&st, "postgresql://u:hunter2secret@127.0.0.1:9/th", &err),
	                     0);
	assert_null(st);
	assert_null(strstr(err.msg, "hunter2secret"));
	assert_int_equal(store_open(&st, "mysql://u:hunter2secret@db/th", &err), TH_ECONFIG);
	assert_null(strstr(err.msg, "hunter2secret"));
}

static void test_open_missing_directory(void **state)
{
	store *st = NULL;
	th_error err = {0};
	int rc = store_open(&st, "sqlite:/nonexistent-th-dir/sub/trellohook.db", &err);
	assert_int_not_equal(rc, 0);
	assert_null(st);
	assert_non_null(strstr(err.msg, "DATABASE_URL"));
	assert_non_null(strstr(err.msg, "/nonexistent-th-dir/sub"));
	assert_non_null(strstr(err.msg, "does not exist"));
}

static void test_open_memory(void **state)
{
	store *st = NULL;
	th_error err = {0};
	assert_int_equal(store_open(&st, "sqlite::memory:", &err), 0);
	assert_string_equal(store_name(st), "sqlite");
	assert_int_equal(store_ping(st, &err), 0);
	store_close(st);
	store_close(NULL);
}

static void test_migrations_idempotent(void **state)
{
	fx *f = *state;
	th_error err = {0};
	int v1 = -1, v2 = -1;
	assert_int_equal(store_migrate(f->base.st, &v1, &err), 0);
	assert_true(v1 >= 1);
	store_close(f->base.st);
	f->base.st = NULL;
	/* a real close: the last connection checkpoints and removes the WAL */
	char wal[400];
	str_printf(wal, sizeof wal, "%s-wal", f->path);
	assert_int_equal(access(wal, F_OK), -1);
	assert_int_equal(store_open(&f->base.st, f->base.url, &err),
	                 0); /* migrates again at open */
	assert_int_equal(store_migrate(f->base.st, &v2, &err), 0);
	assert_int_equal(v1, v2);

	/* look at the file with plain SQLite: one row per version, WAL mode */
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT count(*), count(DISTINCT version), max(version)"
	                                    " FROM schema_migrations",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), v1);
	assert_int_equal(sqlite3_column_int(q, 1), v1);
	assert_int_equal(sqlite3_column_int(q, 2), v1);
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
	fx *f = *state;
	store_close(f->base.st);
	f->base.st = NULL;
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (999, 0)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	th_error err = {0};
	assert_int_equal(store_open(&f->base.st, f->base.url, &err), TH_ESTORE);
	assert_non_null(strstr(err.msg, "newer"));
	assert_null(f->base.st);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "DELETE FROM schema_migrations WHERE version = 999", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&f->base.st, f->base.url, &err), 0);
}

/* ---- WAL size under continuous writes ------------------------------------------------ */

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* One writer committing without pause never finds the WAL fully copied by
 * the background checkpoints, so SQLite alone never starts it over: the
 * 1,500 commits below (3 frames each) leave a WAL of ~18 MB when the writer
 * is not attached (measured when this test was written). Attached, it
 * catches up when asked and the WAL starts over: well under 1 MB here,
 * bounded by what the writer appends while the background thread
 * checkpoints and syncs. */
/* One integer from a PRAGMA or a query, on a connection of our own (it sees
 * the WAL). */
static int64_t pragma_of(const char *path, const char *pragma)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, pragma, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* Fill @body (@n bytes, a JSON string) with text LZ4 cannot shrink, so each
 * event takes its 3 KB on disk as a random-looking payload would. */
static void incompressible_body(char *body, size_t n, uint64_t *seed)
{
	static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV";
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 6364136223846793005u + 1442695040888963407u;
		body[i] = alphabet[(*seed >> 33) % (sizeof alphabet - 1)];
	}
	body[0] = body[n - 1] = '"';
}

/* Store @n events of 3000-byte payloads, received long ago. */
static void fill_old(store *st, int n, const char *prefix)
{
	static char body[3001];
	uint64_t seed = 1;
	for (int i = 0; i < n; i++) {
		char id[64];
		incompressible_body(body, 3000, &seed);
		str_printf(id, sizeof id, "%s%d", prefix, i);
		event *ev = suite_ev_new("wv", id, "createCard", "s", body, 3000);
		ev->received_at = 1600000000000 + i;
		assert_int_equal(suite_put1(st, ev), STORE_PUT_NEW);
		suite_ev_free(ev);
	}
}

static int64_t prune_everything(store *st)
{
	prune_batch b = {0};
	th_error err = {0};
	int64_t n = 0;
	while (!b.done) {
		assert_int_equal(store_events_prune(st, time_now_ms(), 500, false, &b, &err), 0);
		n += b.events;
	}
	return n;
}

/* A new file is made with incremental auto-vacuum: after a prune, compact
 * gives the freed pages back and the file is as small as before the events.
 * An older file (auto_vacuum none) reuses its free pages but keeps its size
 * until vacuum_mode converts it, once. */
static void test_prune_gives_space_back(void **state)
{
	fx *f = *state;
	store *st = f->base.st;
	th_error err = {0};
	int mode = -1;
	assert_int_equal(store_vacuum_mode(st, false, &mode, &err), 0);
	assert_int_equal(mode, 2);
	int64_t empty = pragma_of(f->path, "PRAGMA page_count");
	fill_old(st, 2000, "a");
	int64_t full = pragma_of(f->path, "PRAGMA page_count");
	assert_true(full > empty + 1000); /* 6 MB of payloads */
	assert_int_equal(prune_everything(st), 2000);
	int64_t freelist = pragma_of(f->path, "PRAGMA freelist_count");
	assert_true(freelist > 1000);
	int64_t freed = 0, total = 0;
	do {
		assert_int_equal(store_compact(st, 512, &freed, &err), 0);
		assert_true(freed <= 512);
		total += freed;
	} while (freed > 0);
	assert_int_equal(total, freelist);
	assert_int_equal(pragma_of(f->path, "PRAGMA freelist_count"), 0);
	assert_true(pragma_of(f->path, "PRAGMA page_count") < empty + 50);
	/* the same again: the file does not grow from one round to the next */
	fill_old(st, 2000, "b");
	assert_true(pragma_of(f->path, "PRAGMA page_count") <= full + 50);

	/* an older file, made without auto-vacuum */
	store_close(st);
	f->base.st = NULL;
	const char *sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char p[400];
		str_printf(p, sizeof p, "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "PRAGMA auto_vacuum = NONE; CREATE TABLE old (x)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&f->base.st, f->base.url, &err), 0);
	st = f->base.st;
	assert_int_equal(store_vacuum_mode(st, false, &mode, &err), 0);
	assert_int_equal(mode, 0);
	fill_old(st, 2000, "c");
	full = pragma_of(f->path, "PRAGMA page_count");
	assert_int_equal(prune_everything(st), 2000);
	assert_int_equal(store_compact(st, 512, &freed, &err), 0);
	assert_int_equal(freed, 0); /* it cannot: the pages stay free in the file */
	assert_int_equal(pragma_of(f->path, "PRAGMA page_count"), full);
	/* free pages are reused: the same events again do not grow the file */
	fill_old(st, 2000, "d");
	assert_true(pragma_of(f->path, "PRAGMA page_count") <= full + 50);
	assert_int_equal(prune_everything(st), 2000);
	/* converted once */
	assert_int_equal(store_vacuum_mode(st, true, &mode, &err), 0);
	assert_int_equal(mode, 2);
	assert_true(pragma_of(f->path, "PRAGMA page_count") < full / 10);
	assert_int_equal(store_vacuum_mode(st, true, &mode, &err), 0); /* again: nothing to do */
	assert_int_equal(mode, 2);
}

/* ---- store/payload_codec.c: packing payloads, reading packed ones back ------------------ */

/* The bytes of tests/data/payloads/@name (a real delivery) into @out; their count. */
static size_t read_sample(const char *name, char *out, size_t size)
{
	const char *dir = getenv("TH_TEST_DATA");
	char path[512];
	str_printf(path, sizeof path, "%s/payloads/%s", dir ? dir : "tests/data", name);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	size_t n = fread(out, 1, size, fp);
	fclose(fp);
	assert_true(n > 0 && n < size);
	return n;
}

/* `migrate --repack`'s store steps: rows an older version stored raw are
 * packed batch by batch (the range's end respected, a row that would not
 * shrink left raw), read back byte for byte, and the VACUUM after it gives
 * the space back; a second pass finds nothing to pack. */
static void test_payloads_repack(void **state)
{
	fx *f = *state;
	store *st = f->base.st;
	th_error err = {0};
	repack_batch b = {.after_seq = 0, .upto_seq = 10};
	assert_int_equal(store_payloads_repack(st, 0, &b, &err), TH_EINVAL);
	bool found = true;
	assert_int_equal(store_payloads_raw_sample(st, &found, &err), 0);
	assert_false(found); /* no events */
	/* 1,000 raw rows as a version before migration 12 wrote them, one random */
	static char body[1 << 16];
	size_t len = read_sample("commentCard.json", body, sizeof body);
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "INSERT INTO events (id, webhook_id, action_id,"
	                       " action_type, summary, payload, received_at)"
	                       " VALUES (printf('old%017d', ?1), 'w', printf('%024x', ?1),"
	                       " 'commentCard', 's', ?2, 1700000000000 + ?1)",
	                       -1, &q, NULL),
	    SQLITE_OK);
	static char noise[3000];
	uint64_t seed = 5;
	incompressible_body(noise, sizeof noise, &seed);
	for (int i = 1; i <= 1000; i++) {
		sqlite3_bind_int(q, 1, i);
		sqlite3_bind_blob(q, 2, i == 500 ? noise : body,
		                  i == 500 ? (int)sizeof noise : (int)len, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(q), SQLITE_DONE);
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	int64_t lo = 0, hi = 0;
	assert_int_equal(store_event_seq_bounds(st, &lo, &hi, &err), 0);
	assert_int_equal(hi - lo, 999);
	assert_int_equal(store_payloads_raw_sample(st, &found, &err), 0);
	assert_true(found); /* what doctor reports */
	/* the first 100 seqs only, then the rest in batches of 300 */
	b = (repack_batch){.after_seq = lo - 1, .upto_seq = lo + 99};
	assert_int_equal(store_payloads_repack(st, 300, &b, &err), 0);
	assert_true(b.done);
	assert_int_equal(b.after_seq, lo + 99);
	assert_int_equal(b.raw, 100);
	assert_int_equal(b.packed, 100);
	assert_int_equal(b.bytes_before, 100 * (int64_t)len);
	assert_true(b.bytes_after < b.bytes_before * 3 / 5); /* Trello JSON packs ~2x */
	assert_int_equal(pragma_of(f->path, "SELECT count(*) FROM events WHERE payload_codec = 0"),
	                 900);
	assert_int_equal(store_payloads_raw_sample(st, &found, &err), 0);
	assert_true(found); /* a repack stopped midway: the oldest are packed, not the rest */
	b = (repack_batch){.after_seq = lo + 99, .upto_seq = hi};
	int64_t raw = 0, packed = 0, batches = 0;
	while (!b.done) {
		assert_int_equal(store_payloads_repack(st, 300, &b, &err), 0);
		raw += b.raw;
		packed += b.packed;
		batches++;
	}
	assert_int_equal(batches, 3);
	assert_int_equal(raw, 900);
	assert_int_equal(packed, 899); /* the random one stays raw */
	assert_int_equal(pragma_of(f->path, "SELECT count(*) FROM events WHERE payload_codec = 0"),
	                 1);
	assert_int_equal(store_payloads_raw_sample(st, &found, &err), 0);
	assert_false(found); /* raw, but it would not shrink */
	int64_t before = 0, after = 0;
	assert_int_equal(store_vacuum(st, &before, &after, &err), 0);
	assert_true(after < before * 2 / 3);
	assert_int_equal(pragma_of(f->path, "PRAGMA auto_vacuum"), 2);
	/* every row reads back as it was stored */
	char id[32];
	for (int i = 1; i <= 1000; i += 111) {
		str_printf(id, sizeof id, "old%017d", i);
		event got = {0};
		assert_int_equal(store_event_get(st, id, &got, &err), 0);
		assert_int_equal(got.payload_len, i == 500 ? sizeof noise : len);
		assert_memory_equal(got.payload, i == 500 ? noise : body, got.payload_len);
		event_clear(&got);
	}
	event got = {0};
	assert_int_equal(store_event_get(st, "old00000000000000500", &got, &err), 0);
	assert_memory_equal(got.payload, noise, sizeof noise);
	event_clear(&got);
	/* again: nothing to pack */
	b = (repack_batch){.after_seq = lo - 1, .upto_seq = hi};
	assert_int_equal(store_payloads_repack(st, 100000, &b, &err), 0);
	assert_true(b.done);
	assert_int_equal(b.raw, 1);
	assert_int_equal(b.packed, 0);
}

/* Unpack @pk and compare with the @len bytes at @p. */
static void assert_unpacks_to(const packed_payload *pk, const void *p, size_t len)
{
	char *out = NULL, why[160] = "";
	size_t n = 0;
	if (payload_unpack(pk->codec, pk->data, pk->len, &out, &n, why, sizeof why) != 0)
		fail_msg("unpack: %s", why);
	assert_int_equal(n, len);
	assert_memory_equal(out, p, len);
	assert_int_equal(out[len], '\0');
	free(out);
}

/* Round trips: what shrinks is packed, what does not (short, random, every
 * byte value once) stays raw and borrowed; either way the bytes come back. */
static void test_payload_codec_round_trips(void **state)
{
	(void)state;
	packed_payload pk;
	payload_pack(NULL, 0, &pk);
	assert_int_equal(pk.codec, PAYLOAD_RAW);
	assert_int_equal(pk.len, 0);
	assert_unpacks_to(&pk, "", 0);
	packed_payload_free(&pk);

	static const char unit[] = "{\"type\":\"updateCard\",\"data\":{\"old\":\"\xff\x00\"}},";
	char text[4096];
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = unit[i % (sizeof unit - 1)];
	size_t sizes[] = {1, PAYLOAD_PACK_MIN - 1, PAYLOAD_PACK_MIN, 100, sizeof text};
	for (size_t i = 0; i < TH_ARRAY_LEN(sizes); i++) {
		payload_pack(text, sizes[i], &pk);
		if (sizes[i] < PAYLOAD_PACK_MIN) {
			assert_int_equal(pk.codec, PAYLOAD_RAW);
			assert_ptr_equal(pk.data, text);
		} else {
			assert_int_equal(pk.codec, PAYLOAD_LZ4);
			assert_true(pk.len < sizes[i]);
		}
		assert_unpacks_to(&pk, text, sizes[i]);
		packed_payload_free(&pk);
	}
	uint64_t seed = 7;
	incompressible_body(text, sizeof text, &seed);
	for (size_t i = 0; i < 256; i++)
		text[i] = (char)i; /* and every byte value */
	payload_pack(text, sizeof text, &pk);
	assert_int_equal(pk.codec, PAYLOAD_RAW);
	assert_ptr_equal(pk.data, text);
	assert_null(pk.owned);
	assert_unpacks_to(&pk, text, sizeof text);
	packed_payload_free(&pk);
}

/* Stored bytes that are not what was written: refused with a reason, never
 * read past, never a wrong length. Every truncation and every single-byte
 * change of a packed block (LZ4 blocks carry no checksum: a changed literal
 * may still decode, to the declared length), a declared length too large
 * for the block or the limit, a codec this version does not know. */
static void test_payload_codec_refuses_damage(void **state)
{
	(void)state;
	static const char unit[] = "{\"name\":\"Card \xc3\xa9\",\"pos\":16384},";
	char text[3000];
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = unit[i % (sizeof unit - 1)];
	packed_payload pk;
	payload_pack(text, sizeof text, &pk);
	assert_int_equal(pk.codec, PAYLOAD_LZ4);
	unsigned char *copy = malloc(pk.len);
	assert_non_null(copy);
	char *out = NULL, why[160];
	size_t n = 0;
	for (size_t cut = 0; cut < pk.len; cut++) {
		memcpy(copy, pk.data, cut); /* exactly @cut bytes: ASan sees any overread */
		why[0] = '\0';
		assert_int_equal(payload_unpack(PAYLOAD_LZ4, copy, cut, &out, &n, why, sizeof why),
		                 TH_ESTORE);
		assert_null(out);
		assert_true(why[0] != '\0');
	}
	for (size_t at = 0; at < pk.len; at++) {
		memcpy(copy, pk.data, pk.len);
		copy[at] ^= 0x5a;
		int rc = payload_unpack(PAYLOAD_LZ4, copy, pk.len, &out, &n, why, sizeof why);
		if (rc == 0) {
			assert_int_equal(n, sizeof text); /* a changed header never decodes */
			assert_int_equal(out[n], '\0');
			free(out);
		} else {
			assert_int_equal(rc, TH_ESTORE);
			assert_null(out);
		}
	}
	/* a declared length LZ4 could not reach from this block, or over the limit */
	memcpy(copy, pk.data, pk.len);
	copy[0] = copy[1] = copy[2] = 0xff;
	copy[3] = 0x00; /* 16 MiB from a ~100-byte block */
	assert_int_equal(payload_unpack(PAYLOAD_LZ4, copy, pk.len, &out, &n, why, sizeof why),
	                 TH_ESTORE);
	assert_non_null(strstr(why, "declares 16777215 bytes"));
	copy[3] = 0x7f;
	assert_int_equal(payload_unpack(PAYLOAD_LZ4, copy, pk.len, &out, &n, why, sizeof why),
	                 TH_ESTORE);
	assert_int_equal(payload_unpack(2, pk.data, pk.len, &out, &n, why, sizeof why), TH_ESTORE);
	assert_string_equal(why, "payload_codec is 2, which this version does not know");
	assert_int_equal(payload_unpack(-1, pk.data, pk.len, &out, &n, why, sizeof why), TH_ESTORE);
	free(copy);
	packed_payload_free(&pk);
}

static void sql_run(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	char *emsg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &emsg) != SQLITE_OK)
		fail_msg("%s: %s", sql, emsg ? emsg : "?");
	sqlite3_close(db);
}

/* On disk: a real delivery is kept LZ4-packed in well under its size, a
 * short or random one as it came; a row written raw (as before migration 12)
 * reads back; a damaged packed row is refused by id with what is wrong and
 * what to do, in a read, a replay and an export page, while its neighbours
 * and the listings without payloads still read. */
static void test_payloads_packed_on_disk(void **state)
{
	fx *f = *state;
	store *st = f->base.st;
	th_error err = {0};
	static char real[1 << 16];
	size_t real_len = read_sample("updateCard-moveList.json", real, sizeof real);
	assert_true(real_len > 1000);
	static char noise[3000];
	uint64_t seed = 3;
	incompressible_body(noise, sizeof noise, &seed);
	struct {
		const char *aid, *p;
		size_t len;
		int codec;
	} rows[] = {{"real", real, real_len, PAYLOAD_LZ4},
	            {"short", "{\"a\":1}", 7, PAYLOAD_RAW},
	            {"noise", noise, sizeof noise, PAYLOAD_RAW}};
	char ids[3][64];
	for (size_t i = 0; i < TH_ARRAY_LEN(rows); i++) {
		event *ev =
		    suite_ev_new("wp", rows[i].aid, "updateCard", "s", rows[i].p, rows[i].len);
		assert_int_equal(suite_put1(st, ev), STORE_PUT_NEW);
		str_copy(ids[i], sizeof ids[i], ev->id);
		suite_ev_free(ev);
		char sql[256];
		str_printf(sql, sizeof sql,
		           "SELECT payload_codec FROM events WHERE action_id = '%s'", rows[i].aid);
		assert_int_equal(pragma_of(f->path, sql), rows[i].codec);
	}
	int64_t packed =
	    pragma_of(f->path, "SELECT length(payload) FROM events WHERE action_id = 'real'");
	assert_true(packed < (int64_t)real_len / 2); /* Trello's JSON packs 2.5-3x */

	/* a row as a version before migration 12 wrote it: raw, codec 0 */
	sql_run(f->path,
	        "UPDATE events SET payload_codec = 0, payload = CAST('{\"old\":true}' AS BLOB)"
	        " WHERE action_id = 'short'");
	event got = {0};
	assert_int_equal(store_event_get(st, ids[1], &got, &err), 0);
	assert_int_equal(got.payload_len, 12);
	assert_memory_equal(got.payload, "{\"old\":true}", 12);
	event_clear(&got);

	/* damage: the packed row cut short, then a codec from the future */
	const char *damage[] = {
	    "UPDATE events SET payload = substr(payload, 1, length(payload) - 9)"
	    " WHERE action_id = 'real'",
	    "UPDATE events SET payload_codec = 9 WHERE action_id = 'real'"};
	for (size_t i = 0; i < TH_ARRAY_LEN(damage); i++) {
		sql_run(f->path, damage[i]);
		err.msg[0] = '\0';
		assert_int_equal(store_event_get(st, ids[0], &got, &err), TH_ESTORE);
		assert_non_null(strstr(err.msg, ids[0]));
		assert_non_null(strstr(err.msg, "cannot be read"));
		assert_non_null(strstr(err.msg, "restore it from a backup"));
		size_t made = 0;
		assert_int_equal(store_event_replay(st, ids[0], &made, &err), TH_ESTORE);
		assert_non_null(strstr(err.msg, ids[0]));
		event_page_query q = {.after_seq = 0, .upto_seq = 100, .limit = 10};
		event_row *page = NULL;
		size_t n = 0;
		assert_int_equal(store_event_page(st, &q, &page, &n, &err), TH_ESTORE);
		assert_null(page);
		/* the others still read, and so does the listing, which reads no payload */
		assert_int_equal(store_event_get(st, ids[2], &got, &err), 0);
		assert_memory_equal(got.payload, noise, sizeof noise);
		event_clear(&got);
		event_query lq = {.limit = 10};
		assert_int_equal(store_event_list(st, &lq, &page, &n, &err), 0);
		assert_int_equal(n, 3);
		event_row_list_free(page, n);
	}
}

/* The fixture's file as a bare WAL database (table t) without the store, and
 * a checkpointer on it every @period_ms (catching up past @catch_up frames)
 * attached to that connection as the store's writer would be. */
static sqlite3 *wal_db_with_ckpt(fx *f, int period_ms, int catch_up, sqlite_ckpt **c)
{
	store_close(f->base.st);
	f->base.st = NULL;
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	                              "PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB)",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	th_error err = {0};
	assert_int_equal(sqlite_ckpt_start(c, f->path, period_ms, catch_up, &err), 0);
	sqlite_ckpt_attach_writer(*c, db);
	return db;
}

/* The database file's size once every page of @db is in it (page_count * page_size). */
static off_t full_size(sqlite3 *db)
{
	off_t full = 1;
	const char *pragmas[] = {"PRAGMA page_count", "PRAGMA page_size"};
	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *pq = NULL;
		assert_int_equal(sqlite3_prepare_v2(db, pragmas[i], -1, &pq, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(pq), SQLITE_ROW);
		full *= (off_t)sqlite3_column_int64(pq, 0);
		sqlite3_finalize(pq);
	}
	return full;
}

static void test_wal_stays_bounded(void **state)
{
	fx *f = *state;
	sqlite_ckpt *c = NULL;
	/* small numbers: a check every 5 ms, catch up past 64 frames (256 KiB) */
	sqlite3 *db = wal_db_with_ckpt(f, 5, 64, &c);
	sqlite3_stmt *q = NULL;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (zeroblob(3000))", -1, &q, NULL),
	    SQLITE_OK);
	char wal[400];
	assert_true(str_printf(wal, sizeof wal, "%s-wal", f->path));
	off_t peak = 0;
	for (int i = 0; i < 1500; i++) {
		assert_int_equal(sqlite3_step(q), SQLITE_DONE);
		assert_int_equal(sqlite3_reset(q), SQLITE_OK);
		off_t n = file_size(wal);
		if (n > peak)
			peak = n;
	}
	sqlite3_finalize(q);
	/* Writes stopped, perhaps with the writer asked to catch up: the
	 * background thread finishes the copy itself, so the database file
	 * reaches its full size (the size a complete checkpoint sets) soon. */
	off_t full = full_size(db);
	for (int i = 0; i < 400 && file_size(f->path) != full; i++)
		usleep(5000);
	assert_int_equal(file_size(f->path), full);
	sqlite_ckpt_stop(c);
	sqlite3_close(db);
	print_message("WAL peak: %lld bytes\n", (long long)peak);
	assert_true(peak > 0);
	assert_true(peak < 6 << 20);
}

/* Milliseconds until the database file holds every page (checkpointed), at most @max_ms. */
static int64_t ms_until_checkpointed(const char *path, sqlite3 *db, int64_t max_ms)
{
	off_t full = full_size(db);
	int64_t t0 = time_mono_ms();
	while (file_size(path) != full && time_mono_ms() - t0 < max_ms)
		usleep(2000);
	return time_mono_ms() - t0;
}

/* An idle checkpointer waits a second between passes, not a period, and the
 * writer's next commit wakes it at once: that commit is copied into the
 * database long before the second is out. */
static void test_ckpt_idle_wakes_on_commit(void **state)
{
	fx *f = *state;
	sqlite_ckpt *c = NULL;
	sqlite3 *db = wal_db_with_ckpt(f, 5, 8192, &c);
	const char *grow = "INSERT INTO t VALUES (zeroblob(100000))"; /* ~25 new pages */
	assert_int_equal(sqlite3_exec(db, grow, NULL, NULL, NULL), SQLITE_OK);
	assert_true(ms_until_checkpointed(f->path, db, 2000) < 2000);
	usleep(100 * 1000); /* 20 periods with nothing new: the thread waits the long wait now */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sqlite3_exec(db, grow, NULL, NULL, NULL), SQLITE_OK);
		int64_t ms = ms_until_checkpointed(f->path, db, 2000);
		print_message("commit after idle copied in %lld ms\n", (long long)ms);
		assert_true(ms < 500);
		usleep(100 * 1000);
	}
	sqlite_ckpt_stop(c);
	sqlite3_close(db);
}

/* ---- the claim against the query it replaced ------------------------------------------ */

/* The claim query before schema 10 (one walk of the whole queue), in terms
 * of status alone (not the partial indexes' column of schema 11, nor their
 * order: ties in event order go by rowid, as an index walk takes them): the
 * definition of what the bounded claim must return, row for row. */
static const char OLD_CLAIM[] =
    "SELECT d.id FROM deliveries d"
    " JOIN handlers h ON h.id = d.handler_id"
    " WHERE d.status IN ('pending', 'running', 'failed')"
    "   AND (CASE WHEN d.status = 'running' THEN d.claimed_until < ?1"
    "        ELSE d.next_attempt_at <= ?1 END)"
    "   AND h.enabled = 1"
    "   AND ((?2 >> (CASE h.kind WHEN 'exec' THEN 0 WHEN 'forward' THEN 1"
    "                 WHEN 'func' THEN 2 ELSE 31 END)) & 1) = 1"
    "   AND NOT EXISTS (SELECT 1 FROM deliveries p"
    "        WHERE p.webhook_id = d.webhook_id AND p.handler_id = d.handler_id"
    "          AND p.event_seq < d.event_seq"
    "          AND p.status IN ('pending', 'running', 'failed'))"
    " ORDER BY d.event_seq, d.generation, d.rowid LIMIT ?3";

static void db_exec(sqlite3 *db, const char *sql)
{
	char *emsg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &emsg) != SQLITE_OK)
		fail_msg("%s: %s", sql, emsg ? emsg : "?");
}

/* Give @n random deliveries (all when @n < 0) a random state: due or not,
 * pending, failed, running (lease over or not), done or dead. */
static void scramble(sqlite3 *db, int n, int64_t now)
{
	sqlite3_stmt *ids = NULL, *up = NULL;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT rowid FROM deliveries ORDER BY rowid", -1, &ids, NULL),
	    SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "UPDATE deliveries SET status = ?2, next_attempt_at = ?3,"
	                       " claimed_until = ?4,"
	                       " unfinished = (?2 IN ('pending', 'running', 'failed'))"
	                       " WHERE rowid = ?1",
	                       -1, &up, NULL),
	    SQLITE_OK);
	db_exec(db, "BEGIN IMMEDIATE");
	const int64_t far = now + 1000000000;
	while (sqlite3_step(ids) == SQLITE_ROW) {
		if (n >= 0 && rand() % 8 != 0)
			continue;
		static const char *const st[] = {"pending", "pending", "pending", "pending",
		                                 "failed",  "failed",  "running", "running",
		                                 "done",    "dead"};
		int r = rand() % 10;
		int64_t next = rand() % 3 == 0 ? far : 0, lease = rand() % 2 ? far : 1;
		sqlite3_bind_int64(up, 1, sqlite3_column_int64(ids, 0));
		sqlite3_bind_text(up, 2, st[r], -1, SQLITE_STATIC);
		sqlite3_bind_int64(up, 3, next);
		sqlite3_bind_int64(up, 4, r == 6 || r == 7 ? lease : 0);
		assert_int_equal(sqlite3_step(up), SQLITE_DONE);
		sqlite3_reset(up);
	}
	db_exec(db, "COMMIT");
	sqlite3_finalize(ids);
	sqlite3_finalize(up);
}

/* suite_old_claim_fn: the old query's ids into @out ("id,id,...") */
static void old_claim(void *ctx, int64_t now, unsigned kinds, int limit, buf *out)
{
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(ctx, OLD_CLAIM, -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_int64(q, 2, kinds);
	sqlite3_bind_int64(q, 3, limit);
	while (sqlite3_step(q) == SQLITE_ROW)
		assert_int_equal(buf_printf(out, "%s,", (const char *)sqlite3_column_text(q, 0)),
		                 0);
	sqlite3_finalize(q);
}

/* suite_scramble_fn: every delivery's state at first, then some, and the
 * handlers' enabled flags every third round */
static void claim_scramble(void *ctx, int round)
{
	if (round < 0) {
		scramble(ctx, -1, time_now_ms());
		return;
	}
	if (round % 3 == 0)
		db_exec(ctx, "UPDATE handlers SET enabled = (abs(random()) % 4 <> 0)");
	scramble(ctx, 0, time_now_ms());
}

/* Random queues (blocked chains, disabled handlers, kinds out of the mask,
 * replays, leases running or over), longer than the claim's window: every
 * claim returns exactly the rows, in the order, of the old full walk. */
static void test_claim_same_as_full_walk(void **state)
{
	fx *f = *state;
	enum { EVENTS = 400 };
	event *evs[EVENTS];
	suite_claim_random_queue(f->base.st, evs, EVENTS);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	suite_claim_compare(f->base.st, old_claim, claim_scramble, db);
	sqlite3_close(db);
	for (int i = 0; i < EVENTS; i++)
		suite_ev_free(evs[i]);
}

/* A VACUUM that cannot get the write lock (another connection holds it past
 * busy_timeout, 5 s) fails saying so, not with the full-disk advice; once the
 * lock is free it runs. */
static void test_vacuum_locked_says_why(void **state)
{
	fx *f = *state;
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	th_error err = {0, {0}};
	int64_t before = -1, after = -1;
	assert_int_equal(store_vacuum(f->base.st, &before, &after, &err), TH_ESTORE);
	assert_non_null(strstr(err.msg, "VACUUM (rewriting the file): database is locked"));
	assert_non_null(strstr(err.msg, "is serve running?"));
	assert_null(strstr(err.msg, "disk"));
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_vacuum(f->base.st, &before, &after, &err), 0);
	assert_true(before > 0 && after > 0);
}

/* A new store file, and the -wal and -shm SQLite makes beside it, are for
 * their owner only, whatever the umask: the store holds tokens. An existing
 * file keeps the mode its owner gave it. */
static void test_new_store_owner_only(void **state)
{
	fx *f = *state;
	mode_t old = umask(022);
	event *e = suite_ev_new("w1", "m1", "commentCard", "mode", NULL, 0);
	assert_int_equal(suite_put1(f->base.st, e), STORE_PUT_NEW);
	suite_ev_free(e);
	const char *sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < TH_ARRAY_LEN(sfx); i++) {
		char p[400];
		struct stat st;
		assert_true(str_printf(p, sizeof p, "%s%s", f->path, sfx[i]));
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	store_close(f->base.st);
	f->base.st = NULL;
	assert_int_equal(chmod(f->path, 0640), 0);
	th_error err = {0, {0}};
	assert_int_equal(store_open(&f->base.st, f->base.url, &err), 0);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	umask(old);
}

/* ---- store/backup.c: a backup put back ------------------------------------------------ */

/* restore puts a backup in place and keeps the store it replaced whole, with
 * what was stored after the backup; it refuses the store itself, a file that
 * is not an SQLite store, and one that is not trellohook's, changing nothing. */
static void test_restore_keeps_replaced(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	event *a = suite_ev_new("w1", "a1", "commentCard", "before", NULL, 0);
	assert_int_equal(suite_put1(f->base.st, a), STORE_PUT_NEW);
	char copy[400], junk[400], plain[400];
	assert_true(str_printf(copy, sizeof copy, "%s/copy.db", f->dir));
	assert_true(str_printf(junk, sizeof junk, "%s/junk.db", f->dir));
	assert_true(str_printf(plain, sizeof plain, "%s/plain.db", f->dir));
	store_backup_info bi;
	assert_int_equal(store_backup(f->base.url, copy, false, &bi, &err), 0);
	event *b = suite_ev_new("w1", "a2", "commentCard", "after", NULL, 0);
	assert_int_equal(suite_put1(f->base.st, b), STORE_PUT_NEW);
	store_close(f->base.st); /* restore wants the store to itself */
	f->base.st = NULL;

	store_restore_info ri;
	FILE *fp = fopen(junk, "w");
	assert_non_null(fp);
	assert_true(fputs("not a database, not at all; long enough for a header. ", fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(store_restore(f->base.url, junk, &ri, &err), TH_EINVAL);
	assert_non_null(strstr(err.msg, "is not an SQLite store"));
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(plain, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE x (a)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_restore(f->base.url, plain, &ri, &err), TH_EINVAL);
	assert_non_null(strstr(err.msg, "not a trellohook store"));
	assert_int_equal(store_restore(f->base.url, f->path, &ri, &err), TH_EINVAL);
	assert_non_null(strstr(err.msg, "is the store itself"));
	assert_int_equal(pragma_of(f->path, "SELECT count(*) FROM events"), 2);

	assert_int_equal(store_restore(f->base.url, copy, &ri, &err), 0);
	assert_int_equal(ri.schema_version, bi.schema_version);
	assert_true(ri.bytes > 0);
	assert_non_null(strstr(ri.replaced, "/t.db.replaced-"));
	assert_int_equal(pragma_of(f->path, "SELECT count(*) FROM events"), 1);
	assert_int_equal(pragma_of(ri.replaced, "SELECT count(*) FROM events"), 2);
	/* the store it replaces may be the damaged one: set aside as it is */
	char first[sizeof ri.replaced];
	assert_true(str_copy(first, sizeof first, ri.replaced));
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_true(fputs("damaged beyond repair", fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	char journal[400], moved[sizeof ri.replaced + 16];
	assert_true(str_printf(journal, sizeof journal, "%s-journal", f->path));
	fp = fopen(journal, "w"); /* a rollback journal left over: never rolled into the copy */
	assert_non_null(fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(store_restore(f->base.url, copy, &ri, &err), 0);
	assert_int_equal(access(journal, F_OK), -1);
	assert_true(str_printf(moved, sizeof moved, "%s-journal", ri.replaced));
	assert_int_equal(access(moved, F_OK), 0);
	unlink(moved);
	assert_string_not_equal(ri.replaced, first); /* in the same second: NAME-2 */
	assert_int_equal(pragma_of(f->path, "SELECT count(*) FROM events"), 1);
	fp = fopen(ri.replaced, "r");
	assert_non_null(fp);
	char got[32] = "";
	assert_non_null(fgets(got, sizeof got, fp));
	fclose(fp);
	assert_string_equal(got, "damaged beyond repair");
	assert_int_equal(store_open(&f->base.st, f->base.url, &err), 0); /* for the teardown */
	unlink(first);
	const char *gone[] = {junk, plain, copy, ri.replaced};
	for (size_t i = 0; i < TH_ARRAY_LEN(gone); i++)
		unlink(gone[i]);
	suite_ev_free(a);
	suite_ev_free(b);
}

/* ---- store/peer.c: another process with the store open ----------------------------- */

#define PEER_CHILD_ENV "TH_TEST_PEER_CHILD" /* "FD:PATH" */

/* As peer_spawn's child (this binary run again: a plain fork of a process
 * with threads could hang in SQLite, see suite_recover_dead_claims): named
 * "trellohook", open PATH in WAL mode and read it, say 'r' on FD, then keep
 * the store open until the parent closes its end. */
static void peer_child_main(void)
{
	const char *v = getenv(PEER_CHILD_ENV);
	if (!v)
		return;
	char *end = NULL;
	long fd = strtol(v, &end, 10);
	if (!end || *end != ':' || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
	    prctl(PR_SET_NAME, "trellohook") != 0)
		_exit(3);
	sqlite3 *db = NULL;
	if (sqlite3_open(end + 1, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL; SELECT count(*) FROM sqlite_master", NULL,
	                 NULL, NULL) != SQLITE_OK)
		_exit(4);
	char c = 'r';
	if (write((int)fd, &c, 1) != 1)
		_exit(5);
	while (read((int)fd, &c, 1) > 0)
		;
	_exit(sqlite3_close(db) == SQLITE_OK ? 0 : 6);
}

/* Start a process that holds @path open (argv "peer-child serve"); *@sock is
 * the parent's end, readable once the child has the store open. */
static pid_t peer_spawn(const char *path, int *sock)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	char env[512], self[4096];
	assert_true(str_printf(env, sizeof env, "%s=%d:%s", PEER_CHILD_ENV, sv[1], path));
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	assert_true(sl > 0);
	self[sl] = '\0';
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = {(char *)"peer-child", (char *)"serve", NULL};
		char *envp[] = {env, NULL};
		close(sv[0]);
		if (fcntl(sv[1], F_SETFD, 0) != 0)
			_exit(126);
		execve(self, argv, envp);
		_exit(127);
	}
	close(sv[1]);
	char c = 0;
	assert_int_equal(read(sv[0], &c, 1), 1);
	assert_int_equal(c, 'r');
	*sock = sv[0];
	return pid;
}

/* A store open in another process is seen, with the process named for
 * people; the same store once that process closed it, or died by kill -9
 * (its WAL index left behind, with no lock on it), is not. */
static void test_peer_seen_while_open(void **state)
{
	(void)state;
	char dir[64], path[128], url[160];
	assert_true(str_copy(dir, sizeof dir, "/tmp/th-peer-XXXXXX"));
	assert_non_null(mkdtemp(dir));
	assert_true(str_printf(path, sizeof path, "%s/t.db", dir));
	assert_true(str_printf(url, sizeof url, "sqlite:%s", path));
	th_error err = {0, {0}};
	store_peer p = {.pid = 99};
	const char *none[] = {"postgresql://u@127.0.0.1/x", "sqlite::memory:", url};
	for (size_t i = 0; i < TH_ARRAY_LEN(none); i++) {
		assert_int_equal(store_sqlite_peer(none[i], &p, &err), 0);
		assert_int_equal(p.pid, 0);
	}

	int sock = -1;
	pid_t child = peer_spawn(path, &sock);
	assert_int_equal(store_sqlite_peer(url, &p, &err), 0);
	assert_int_equal(p.pid, child);
	assert_string_equal(p.what, "trellohook serve");
	close(sock); /* the child closes the store and exits */
	int status = 0;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(store_sqlite_peer(url, &p, &err), 0);
	assert_int_equal(p.pid, 0);

	child = peer_spawn(path, &sock);
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	close(sock);
	char shm[160];
	assert_true(str_printf(shm, sizeof shm, "%s-shm", path));
	struct stat st;
	assert_int_equal(stat(shm, &st), 0); /* left behind by the crash */
	assert_int_equal(store_sqlite_peer(url, &p, &err), 0);
	assert_int_equal(p.pid, 0);

	const char *sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < TH_ARRAY_LEN(sfx); i++) {
		char f[160];
		assert_true(str_printf(f, sizeof f, "%s%s", path, sfx[i]));
		unlink(f);
	}
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	peer_child_main();  /* returns unless started as peer_spawn's child */
	suite_child_main(); /* returns unless started as a test's child */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_type_names),
	    cmocka_unit_test(test_handler_matches),
	    cmocka_unit_test(test_open_bad_urls),
	    cmocka_unit_test(test_open_missing_directory),
	    cmocka_unit_test(test_open_memory),
	    cmocka_unit_test_setup_teardown(test_migrations_idempotent, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_newer_schema_refused, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_wal_stays_bounded, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ckpt_idle_wakes_on_commit, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_prune_gives_space_back, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_claim_same_as_full_walk, fx_setup, fx_teardown),
	    cmocka_unit_test(test_payload_codec_round_trips),
	    cmocka_unit_test(test_payload_codec_refuses_damage),
	    cmocka_unit_test_setup_teardown(test_payloads_packed_on_disk, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_payloads_repack, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_vacuum_locked_says_why, fx_setup, fx_teardown),
	    cmocka_unit_test(test_peer_seen_while_open),
	    cmocka_unit_test_setup_teardown(test_restore_keeps_replaced, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_new_store_owner_only, fx_setup, fx_teardown),
	    STORE_SUITE_TESTS(fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
