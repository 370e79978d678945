/* SPDX-License-Identifier: MIT */
/*
 * guard — connection defence for http.c (internal to src/http/).
 *
 * libmicrohttpd only knows an idle timeout that every received byte resets,
 * so a client sending one header byte per second holds a connection forever,
 * and enough of them hold every connection. The guard keeps its own table of
 * open connections (MHD's connection notifications) with the phase each is
 * in, and enforces what MHD cannot:
 *   - the request headers must be complete within header_timeout of the
 *     connection opening (or of the previous answer on a kept-alive one),
 *     however slowly they trickle;
 *   - a body must arrive within body_timeout plus the time its size takes at
 *     min_rate bytes/s (so big bodies on slow links still make it, trickles
 *     do not), and never takes longer than body_max;
 *   - at most per_address connections from one client address (addresses of
 *     trusted proxies are exempt: every client behind them shares them);
 *   - a reserve: when the open connections come near max_connections, the
 *     oldest ones that have not sent a complete request head yet (idle or
 *     slow) are closed to make room, so a flood of idle sockets never keeps
 *     a real delivery out; a kept-alive connection idle after an answer
 *     goes only when no other is left (too-slow bodies go before it).
 * A connection is closed with shutdown(2) on its socket; MHD then sees the
 * end of the stream and cleans up as for any peer that went away. The table's
 * lock is held from the shutdown until MHD reports the connection closed, so
 * a descriptor number reused by a new connection is never shut down by
 * mistake. A reaper thread checks deadlines four times a second.
 *
 * Thread-safety: every function may be called from any MHD thread.
 */
#ifndef TH_HTTP_GUARD_H
#define TH_HTTP_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"

typedef struct http_guard http_guard;
typedef struct guard_slot guard_slot;

typedef struct guard_opts {
	unsigned max_connections;
	unsigned per_address;
	unsigned header_timeout_s;
	unsigned body_timeout_s;
	unsigned body_max_s;
	unsigned idle_timeout_s; /* a kept-alive connection waiting for its next request */
	size_t min_rate;         /* bytes/s a body must keep up beyond body_timeout */
	const net_cidr *proxies; /* exempt from per_address; borrowed for the guard's life */
	size_t nproxies;
	const char *name; /* log component */
} guard_opts;

/* What a connection is doing, as far as the guard cares. */
enum guard_phase {
	GUARD_IDLE,    /* open, no request line yet */
	GUARD_HEADERS, /* request line seen, headers not complete */
	GUARD_BODY,    /* headers complete, body arriving */
	GUARD_BUSY,    /* the request is complete: handler, deferred answer, sending */
};

int guard_start(http_guard **out, const guard_opts *o, th_error *err);
/* Stop the reaper and free the table. Call after MHD_stop_daemon(). */
void guard_free(http_guard *g);

/* MHD callbacks (cls is the guard). */
enum MHD_Result guard_accept(void *cls, const struct sockaddr *addr, socklen_t len);
void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);

/* The guard's slot of @c (NULL if it has none, e.g. MHD refused to track it). */
guard_slot *guard_slot_of(struct MHD_Connection *c);
/* The peer address of the slot as text ("" if unknown); valid while @c is open. */
const char *guard_peer(const guard_slot *s);
/* Phase changes, from http.c's callbacks. NULL-safe in @s. */
void guard_phase(http_guard *g, guard_slot *s, enum guard_phase phase);
/* @n more body bytes arrived on @s. */
void guard_body_bytes(http_guard *g, guard_slot *s, size_t n);

#endif
