/* SPDX-License-Identifier: MIT */
/*
 * claim_cost.c — what one delivery_claim costs with a backlog of rows that
 * cannot be claimed in front of the claimable ones. bench/claim.sh builds it
 * against a build's static library (this tree's and, for a before/after, an
 * earlier one's) and runs it; it uses the store's internal API, so it is not
 * part of the build.
 *
 * The store (a fresh one: DATABASE_URL-style @url) gets a handler "down"
 * with BACKLOG events of webhook wDown waiting in front, held back by MODE:
 *   failed    its first delivery failed, next attempt in an hour (a forward
 *             target that is down): the rest waits behind it;
 *   disabled  the handler is disabled;
 *   func      the handler's kind is func, which the claims do not run;
 * then 64 healthy webhooks with events for handler "ok" (exec), stored
 * after the backlog. CLAIMS claims of LIMIT rows each (the dispatcher's
 * size) follow, each claimed row recorded done before the next claim (not
 * timed). Prints the claim's CPU time (this thread: the SQLite work; on
 * PostgreSQL the server's work is in the wall time) and wall time per claim;
 * on PostgreSQL on this machine also the server's CPU time per claim (the
 * store's backends' time on CPU, /proc/PID/schedstat, around each claim).
 * On PostgreSQL the tables are analysed before the claims, as autovacuum
 * would have by then in a store that has run a while; with CLAIM_STALE=1 in
 * the environment they are not, and a first claim runs on the empty store
 * (the statistics and plans of a fresh store; run it on a server without
 * autovacuum to keep them so).
 *
 * usage: claim_cost URL BACKLOG [MODE [CLAIMS [LIMIT]]]
 *        (MODE failed, CLAIMS 200, LIMIT 8)
 * Not a test: nothing is asserted.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"
#include "store/store.h"
#include "util/util.h"

#define HEALTHY 64

static void die(const char *what, const th_error *err)
{
	fprintf(stderr, "claim_cost: %s: %s\n", what, err ? err->msg : "");
	exit(1);
}

static double now_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_webhook(store *st, const char *id)
{
	char model[64], tok[64];
	str_printf(model, sizeof model, "model-%s", id);
	str_printf(tok, sizeof tok, "tok-%s", id);
	webhook w = {0};
	w.id = (char *)id;
	w.id_model = model;
	w.callback_url = (char *)"https://example.test/callbacks/x";
	w.token = tok;
	w.state = WEBHOOK_ACTIVE;
	th_error err = {0};
	if (store_webhook_insert(st, &w, &err) != 0)
		die("webhook_insert", &err);
}

static void add_handler(store *st, const char *id, enum handler_kind kind, const char *on)
{
	handler h = {0};
	h.id = (char *)id;
	h.kind = kind;
	h.target = (char *)"/bin/true";
	h.on = (char *)on;
	h.enabled = true;
	th_error err = {0};
	if (store_handler_insert(st, &h, &err) != 0)
		die("handler_insert", &err);
}

/* @n events of @type: event i on webhook @whs[i % nwh]; batches of 500. */
static void put_events(store *st, char **whs, size_t nwh, const char *type, long n, long *serial)
{
	enum { BATCH = 500 };
	event evs[BATCH];
	event *p[BATCH];
	enum store_put r[BATCH];
	for (long done = 0; done < n;) {
		size_t k = n - done < BATCH ? (size_t)(n - done) : BATCH;
		memset(evs, 0, sizeof evs);
		for (size_t i = 0; i < k; i++) {
			char aid[32];
			str_printf(aid, sizeof aid, "a%ld", (*serial)++);
			evs[i].webhook_id = str_dup(whs[(size_t)(done + (long)i) % nwh]);
			evs[i].action_id = str_dup(aid);
			evs[i].action_type = str_dup(type);
			evs[i].payload = str_dup("{}");
			evs[i].payload_len = 2;
			p[i] = &evs[i];
		}
		th_error err = {0};
		if (store_events_put(st, p, k, r, &err) != 0)
			die("events_put", &err);
		for (size_t i = 0; i < k; i++)
			event_clear(&evs[i]);
		done += (long)k;
	}
}

/* The store's backends on a server of this machine: up to @max pids. */
static int backends(const char *url, int *pids, int max)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r =
	    PQexec(c, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
	              " AND pid <> pg_backend_pid() AND backend_type = 'client backend'");
	int n = 0;
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		for (int i = 0; i < PQntuples(r) && n < max; i++) {
			int64_t pid = 0;
			if (num_parse_i64(PQgetvalue(r, i, 0), 1, INT32_MAX, &pid) == 0)
				pids[n++] = (int)pid;
		}
	else
		fprintf(stderr, "claim_cost: backends: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return n;
}

/* Their time on CPU so far, in seconds (0 when /proc cannot tell). */
static double backends_cpu(const int *pids, int n)
{
	double t = 0;
	for (int i = 0; i < n; i++) {
		char path[64];
		unsigned long long ns = 0;
		str_printf(path, sizeof path, "/proc/%d/schedstat", pids[i]);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			t += (double)ns / 1e9;
		fclose(f);
	}
	return t;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
		        "usage: claim_cost URL BACKLOG [failed|disabled|func [CLAIMS [LIMIT]]]\n");
		return 2;
	}
	const char *url = argv[1], *mode = argc > 3 ? argv[3] : "failed";
	long backlog = strtol(argv[2], NULL, 10);
	long claims = argc > 4 ? strtol(argv[4], NULL, 10) : 200;
	size_t limit = argc > 5 ? (size_t)strtol(argv[5], NULL, 10) : 8;
	store *st = NULL;
	th_error err = {0};
	if (store_open(&st, url, &err) != 0)
		die("store_open", &err);
	const char *stale_env = getenv("CLAIM_STALE");
	bool stale = stale_env && str_eq(stale_env, "1");
	delivery *d = NULL;
	size_t n = 0;
	if (stale) { /* plans made with an empty table's statistics */
		if (store_delivery_claim(st, 1u << HANDLER_EXEC, 8, 60000, &d, &n, &err) != 0)
			die("claiming from the empty store", &err);
		delivery_list_free(d, n);
	}
	bool func = str_eq(mode, "func");
	add_handler(st, "down", func ? HANDLER_FUNC : HANDLER_FORWARD, "bk");
	add_handler(st, "ok", HANDLER_EXEC, "t");
	char *down[] = {(char *)"wDown"};
	add_webhook(st, down[0]);
	char *healthy[HEALTHY];
	for (int i = 0; i < HEALTHY; i++) {
		char id[16];
		str_printf(id, sizeof id, "wOk%02d", i);
		healthy[i] = str_dup(id);
		add_webhook(st, healthy[i]);
	}
	long serial = 0;
	put_events(st, down, 1, "bk", backlog, &serial);
	if (str_eq(mode, "failed")) {
		if (store_delivery_claim(st, 1u << HANDLER_FORWARD, 1, 60000, &d, &n, &err) != 0 ||
		    n != 1)
			die("claiming the head", &err);
		if (store_delivery_finish(st, d[0].id, DELIVERY_FAILED, time_now_ms() + 3600000,
		                          "HTTP 503", &err) != 0)
			die("failing the head", &err);
		delivery_list_free(d, n);
	} else if (str_eq(mode, "disabled")) {
		if (store_handler_set_enabled(st, "down", false, &err) != 0)
			die("disabling", &err);
	} else if (!func) {
		fprintf(stderr, "claim_cost: unknown mode %s\n", mode);
		return 2;
	}
	long per_hook = (claims * (long)limit) / HEALTHY + 2;
	put_events(st, healthy, HEALTHY, "t", per_hook * HEALTHY, &serial);

	int pids[64], npids = 0;
	if (!strncmp(url, "postgres", 8) && !stale) {
		PGconn *c = PQconnectdb(url);
		PGresult *r = PQexec(c, "ANALYZE deliveries; ANALYZE handlers");
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fprintf(stderr, "claim_cost: ANALYZE: %s", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
	}
	if (!strncmp(url, "postgres", 8))
		npids = backends(url, pids, 64);
	const unsigned kinds = (1u << HANDLER_EXEC) | (1u << HANDLER_FORWARD);
	double cpu = 0, wall = 0, server = 0;
	long got = 0;
	for (long c = 0; c < claims; c++) {
		double s0 = backends_cpu(pids, npids);
		double c0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
		if (store_delivery_claim(st, kinds, limit, 60000, &d, &n, &err) != 0)
			die("delivery_claim", &err);
		cpu += now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
		wall += now_s(CLOCK_MONOTONIC) - w0;
		server += backends_cpu(pids, npids) - s0;
		got += (long)n;
		delivery_outcome *o = calloc(n ? n : 1, sizeof *o);
		if (!o)
			die("out of memory", NULL);
		for (size_t i = 0; i < n; i++)
			o[i] = (delivery_outcome){d[i].id, DELIVERY_DONE, 0,
			                          NULL,    1000,          d[i].attempts};
		size_t changed = 0;
		if (n && store_delivery_finish_many(st, o, n, &changed, &err) != 0)
			die("delivery_finish_many", &err);
		free(o);
		delivery_list_free(d, n);
	}
	printf("%s backlog=%ld mode=%s claims=%ld limit=%zu claimed=%ld cpu_us_per_claim=%.1f "
	       "wall_us_per_claim=%.1f server_cpu_us_per_claim=%.1f\n",
	       store_name(st), backlog, mode, claims, limit, got, cpu * 1e6 / (double)claims,
	       wall * 1e6 / (double)claims, server * 1e6 / (double)claims);
	for (int i = 0; i < HEALTHY; i++)
		free(healthy[i]);
	store_close(st);
	return 0;
}
