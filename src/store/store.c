/* SPDX-License-Identifier: MIT */
/*
 * store.c — choosing a store implementation from DATABASE_URL, the
 * array/struct helpers shared by every implementation, and the logic both
 * implementations share (store_int.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_fault.h"
#include "store/store_int.h"

#define URL_HELP \
	"expected sqlite:PATH (e.g. sqlite:trellohook.db) or postgresql://user:pass@host:port/db"

/* Open the store named by @database_url and migrate it. Accepted forms:
 *   sqlite:PATH          a file (created when missing; its directory must exist)
 *   sqlite:///ABS/PATH   the same, URL style
 *   sqlite::memory:      a private in-memory database (tests)
 *   postgresql://... or postgres://...   PostgreSQL (store/pg.c; optional
 *                        query parameters pool_size=N, statement_timeout=MS)
 * On success *out is owned by the caller (store_close()). On failure *out is
 * NULL and @err names DATABASE_URL and what was wrong. The URL is never
 * printed in full (it may hold a password). */
int store_open(store **out, const char *database_url, th_error *err)
{
	*out = NULL;
	const char *u = database_url;
	if (!u || !*u)
		return th_err(err, TH_ECONFIG, "DATABASE_URL is empty; " URL_HELP);
	int frc = store_fault_from_env(err); /* test builds only */
	if (frc)
		return frc;
	if (str_starts(u, "sqlite:")) {
		const char *path = u + strlen("sqlite:");
		if (str_starts(path, "//")) {
			/* URL style: sqlite:///abs/path (no host allowed) */
			path += 2;
			if (path[0] != '/')
				return th_err(
				    err, TH_ECONFIG,
				    "DATABASE_URL: sqlite:// must be followed by an absolute path "
				    "(sqlite:///var/lib/trellohook.db); " URL_HELP);
		}
		if (!*path)
			return th_err(err, TH_ECONFIG,
			              "DATABASE_URL: sqlite: needs a file path; " URL_HELP);
		int rc = store_sqlite_open(out, path, err);
		if (rc != 0)
			th_err_wrap(err, "DATABASE_URL");
		return rc;
	}
	if (str_starts(u, "postgresql://") || str_starts(u, "postgres://")) {
		int rc = store_pg_open(out, u, err);
		if (rc != 0)
			th_err_wrap(err, "DATABASE_URL");
		return rc;
	}
	char masked[128];
	mask_url(u, masked, sizeof masked);
	return th_err(err, TH_ECONFIG, "DATABASE_URL \"%s\" is not understood; " URL_HELP, masked);
}

/* Close @st and free everything it owns. NULL-safe. Not to be called while
 * another thread still uses the store. */
void store_close(store *st)
{
	if (st && st->ops && st->ops->close)
		st->ops->close(st);
}

/* Free an array of @n webhooks returned by a listing (each cleared). NULL-safe. */
void webhook_list_free(webhook *a, size_t n)
{
	store_rows_free(a, n, &store_rt_webhook);
}

/* Free an array of @n tokens (each cleared, tokens wiped). NULL-safe. */
void token_list_free(token *a, size_t n)
{
	store_rows_free(a, n, &store_rt_token);
}

/* Free an array of @n event rows from event_list() (listings never carry a
 * payload, but a json tree or payload set by a caller is released too).
 * NULL-safe. Does not depend on event.c so the store stands on its own. */
void event_row_list_free(event_row *a, size_t n)
{
	store_rows_free(a, n, &store_rt_event_row);
}

/* Free an array of @n handlers (secrets wiped). NULL-safe. */
void handler_list_free(handler *a, size_t n)
{
	store_rows_free(a, n, &store_rt_handler);
}

/* Free an array of @n rollup cells. NULL-safe. */
void delivery_rollup_list_free(delivery_rollup_row *a, size_t n)
{
	store_rows_free(a, n, &store_rt_delivery_rollup);
}

/* Roughly 1-2-5 steps from 1 ms to 1 min, like the run-time histograms of
 * /metrics (service/metrics.c), so a p95 of a few ms and one of 20 s both
 * land in a bucket narrow enough to read. */
const int64_t store_run_bucket_max_us[STORE_RUN_BUCKETS] = {
    1000,   2000,    5000,    10000,   25000,    50000,    100000,   250000,
    500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000, INT64_MAX};

int store_run_bucket(int64_t run_us)
{
	if (run_us < 0)
		return -1;
	int b = 0;
	while (b < STORE_RUN_BUCKETS - 1 && run_us > store_run_bucket_max_us[b])
		b++;
	return b;
}

void event_rollup_list_free(event_rollup_row *a, size_t n)
{
	store_rows_free(a, n, &store_rt_rollup);
}

/* Free an array of @n deliveries. NULL-safe. */
void delivery_list_free(delivery *a, size_t n)
{
	store_rows_free(a, n, &store_rt_delivery);
}

/* Free the strings of @m and zero it. NULL-safe. */
void backfill_mark_clear(backfill_mark *m)
{
	if (!m)
		return;
	TH_FREE_ALL(m->webhook_id, m->last_action_id, m->model_kind, m->error);
	memset(m, 0, sizeof *m);
}

/* Free the strings of @s (the CSRF token wiped first) and zero it. NULL-safe. */
void user_session_clear(user_session *s)
{
	if (!s)
		return;
	TH_FREE_ALL(s->id_hash, s->user);
	str_free_secret(s->csrf);
	memset(s, 0, sizeof *s);
}

/* ---- shared by the implementations (store_int.h) ------------------------------------- */

/* @limit, 0 meaning @dflt, capped at STORE_LIST_LIMIT_MAX. */
size_t store_list_limit(size_t limit, size_t dflt)
{
	if (limit == 0)
		limit = dflt;
	return limit > STORE_LIST_LIMIT_MAX ? STORE_LIST_LIMIT_MAX : limit;
}

/* 0, or TH_EINVAL when @w lacks a field the schema requires. */
int store_check_webhook(const webhook *w, th_error *err)
{
	if (!w->id || !w->id_model || !w->callback_url || !w->token)
		return th_err(err, TH_EINVAL,
		              "a webhook needs an id, a model, a callback URL and a token");
	return 0;
}

/* 0, or TH_EINVAL when @t has no token. */
int store_check_token(const token *t, th_error *err)
{
	if (!t->token || !*t->token)
		return th_err(err, TH_EINVAL, "a token is needed");
	return 0;
}

/* 0, or TH_EINVAL when @h lacks its id or target. */
int store_check_handler(const handler *h, th_error *err)
{
	if (!h->id || !h->target)
		return th_err(err, TH_EINVAL, "a handler needs an id and a target");
	return 0;
}

/* 0, or TH_EINVAL when a user lacks its name or password hash. */
int store_check_user(const char *name, const char *pwhash, th_error *err)
{
	if (!name || !*name || !pwhash)
		return th_err(err, TH_EINVAL, "a user needs a name and a password hash");
	return 0;
}

/* 0, or TH_EINVAL when @us lacks its id hash, user or CSRF token. */
int store_check_session(const user_session *us, th_error *err)
{
	if (!us->id_hash || !us->user || !us->csrf)
		return th_err(err, TH_EINVAL,
		              "a session needs an id hash, a user and a CSRF token");
	return 0;
}

/* 0 when @status may end an attempt (done, failed, dead), else TH_EINVAL. */
int store_check_finish(enum delivery_status status, th_error *err)
{
	if (status != DELIVERY_DONE && status != DELIVERY_FAILED && status != DELIVERY_DEAD)
		return th_err(err, TH_EINVAL, "an attempt ends as done, failed or dead, not %s",
		              delivery_status_name(status));
	return 0;
}

/* delivery_finish_many's checks: *@changed (may be NULL) zeroed, every
 * outcome's status one that ends an attempt (else TH_EINVAL); in fault
 * builds also the injected failure of the whole write (STORE_FAULT_FINISH). */
static int check_outcomes(const delivery_outcome *outs, size_t n, size_t *changed, th_error *err)
{
	if (changed)
		*changed = 0;
	/* test builds only (store_fault.h): the outcome write fails as a whole */
	if (n && store_fault_hit(STORE_FAULT_FINISH)) {
		(void)store_fault_take(); /* reported here, not by a later sq_fail */
		return th_err(err, TH_ESTORE,
		              "recording delivery outcomes: disk I/O error (injected fault)");
	}
	for (size_t i = 0; i < n; i++)
		if (store_check_finish(outs[i].status, err) != 0)
			return TH_EINVAL;
	return 0;
}

bool store_batch_webhook_latest(event *const *evs, const enum store_put *results, size_t n,
                                size_t i, int64_t *latest, int64_t *count)
{
	if (results[i] != STORE_PUT_NEW)
		return false;
	const char *wh = evs[i]->webhook_id;
	*latest = evs[i]->received_at;
	*count = 1;
	for (size_t j = 0; j < n; j++) {
		if (j == i || results[j] != STORE_PUT_NEW || !str_eq(evs[j]->webhook_id, wh))
			continue;
		if (j < i)
			return false; /* an earlier event of this webhook speaks for it */
		++*count;
		if (evs[j]->received_at > *latest)
			*latest = evs[j]->received_at;
	}
	return true;
}

/* The rollup hour of an event: hours since the epoch (UTC). */
static int64_t rollup_hour(const event *ev)
{
	return ev->received_at / 3600000;
}

static bool same_rollup_key(const event *a, const event *b)
{
	return rollup_hour(a) == rollup_hour(b) && str_eq(a->webhook_id, b->webhook_id) &&
	       str_eq(a->action_type ? a->action_type : "", b->action_type ? b->action_type : "");
}

bool store_batch_rollup_first(event *const *evs, const enum store_put *results, size_t n, size_t i,
                              int64_t *hour, int64_t *count)
{
	if (results[i] != STORE_PUT_NEW)
		return false;
	*hour = rollup_hour(evs[i]);
	*count = 1;
	for (size_t j = 0; j < n; j++) {
		if (j == i || results[j] != STORE_PUT_NEW || !same_rollup_key(evs[i], evs[j]))
			continue;
		if (j < i)
			return false; /* an earlier event of this key speaks for it */
		(*count)++;
	}
	return true;
}

/* The backend's delivery_finish_many sees only checked outcomes, at least
 * one, and a counter to add to. */
int store_delivery_finish_many(store *st, const delivery_outcome *outs, size_t n, size_t *changed,
                               th_error *err)
{
	size_t c = 0;
	int ret = check_outcomes(outs, n, changed, err);
	if (ret == 0 && n > 0)
		ret = st->ops->delivery_finish_many(st, outs, n, &c, err);
	if (ret == 0 && changed)
		*changed = c;
	return ret;
}

int store_delivery_recover(store *st, size_t *recovered, th_error *err)
{
	size_t made = 0;
	int ret = st->ops->delivery_recover(st, &made, err);
	if (recovered)
		*recovered = ret == 0 ? made : 0;
	return ret;
}

int store_event_replay(store *st, const char *event_id, size_t *out_n, th_error *err)
{
	size_t made = 0;
	int ret = st->ops->event_replay(st, event_id, &made, err);
	if (out_n)
		*out_n = ret == 0 ? made : 0;
	return ret;
}

int store_delivery_finish(store *st, const char *id, enum delivery_status status,
                          int64_t next_attempt_at, const char *last_error, th_error *err)
{
	delivery_outcome o = {id, status, next_attempt_at, last_error, -1, 0};
	size_t changed = 0;
	int ret = store_delivery_finish_many(st, &o, 1, &changed, err);
	if (ret == 0 && changed == 0)
		ret = store_not_found(err, "delivery", id);
	return ret;
}

/* 0 when @status (a delivery_list filter, NULL: none) names a status. */
int store_check_status_filter(const char *status, th_error *err)
{
	enum delivery_status ds;
	if (status && delivery_status_parse(status, &ds) != 0)
		return th_err(
		    err, TH_EINVAL,
		    "unknown delivery status \"%.32s\" (pending, running, done, failed, dead)",
		    status);
	return 0;
}

/* Empty the result of event_rollup, then 0, or TH_EINVAL for buckets of
 * less than an hour. */
int store_check_rollup(int64_t bucket_hours, event_rollup_row **out, size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	if (bucket_hours < 1)
		return th_err(err, TH_EINVAL, "event rollup: buckets of at least 1 hour");
	return 0;
}

/* TH_EEXISTS naming which uniqueness rule @w hit. */
int store_webhook_exists(const webhook *w, bool model_token, th_error *err)
{
	if (model_token)
		return th_err(err, TH_EEXISTS,
		              "a webhook for model %s with this token already exists",
		              w->id_model ? w->id_model : "?");
	return th_err(err, TH_EEXISTS, "a webhook with id %s already exists", w->id ? w->id : "?");
}

/* TH_ESTORE when the database's schema @version is newer than @latest, the
 * newest this build knows (an older trellohook on a migrated database). */
int store_check_schema_version(int version, int latest, th_error *err)
{
	if (version <= latest)
		return 0;
	return th_err(err, TH_ESTORE,
	              "the database schema is version %d, newer than this trellohook knows (%d); "
	              "upgrade trellohook",
	              version, latest);
}

/* TH_ENOTFOUND "no @what with id @id". */
int store_not_found(th_error *err, const char *what, const char *id)
{
	return th_err(err, TH_ENOTFOUND, "no %s with id %s", what, id ? id : "(null)");
}

/* A webhook update that changed no row: the row is gone, or another writer
 * marked it removing after this one read it (the update never undoes that). */
int store_webhook_gone(th_error *err, const char *id)
{
	return th_err(err, TH_ENOTFOUND,
	              "no webhook with id %s, or it is being removed (a removal is not undone)",
	              id ? id : "(null)");
}

/* "no @what with id @id" into @out (@size bytes, truncated); returns @out. */
const char *store_not_found_msg(char *out, size_t size, const char *what, const char *id)
{
	str_printf(out, size, "no %s with id %s", what, id ? id : "(null)");
	return out;
}

/* TH_ENOTFOUND for a DELETE that found nothing; the key only when @show_key. */
int store_delete_not_found(th_error *err, const char *what, const char *key, bool show_key)
{
	if (show_key)
		return store_not_found(err, what, key);
	return th_err(err, TH_ENOTFOUND, "no such %s", what);
}

/* TH_EINVAL: delivery @id is running and cannot be retried yet. */
int store_delivery_running(th_error *err, const char *id)
{
	return th_err(err, TH_EINVAL, "delivery %s is running; retry it once it has finished", id);
}

/* Fill missing ids and times of the storable events of @evs; @filled[i]
 * records what was filled (bit 1 id, bit 2 received_at) for
 * store_events_unfill(). The ids are the events' (heap) strings. */
int store_events_fill(event **evs, size_t n, int64_t now, unsigned char *filled, th_error *err)
{
	/* ids in blocks, each block from one draw of random bytes */
	char ids[64][ID_LEN + 1];
	size_t next = TH_ARRAY_LEN(ids), made = TH_ARRAY_LEN(ids);
	for (size_t i = 0; i < n; i++) {
		event *ev = evs[i];
		if (!store_event_storable(ev))
			continue; /* stays STORE_PUT_FAILED; the others are still stored */
		if (!ev->id) {
			if (next == made) {
				size_t want = 0; /* the ids still missing, up to a block */
				for (size_t j = i; j < n && want < TH_ARRAY_LEN(ids); j++)
					want += store_event_storable(evs[j]) && !evs[j]->id;
				if (rand_ids_timed(ids, want, now) != 0)
					return th_err(err, TH_ENOMEM, "cannot make an event id");
				next = 0, made = want;
			}
			if (!(ev->id = str_dup(ids[next++])))
				return th_err(err, TH_ENOMEM, "cannot make an event id");
			filled[i] |= 1;
		}
		if (ev->received_at == 0) {
			ev->received_at = now;
			filled[i] |= 2;
		}
	}
	return 0;
}

/* An event that was not stored keeps the id/time it came with. */
void store_events_unfill(event **evs, size_t n, const enum store_put *results,
                         const unsigned char *filled)
{
	for (size_t i = 0; filled && i < n; i++) {
		if (results[i] == STORE_PUT_NEW || !evs[i])
			continue;
		if (filled[i] & 1) {
			free(evs[i]->id);
			evs[i]->id = NULL;
		}
		if (filled[i] & 2)
			evs[i]->received_at = 0;
	}
}

/* Free what a store's event reader filled and zero @ev. NULL fields are fine. */
void store_event_clear(event *ev)
{
	TH_FREE_ALL(ev->id, ev->webhook_id, ev->action_id, ev->action_type, ev->action_date,
	            ev->model_id, ev->board_id, ev->board_name, ev->list_id, ev->list_name,
	            ev->card_id, ev->card_name, ev->member, ev->member_id, ev->summary,
	            ev->payload);
	if (ev->json)
		json_decref(ev->json);
	memset(ev, 0, sizeof *ev);
}

/* Append @s to @b as a LIKE pattern that matches it literally ('\' escapes). */
int store_like_pattern(buf *b, const char *s)
{
	int rc = buf_putc(b, '%');
	for (; rc == 0 && *s; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			rc = buf_putc(b, '\\');
		if (rc == 0)
			rc = buf_putc(b, *s);
	}
	if (rc == 0)
		rc = buf_putc(b, '%');
	return rc;
}

/* Call @fn with a fresh delivery id for each handler of @hs matching @ev. */
int store_each_match(const event *ev, const handler *hs, size_t nh, store_match_fn fn, void *ctx,
                     th_error *err)
{
	int ret = 0;
	for (size_t i = 0; i < nh && ret == 0; i++) {
		if (!handler_matches(&hs[i], ev))
			continue;
		char id[ID_LEN + 1];
		if (rand_id_timed(id, time_now_ms()) != 0)
			ret = th_err(err, TH_EIO, "no randomness for a delivery id");
		else
			ret = fn(ctx, &hs[i], id, err);
	}
	return ret;
}

/* ---- which process claims (delivery_recover) --------------------------------------- */

/* The start time of process @pid in clock ticks since boot (field 22 of
 * /proc/PID/stat), or 0 when unknown (no /proc: only the pid is compared). */
static unsigned long long proc_start(long pid)
{
	char path[64], line[1024];
	str_printf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(line, 1, sizeof line - 1, f);
	fclose(f);
	line[n] = '\0';
	const char *p = strrchr(line, ')'); /* the command name may hold spaces */
	if (!p)
		return 0;
	/* after ")": state is field 3; starttime is field 22 */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return 0;
	return strtoull(p + 1, NULL, 10);
}

/* This host's name (gethostname), or "localhost". */
static void host_name(char *out, size_t size)
{
	if (gethostname(out, size) != 0 || !*out)
		str_copy(out, size, "localhost");
	out[size - 1] = '\0';
	out[strcspn(out, ":")] = '\0'; /* ':' separates the fields */
}

void store_instance_init(store *st)
{
	char host[96];
	host_name(host, sizeof host);
	long pid = (long)getpid();
	str_printf(st->instance, sizeof st->instance, "%s:%ld:%llu", host, pid, proc_start(pid));
}

bool store_instance_dead(const store *st, const char *claimed_by)
{
	char host[96];
	host_name(host, sizeof host);
	size_t hl = strlen(host);
	if (!claimed_by || strncmp(claimed_by, host, hl) != 0 || claimed_by[hl] != ':')
		return false; /* another host's (or none): its own start-up recovers it */
	char *end = NULL;
	errno = 0;
	long pid = strtol(claimed_by + hl + 1, &end, 10);
	if (errno || pid <= 0 || !end || *end != ':')
		return false;
	unsigned long long start = strtoull(end + 1, NULL, 10);
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return true; /* no such process */
	/* alive: the same process only when its start time matches (a pid reused
	 * after a restart, e.g. pid 1 in a container, is another process) */
	unsigned long long now = proc_start(pid);
	return start && now && start != now;
}
