/* SPDX-License-Identifier: MIT */
/* guard.c — see guard.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http/guard.h"
#include "util/log.h"
#include "util/wait.h"

struct guard_slot {
	struct guard_slot *prev, *next; /* the table, oldest connection first */
	int fd;
	enum guard_phase phase;
	bool closing;        /* shut down by the guard; MHD has not reported it closed yet */
	bool served;         /* answered a request already (kept alive) */
	int64_t since_us;    /* when the current phase began */
	int64_t deadline_us; /* headers (IDLE/HEADERS) must be complete by then */
	size_t body_bytes;   /* received so far in GUARD_BODY */
	char addr[NET_ADDR_LEN];
};

struct http_guard {
	wait_thread reaper; /* reaper.mu guards everything below */
	bool reaper_started;
	guard_slot *head, *tail;
	unsigned open, closing;
	guard_opts o;
	unsigned reserve; /* eviction starts above max_connections - reserve */
	/* counts since the last summary line */
	unsigned n_slow, n_evicted, n_refused;
	int64_t last_report_us;
};

static int64_t body_deadline(const http_guard *g, const guard_slot *s)
{
	int64_t grace = (int64_t)g->o.body_timeout_s * 1000000;
	int64_t earned = g->o.min_rate ? (int64_t)(s->body_bytes * 1000000.0 / g->o.min_rate) : 0;
	int64_t max = (int64_t)g->o.body_max_s * 1000000;
	int64_t d = grace + earned;
	return s->since_us + (d < max ? d : max);
}

/* Close @s (lock held). */
static void kill_slot(http_guard *g, guard_slot *s)
{
	if (s->closing)
		return;
	s->closing = true;
	g->closing++;
	if (shutdown(s->fd, SHUT_RDWR) && errno != ENOTCONN)
		log_debug(g->o.name, "shutdown of a connection failed: %s", strerror(errno));
}

/* The connection make_room closes next, or NULL (lock held). In this order:
 * the oldest without a complete request head (an idle flood, a trickled
 * head), except connections idle after an answer; then a body slower than
 * the minimum rate; only then the oldest of those idle kept-alive ones. A
 * client waiting between two requests (Trello's own, between deliveries)
 * goes last: closing it races with its next request, which then fails on
 * the client's side. Once its next request line is complete (GUARD_HEADERS)
 * it is judged like any other, so one answer buys no shelter for trickled
 * headers. */
static guard_slot *pick_victim(http_guard *g, const guard_slot *keep, int64_t now)
{
	guard_slot *fresh = NULL, *slow = NULL, *served = NULL;
	for (guard_slot *s = g->head; s; s = s->next) {
		if (s == keep || s->closing)
			continue;
		if (s->phase == GUARD_IDLE || s->phase == GUARD_HEADERS) {
			guard_slot **best = s->served && s->phase == GUARD_IDLE ? &served : &fresh;
			if (!*best || s->since_us < (*best)->since_us)
				*best = s;
		} else if (!slow && s->phase == GUARD_BODY && now - s->since_us > 1000000 &&
		           s->body_bytes * 1000000.0 / (double)(now - s->since_us) <
		               (double)g->o.min_rate) {
			slow = s;
		}
	}
	return fresh ? fresh : slow ? slow : served;
}

/* Close connections that have no complete request head (or send their body
 * too slowly), until the open ones are under the reserve line again (lock
 * held). @keep is the connection that just arrived. */
static void make_room(http_guard *g, const guard_slot *keep)
{
	unsigned line = g->o.max_connections - g->reserve;
	int64_t now = time_mono_us();
	while (g->open - g->closing > line) {
		guard_slot *victim = pick_victim(g, keep, now);
		if (!victim)
			return;
		kill_slot(g, victim);
		g->n_evicted++;
	}
}

static void report(http_guard *g, int64_t now)
{
	if (!(g->n_slow | g->n_evicted | g->n_refused) || now - g->last_report_us < 5000000)
		return;
	log_warn(g->o.name,
	         "connection defence: closed %u too slow (request head within %u s, bodies at "
	         "%zu bytes/s after %u s), %u idle to make room near the limit of %u; refused %u "
	         "over %u per address",
	         g->n_slow, g->o.header_timeout_s, g->o.min_rate, g->o.body_timeout_s, g->n_evicted,
	         g->o.max_connections, g->n_refused, g->o.per_address);
	g->n_slow = g->n_evicted = g->n_refused = 0;
	g->last_report_us = now;
}

static void *reaper_main(void *arg)
{
	http_guard *g = arg;
	while (!wait_thread_sleep(&g->reaper, 250, NULL, NULL)) {
		pthread_mutex_lock(&g->reaper.mu);
		int64_t now = time_mono_us();
		for (guard_slot *s = g->head; s; s = s->next) {
			if (s->closing)
				continue;
			bool late = false;
			if (s->phase == GUARD_IDLE || s->phase == GUARD_HEADERS)
				late = now > s->deadline_us;
			else if (s->phase == GUARD_BODY)
				late = now > body_deadline(g, s);
			if (late) {
				kill_slot(g, s);
				g->n_slow++;
			}
		}
		report(g, now);
		pthread_mutex_unlock(&g->reaper.mu);
	}
	return NULL;
}

int guard_start(http_guard **out, const guard_opts *o, th_error *err)
{
	*out = NULL;
	http_guard *g = calloc(1, sizeof *g);
	if (!g)
		return th_err(err, TH_ENOMEM, "out of memory");
	g->o = *o;
	g->reserve = g->o.max_connections / 16;
	if (g->reserve < 4)
		g->reserve = g->o.max_connections > 8 ? 4 : 0;
	int rc = wait_thread_start(&g->reaper, reaper_main, g, "th-reaper");
	if (rc) {
		guard_free(g);
		return th_err(err, TH_EIO, "cannot start the connection reaper thread: %s",
		              strerror(rc));
	}
	g->reaper_started = true;
	*out = g;
	return 0;
}

void guard_free(http_guard *g)
{
	if (!g)
		return;
	if (g->reaper_started)
		wait_thread_stop(&g->reaper);
	while (g->head) { /* MHD stopped: whatever is left was never reported closed */
		guard_slot *s = g->head;
		g->head = s->next;
		free(s);
	}
	free(g);
}

/* Is @addr under the per-address cap (no cap: always)? Its connections in the
 * table that the guard is not closing already are counted (lock held). */
static bool addr_has_room(const http_guard *g, const char *addr)
{
	if (!g->o.per_address || !addr[0] || net_cidrs_match(g->o.proxies, g->o.nproxies, addr))
		return true;
	unsigned same = 0;
	for (const guard_slot *s = g->head; s; s = s->next)
		same += !s->closing && str_eq(s->addr, addr);
	return same < g->o.per_address;
}

/* The early check, before MHD sets the connection up. Only a filter: MHD's
 * pool threads accept concurrently, and a connection accepted here joins the
 * table only at MHD_CONNECTION_NOTIFY_STARTED, so two accepts at once could
 * both see room for one; guard_notify() checks again, atomically with the
 * insertion, and closes what went over. */
enum MHD_Result guard_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	http_guard *g = cls;
	(void)len;
	if (!g->o.per_address)
		return MHD_YES;
	char text[NET_ADDR_LEN];
	net_format_addr(addr, text, sizeof text);
	pthread_mutex_lock(&g->reaper.mu);
	bool ok = addr_has_room(g, text);
	if (!ok)
		g->n_refused++;
	pthread_mutex_unlock(&g->reaper.mu);
	return ok ? MHD_YES : MHD_NO;
}

void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
	http_guard *g = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		guard_slot *s = calloc(1, sizeof *s);
		const union MHD_ConnectionInfo *fd =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ad =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (!s || !fd) {
			free(s); /* untracked: MHD's own timeout and limit still apply */
			return;
		}
		s->fd = fd->connect_fd;
		net_format_addr(ad ? ad->client_addr : NULL, s->addr, sizeof s->addr);
		s->phase = GUARD_IDLE;
		s->since_us = time_mono_us();
		s->deadline_us = s->since_us + (int64_t)g->o.header_timeout_s * 1000000;
		pthread_mutex_lock(&g->reaper.mu);
		/* the authoritative per-address check (see guard_accept) */
		bool over = !addr_has_room(g, s->addr);
		s->prev = g->tail;
		if (g->tail)
			g->tail->next = s;
		else
			g->head = s;
		g->tail = s;
		g->open++;
		if (over) {
			kill_slot(g, s); /* MHD reports it closed like any other */
			g->n_refused++;
		} else {
			make_room(g, s);
		}
		pthread_mutex_unlock(&g->reaper.mu);
		*socket_context = s;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		guard_slot *s = *socket_context;
		if (!s)
			return;
		pthread_mutex_lock(&g->reaper.mu);
		if (s->prev)
			s->prev->next = s->next;
		else
			g->head = s->next;
		if (s->next)
			s->next->prev = s->prev;
		else
			g->tail = s->prev;
		g->open--;
		if (s->closing)
			g->closing--;
		pthread_mutex_unlock(&g->reaper.mu);
		free(s);
		*socket_context = NULL;
	}
}

guard_slot *guard_slot_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return i ? i->socket_context : NULL;
}

const char *guard_peer(const guard_slot *s)
{
	return s ? s->addr : "";
}

void guard_phase(http_guard *g, guard_slot *s, enum guard_phase phase)
{
	if (!s)
		return;
	pthread_mutex_lock(&g->reaper.mu);
	int64_t now = time_mono_us();
	if (phase == GUARD_IDLE) {
		/* the previous request was answered: the next one gets the idle time
		 * plus the header time to arrive complete */
		s->served = true;
		s->deadline_us =
		    now + (int64_t)(g->o.idle_timeout_s + g->o.header_timeout_s) * 1000000;
	} else if (phase == GUARD_HEADERS && s->served) {
		/* a fresh connection keeps its deadline from the moment it opened */
		int64_t d = now + (int64_t)g->o.header_timeout_s * 1000000;
		if (d < s->deadline_us)
			s->deadline_us = d;
	} else if (phase == GUARD_BODY) {
		s->body_bytes = 0;
	}
	s->phase = phase;
	s->since_us = now;
	pthread_mutex_unlock(&g->reaper.mu);
}

void guard_body_bytes(http_guard *g, guard_slot *s, size_t n)
{
	if (!s)
		return;
	pthread_mutex_lock(&g->reaper.mu);
	s->body_bytes += n;
	pthread_mutex_unlock(&g->reaper.mu);
}
