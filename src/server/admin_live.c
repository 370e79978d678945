/* SPDX-License-Identifier: MIT */
/*
 * admin_live.c — the live view: GET /admin/events/stream (Server-Sent
 * Events, see server.h). Each stream is an http_stream (http.h) owned here
 * with the session that opened it; the receive path calls
 * admin_live_publish() after each commit (through a hook the composition
 * root sets on the receiver), which renders the event's table row once and
 * queues it on every open stream. A thread writes a comment line every
 * heartbeat so proxies keep the connection open and a client that left is
 * noticed (http.h: a parked connection sees a departure only when written).
 * A stream lives no longer than its session: a sign-out in this process ends
 * the session's streams at once (admin_live_end_session, through
 * svc_ctx.on_session_end), and before each heartbeat the thread asks the
 * store whether every stream's session is still signed in (signed out
 * elsewhere, expired, its user removed), ending the streams of those that
 * are not.
 *
 * The wire format, one message per new event:
 *   event: row
 *   data: <tr>…</tr>          (the events table's row, escaped as on the
 *                              page, on one line)
 * and ": heartbeat" comment lines. Nothing is read from the client; the
 * stream changes nothing (a GET without side effects beyond the session's
 * sliding expiry, as every page), so it needs no CSRF token.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "server/admin.h"
#include "server/server.h"
#include "service/service.h"
#include "util/log.h"
#include "util/wait.h"

#define LIVE_ROW_MAX ((size_t)64 << 10) /* one pushed row, at most */

struct live_entry {
	http_stream *s;
	char session[65]; /* SHA-256 hex of the session id that opened it */
};

struct admin_live {
	admin_live_opts o;
	wait_thread hb;       /* the heartbeat; hb.mu guards the streams, hb.stop: stopping */
	struct live_entry *v; /* o.total entries */
	size_t n;
	atomic_size_t open; /* == n, read without the lock by publish */
};

/* Drop streams that ended or whose client left. mu held. */
static void prune_locked(admin_live *l)
{
	size_t k = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (http_stream_alive(l->v[i].s))
			l->v[k++] = l->v[i];
		else
			http_stream_release(l->v[i].s);
	}
	l->n = k;
	atomic_store(&l->open, k);
}

/* End the streams of session @id_hash. mu held. */
static void end_session_locked(admin_live *l, const char *id_hash)
{
	for (size_t i = 0; i < l->n; i++)
		if (str_eq(l->v[i].session, id_hash))
			http_stream_end(l->v[i].s);
	prune_locked(l);
}

/* Before a heartbeat: end the streams whose session is no longer signed in.
 * The store is asked with mu released (a publish must not wait on it); a
 * session the store cannot answer for keeps its streams until the next
 * heartbeat. mu held on entry and on return. */
static void check_sessions_locked(admin_live *l)
{
	if (!l->o.sc || l->n == 0)
		return;
	size_t n = l->n;
	char(*ids)[65] = calloc(n, sizeof *ids);
	if (!ids)
		return;
	for (size_t i = 0; i < n; i++)
		memcpy(ids[i], l->v[i].session, sizeof ids[i]);
	pthread_mutex_unlock(&l->hb.mu);
	for (size_t i = 0; i < n; i++) {
		th_error err = {0, {0}};
		bool seen = false; /* each session once */
		for (size_t j = 0; j < i && !seen; j++)
			seen = str_eq(ids[j], ids[i]);
		int alive = seen ? 1 : svc_session_alive(l->o.sc, ids[i], &err);
		if (alive < 0)
			log_warn("admin", "the live view could not check a session: %s", err.msg);
		if (alive != 0)
			ids[i][0] = '\0';
	}
	pthread_mutex_lock(&l->hb.mu);
	for (size_t i = 0; i < n; i++)
		if (ids[i][0])
			end_session_locked(l, ids[i]);
	free(ids);
}

/* Write @data to every open stream. mu held. */
static void broadcast_locked(admin_live *l, const char *data, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		(void)http_stream_write(l->v[i].s, data, len); /* an ended one goes at the prune */
	prune_locked(l);
}

static void *heartbeat_main(void *arg)
{
	admin_live *l = arg;
	while (!wait_thread_sleep(&l->hb, l->o.heartbeat_ms, NULL, NULL)) {
		static const char hb[] = ": heartbeat\n\n";
		pthread_mutex_lock(&l->hb.mu);
		check_sessions_locked(l);
		if (!l->hb.stop)
			broadcast_locked(l, hb, sizeof hb - 1);
		pthread_mutex_unlock(&l->hb.mu);
	}
	return NULL;
}

int admin_live_new(admin_live **out, const admin_live_opts *o, th_error *err)
{
	*out = NULL;
	admin_live *l = calloc(1, sizeof *l);
	if (!l)
		return th_err(err, TH_ENOMEM, "out of memory");
	l->o = *o;
	if (!l->o.per_session)
		l->o.per_session = ADMIN_LIVE_PER_SESSION;
	if (!l->o.total)
		l->o.total = ADMIN_LIVE_TOTAL;
	if (l->o.heartbeat_ms <= 0)
		l->o.heartbeat_ms = ADMIN_LIVE_HEARTBEAT_MS;
	atomic_init(&l->open, 0);
	if (!(l->v = calloc(l->o.total, sizeof *l->v))) {
		free(l);
		return th_err(err, TH_ENOMEM, "out of memory");
	}
	if (wait_thread_start(&l->hb, heartbeat_main, l, "th-heartbeat")) {
		free(l->v);
		free(l);
		return th_err(err, TH_EIO, "cannot start the live view's heartbeat thread");
	}
	*out = l;
	return 0;
}

void admin_live_free(admin_live *l)
{
	if (!l)
		return;
	wait_thread_stop(&l->hb); /* every caller of the live view is gone */
	for (size_t i = 0; i < l->n; i++) {
		http_stream_end(l->v[i].s);
		http_stream_release(l->v[i].s);
	}
	free(l->v);
	free(l);
}

void admin_live_end_session(admin_live *l, const char *id_hash)
{
	if (!l || !id_hash || !id_hash[0])
		return;
	pthread_mutex_lock(&l->hb.mu);
	end_session_locked(l, id_hash);
	pthread_mutex_unlock(&l->hb.mu);
}

size_t admin_live_open(admin_live *l)
{
	return l ? atomic_load(&l->open) : 0;
}

void admin_live_publish(admin_live *l, const event *ev)
{
	if (!l || atomic_load(&l->open) == 0)
		return; /* nobody watching: no rendering on the receive path */
	buf row, msg;
	buf_init(&row, LIVE_ROW_MAX);
	admin_event_row(&row, ev);
	buf_init(&msg, LIVE_ROW_MAX + 64);
	buf_puts(&msg, "event: row\ndata: ");
	/* one data line: the row's newlines are whitespace between tags or inside
	 * escaped text, where a space reads the same */
	for (size_t i = 0; i < row.len; i++)
		buf_putc(&msg, row.data[i] == '\n' || row.data[i] == '\r' ? ' ' : row.data[i]);
	buf_puts(&msg, "\n\n");
	if (buf_status(&row) || buf_status(&msg)) {
		log_warn("admin", "the live view skipped event %s: its row could not be built",
		         ev->id ? ev->id : "?");
	} else {
		pthread_mutex_lock(&l->hb.mu);
		broadcast_locked(l, msg.data, msg.len);
		pthread_mutex_unlock(&l->hb.mu);
	}
	buf_free(&row);
	buf_free(&msg);
}

static int refuse(http_response *res, int status, const char *retry_after, const char *msg)
{
	http_response_text(res, status, "%s\n", msg);
	if (retry_after)
		http_response_header(res, "Retry-After", retry_after);
	admin_security_headers(res);
	return HTTP_DONE;
}

int server_events_stream(const server_ctx *s, http_request *req, http_response *res)
{
	if (!str_eq(req->method, "GET")) {
		http_response_header(res, "Allow", "GET");
		return refuse(res, 405, NULL, "method not allowed: the live view takes GET");
	}
	char session[65];
	if (!admin_session_check(s->svc, req, session))
		return refuse(res, 401, NULL,
		              "not signed in: open /admin/login, then the page again "
		              "(the live view needs an admin session)");
	admin_live *l = s->live;
	if (!l)
		return refuse(res, 503, NULL, "the live view is not available in this process");
	pthread_mutex_lock(&l->hb.mu);
	prune_locked(l);
	size_t mine = 0;
	for (size_t i = 0; i < l->n; i++)
		mine += str_eq(l->v[i].session, session);
	int status = 0;
	char msg[200];
	if (l->hb.stop) {
		status = 503;
		str_copy(msg, sizeof msg, "the server is stopping; reload the page later");
	} else if (mine >= l->o.per_session) {
		status = 429;
		str_printf(msg, sizeof msg,
		           "too many live views open in this session (at most %u): close a tab "
		           "or reload the page to see new events",
		           l->o.per_session);
	} else if (l->n >= l->o.total) {
		status = 503;
		str_printf(msg, sizeof msg,
		           "too many live views open on this server (at most %u); reload the "
		           "page to see new events, or try again later",
		           l->o.total);
	}
	http_stream *st = status ? NULL : http_stream_start(req);
	if (!status && !st) {
		status = 503;
		str_copy(msg, sizeof msg,
		         "the server is stopping or out of memory; try again later");
	}
	if (status) {
		pthread_mutex_unlock(&l->hb.mu);
		log_info("admin", "a live view was refused (%d): %s", status, msg);
		return refuse(res, status, "30", msg);
	}
	l->v[l->n].s = st;
	memcpy(l->v[l->n].session, session, sizeof session);
	l->n++;
	atomic_store(&l->open, l->n);
	pthread_mutex_unlock(&l->hb.mu);
	/* the first bytes: how long a browser waits before reconnecting, and a
	 * comment so the client sees the stream is open */
	static const char start[] = "retry: 5000\n: live view open\n\n";
	http_response_body(res, 200, "text/event-stream; charset=utf-8", start, sizeof start - 1);
	admin_security_headers(res);
	/* nginx and the like: pass it through, do not buffer */
	http_response_header(res, "X-Accel-Buffering", "no");
	return HTTP_DONE;
}
