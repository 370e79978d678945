/* SPDX-License-Identifier: MIT */
/*
 * http — a small HTTP server on libmicrohttpd, shared by `trellohook serve`
 * and `trello-mock`.
 *
 * Handlers receive a parsed request (method, path, decoded query arguments,
 * headers, the whole body) and fill a response, so they can be unit-tested
 * without sockets: build an http_request by hand and call the handler.
 *
 * Limits enforced here, before any handler runs, each answered at once:
 *   - framing, checked over every header however many there are: conflicting
 *     Content-Length headers, Content-Length together with Transfer-Encoding,
 *     or stacked codings ("chunked, chunked") give 400; a coding other than
 *     chunked (any case) gives 501;
 *   - a control byte (0x00-0x1f, 0x7f) in the path, also percent-encoded
 *     (/callbacks/ID%00junk), a NUL in the query, or a control byte other
 *     than tab in a header name or value give 400;
 *   - more than HTTP_MAX_ARGS query arguments give 414, more than
 *     HTTP_MAX_HEADERS headers 431; headers beyond the per-connection memory
 *     limit get 431 from MHD itself;
 *   - at most `max_body` bytes of body (413 beyond, without buffering the
 *     rest), and at most `body_memory` bytes of bodies held at once across all
 *     connections: a body that would go beyond gets 503 with Retry-After
 *     before it is read (a chunked one, whose size is unknown up front, as
 *     soon as it crosses the line);
 *   - connection deadlines, limits and a reserve against idle floods: see
 *     guard.h (headers within `header_timeout_s`, bodies within
 *     `body_timeout_s` plus their size at a minimum rate, `per_address`
 *     connections per client address, the oldest idle ones closed near
 *     `max_connections`); kept-alive connections idle for `timeout_s` close.
 *
 * The client address (http_request.remote) is the peer's, or, when the peer
 * is one of `trusted_proxies`, the nearest address in X-Forwarded-For that is
 * not a trusted proxy (net_client_addr()).
 *
 * A handler may answer later from another thread (group commit): it calls
 * http_defer(), returns HTTP_DEFERRED, and whoever finishes the work calls
 * http_deferred_finish() or http_deferred_answer() exactly once.
 */
#ifndef TH_HTTP_H
#define TH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"
#include "util/util.h"

#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_ARGS 64
#define HTTP_MAX_RESPONSE_HEADERS 16

typedef struct http_pair {
	const char *name;
	const char *value;
} http_pair;

/* A request as handlers see it. Every string is borrowed and stays valid until
 * the response is sent (also for deferred responses). */
typedef struct http_request {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* decoded path without the query, e.g. "/callbacks/abc" */
	const char *remote; /* client address as text (see net_client_addr()), or "" */
	http_pair headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	http_pair args[HTTP_MAX_ARGS]; /* decoded query arguments, in order */
	size_t nargs;
	const char *body; /* NUL-terminated for convenience; may contain NULs */
	size_t body_len;
	char request_id[24]; /* also echoed as X-Request-Id */
	void *internal;      /* the server's per-request state; NULL in unit tests */
} http_request;

typedef struct http_response {
	int status;
	buf body;
	char *header_names[HTTP_MAX_RESPONSE_HEADERS];
	char *header_values[HTTP_MAX_RESPONSE_HEADERS];
	size_t nheaders;
} http_response;

enum { HTTP_DONE = 0, HTTP_DEFERRED = 1 };

/* Fill @res; return HTTP_DONE, or HTTP_DEFERRED after http_defer(). */
typedef int (*http_handler_fn)(void *ctx, http_request *req, http_response *res);

/* Case-insensitive header lookup; the first match, or NULL. */
const char *http_header(const http_request *req, const char *name);
/* How many headers named @name the request carries. */
size_t http_header_count(const http_request *req, const char *name);
/* Query argument lookup (exact name), or NULL. */
const char *http_arg(const http_request *req, const char *name);
/* The value of the first of the @n pairs named @name, or NULL. */
const char *http_pair_get(const http_pair *pairs, size_t n, const char *name);

void http_response_init(http_response *res);
void http_response_clear(http_response *res);
/* Add (or replace) a response header. Both strings are copied. */
int http_response_header(http_response *res, const char *name, const char *value);
const char *http_response_get_header(const http_response *res, const char *name);
/* Status + text/plain body from a format. */
int http_response_text(http_response *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Status + body with the given content type (@data copied). */
int http_response_body(http_response *res, int status, const char *content_type, const void *data,
                       size_t len);

/* ---- deferred answers ------------------------------------------------------ */

typedef struct http_deferred http_deferred;
/* Take over answering @req later. Only valid inside a handler of a running
 * server; the handler must then return HTTP_DEFERRED. */
http_deferred *http_defer(http_request *req);
/* Send @res (moved: the caller's struct is left empty) as the answer. Call
 * exactly once per http_defer() (or http_deferred_answer), from any thread. */
void http_deferred_finish(http_deferred *d, http_response *res);
/* Makes a deferred answer: fills @res — or, with @res NULL, only frees @arg:
 * the request ended before its answer could be sent (the server stopped). */
typedef void (*http_answer_fn)(void *arg, http_response *res);
/* Instead of http_deferred_finish: the answer is made by @answer(@arg, ...)
 * on the server thread that serves the connection, just before it is sent,
 * and is called exactly once. For a finisher on another thread (the group
 * commit's writer) whose request's memory is best freed where it was
 * allocated. */
void http_deferred_answer(http_deferred *d, http_answer_fn answer, void *arg);

/* ---- streams ----------------------------------------------------------------

 * A handler may answer with a body of unknown length written over time
 * (Server-Sent Events): it calls http_stream_start(), fills @res with the
 * status, headers and the first bytes of the body as usual, and returns
 * HTTP_DONE. The body then goes on with what http_stream_write() adds, from
 * any thread, until http_stream_end(), the client leaving, or the server
 * stopping (http_server_quiesce ends every stream, so none holds shutdown).
 * No thread waits on a stream: the connection is parked while there is
 * nothing to send. A client gone while parked is noticed at the next write,
 * so owners write a heartbeat now and then. */
typedef struct http_stream http_stream;
/* The stream @req will answer with (one reference, the caller's; release it
 * with http_stream_release()), or NULL: not in a running server, the server
 * is stopping, or out of memory (answer normally then). */
http_stream *http_stream_start(http_request *req);
/* Queue @data; 0, or TH_EUNAVAIL when the stream has ended (also when the
 * client fell 256 KiB behind: it is dropped). Thread-safe. */
int http_stream_write(http_stream *s, const void *data, size_t len);
/* False once the stream ended or its client left. */
bool http_stream_alive(http_stream *s);
/* End the body after what is queued. */
void http_stream_end(http_stream *s);
/* Drop the caller's reference. NULL-safe. */
void http_stream_release(http_stream *s);

/* ---- the server -------------------------------------------------------------- */

typedef struct http_server_opts {
	const char *listen;          /* "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one */
	size_t max_body;             /* largest body accepted, bytes */
	unsigned threads;            /* worker threads (0: one per CPU) */
	bool thread_per_connection;  /* handlers may block (trello-mock) */
	unsigned max_connections;    /* 0: 1024 */
	unsigned timeout_s;          /* idle connection timeout, 0: 30 */
	size_t conn_memory;          /* per-connection memory for headers, 0: 32 KiB */
	size_t body_memory;          /* bodies held at once, all connections; 0: 32 MiB */
	unsigned per_address;        /* connections per client address, 0: 128 */
	unsigned header_timeout_s;   /* request head complete within, 0: 10 */
	unsigned body_timeout_s;     /* body within this plus its size at 16 KiB/s, 0: 10 */
	const char *trusted_proxies; /* comma-separated addresses/CIDRs, NULL or "": none */
	http_handler_fn handler;
	void *ctx;
	const char *name; /* log component, e.g. "server" */
} http_server_opts;

typedef struct http_server http_server;

int http_server_start(http_server **out, const http_server_opts *opts, th_error *err);
/* The port actually bound (useful with port 0). */
uint16_t http_server_port(const http_server *srv);
/* "http://HOST:PORT" for the bound address (IPv6 hosts in brackets). */
const char *http_server_url(const http_server *srv);
/* Stop accepting new connections (in-flight requests carry on). */
void http_server_quiesce(http_server *srv);
/* Wait until no deferred answer is outstanding, at most @timeout_ms (then
 * up to 0.5 s more, within @timeout_ms, for ended streams to send their end). */
bool http_server_drain(http_server *srv, int64_t timeout_ms);
/* Stop and free. NULL-safe. */
void http_server_free(http_server *srv);

#endif
