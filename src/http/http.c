/* SPDX-License-Identifier: MIT */
/* http.c — see http.h. The libmicrohttpd glue: one conn_req per request. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/guard.h"
#include "http/http.h"
#include "http/stream_int.h"
#include "util/log.h"
#include "util/wait.h"

#define DEFAULT_BODY_MEMORY ((size_t)32 << 20)
#define MIN_BODY_RATE 16384 /* bytes/s a body keeps up once its grace time is over */

struct http_server {
	struct MHD_Daemon *daemon;
	int listen_fd;
	uint16_t port;
	char url[96];
	http_server_opts opts;
	char name[32];
	char id_prefix[9]; /* random per server start, so ids differ across restarts */
	atomic_uint_fast64_t next_id;
	pthread_mutex_t lock; /* guards `outstanding` and deferred state */
	pthread_cond_t idle;
	unsigned outstanding; /* deferred answers not yet finished */
	http_guard *guard;    /* connection deadlines, limits, reserve */
	net_cidr proxies[NET_MAX_PROXIES];
	size_t nproxies;
	size_t body_memory;     /* cap on `inflight` */
	atomic_size_t inflight; /* body bytes reserved by requests being read or handled */
	stream_set *streams;    /* streamed answers (stream.c) */
};

enum req_phase { PHASE_READING, PHASE_REJECTED, PHASE_DEFERRED, PHASE_READY };

#define STREAM_END_WAIT_MS 500 /* at stop, for ended streams to send their end */

/* Per-request state, MHD's "request closure". */
struct conn_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	http_request req;
	buf body;
	size_t discarded;  /* body bytes thrown away after the limit was hit */
	int reject_status; /* 400/413 decided while reading, 0 if none */
	const char *reject_msg;
	enum req_phase phase;
	bool suspended;
	bool finished;      /* deferred answer arrived */
	http_response res;  /* the answer once known */
	int64_t started_us; /* when the headers were complete, for the access log */
	bool started;       /* the access handler has seen this request */
	guard_slot *slot;   /* the connection's entry in the guard (NULL: untracked) */
	size_t reserved;    /* bytes of srv->inflight this request holds */
	int early_status;   /* decided from the request line (on_uri), 0 if none */
	const char *early_msg;
	char remote[NET_ADDR_LEN];
	http_stream *stream; /* the handler answers with a stream (until its response is made) */
	struct http_deferred *deferred; /* http_defer()'s, freed with the request */
	http_answer_fn answer;          /* makes the deferred answer here (NULL: res is it) */
	void *answer_arg;
};

struct http_deferred {
	struct conn_req *cr;
};

/* ---- request helpers --------------------------------------------------------- */

const char *http_header(const http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (str_case_eq(req->headers[i].name, name))
			return req->headers[i].value;
	return NULL;
}

size_t http_header_count(const http_request *req, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < req->nheaders; i++)
		n += str_case_eq(req->headers[i].name, name);
	return n;
}

const char *http_pair_get(const http_pair *pairs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (str_eq(pairs[i].name, name))
			return pairs[i].value;
	return NULL;
}

const char *http_arg(const http_request *req, const char *name)
{
	return http_pair_get(req->args, req->nargs, name);
}

void http_response_init(http_response *res)
{
	memset(res, 0, sizeof *res);
	res->status = 200;
	buf_init(&res->body, 0);
}

void http_response_clear(http_response *res)
{
	buf_free(&res->body);
	for (size_t i = 0; i < res->nheaders; i++) {
		free(res->header_names[i]);
		free(res->header_values[i]);
	}
	res->nheaders = 0;
}

int http_response_header(http_response *res, const char *name, const char *value)
{
	for (size_t i = 0; i < res->nheaders; i++)
		if (str_case_eq(res->header_names[i], name)) {
			char *v = strdup(value);
			if (!v)
				return TH_ENOMEM;
			free(res->header_values[i]);
			res->header_values[i] = v;
			return 0;
		}
	if (res->nheaders >= HTTP_MAX_RESPONSE_HEADERS)
		return TH_ETOOBIG;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return TH_ENOMEM;
	}
	res->header_names[res->nheaders] = n;
	res->header_values[res->nheaders] = v;
	res->nheaders++;
	return 0;
}

const char *http_response_get_header(const http_response *res, const char *name)
{
	for (size_t i = 0; i < res->nheaders; i++)
		if (str_case_eq(res->header_names[i], name))
			return res->header_values[i];
	return NULL;
}

int http_response_text(http_response *res, int status, const char *fmt, ...)
{
	res->status = status;
	buf_reset(&res->body);
	va_list ap;
	va_start(ap, fmt);
	int rc = buf_vprintf(&res->body, fmt, ap);
	va_end(ap);
	return rc ? rc : http_response_header(res, "Content-Type", "text/plain; charset=utf-8");
}

int http_response_body(http_response *res, int status, const char *content_type, const void *data,
                       size_t len)
{
	res->status = status;
	buf_reset(&res->body);
	int rc = buf_append(&res->body, data, len);
	return rc ? rc : http_response_header(res, "Content-Type", content_type);
}

/* ---- sending ------------------------------------------------------------------- */

/* @path for the log, with every segment that looks like a secret (a Trello
 * user token, 64 hex or ATTA..., or a 32-hex API key) masked: Trello's own
 * routes carry tokens in the path (/1/tokens/{token}/webhooks), and the mock
 * and test servers answer those routes. */
static void loggable_path(const char *path, char *out, size_t outsz)
{
	buf b;
	buf_init(&b, outsz - 1);
	const char *p = path;
	while (*p) {
		size_t n = strcspn(p, "/");
		char seg[96];
		if (n > 0 && n < sizeof seg) {
			memcpy(seg, p, n);
			seg[n] = '\0';
			if (str_is_trello_token(seg) || (n == 32 && str_is_hex(seg, 32))) {
				char masked[32];
				mask_secret(seg, masked, sizeof masked);
				buf_puts(&b, masked);
			} else {
				buf_append(&b, p, n);
			}
		} else {
			buf_append(&b, p, n);
		}
		p += n;
		if (*p == '/') {
			buf_putc(&b, '/');
			p++;
		}
	}
	str_copy(out, outsz, b.data ? b.data : "");
	buf_free(&b);
}

static enum MHD_Result send_response(struct conn_req *cr)
{
	http_response *res = &cr->res;
	if (buf_status(&res->body)) {
		/* a handler's page lost a piece (too big, out of memory): never send a
		 * partial page as if it were whole */
		log_error(cr->srv->name,
		          "%s: a response could not be built (error %d); answering 500",
		          cr->req.method, buf_status(&res->body));
		http_response_clear(res);
		buf_init(&res->body, 0);
		if (http_response_text(res, 500,
		                       "internal error: the response could not be built\n"))
			return MHD_NO;
	}
	size_t len = 0;
	char *data = buf_detach(&res->body, &len);
	if (!data)
		return MHD_NO;
	struct MHD_Response *r;
	if (cr->stream) {
		/* the body so far starts the stream (stream.c); the connection's
		 * reference goes to the response */
		r = stream_response(cr->stream, cr->conn, data, len);
		cr->stream = NULL;
		free(data);
	} else {
		r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(data);
	}
	if (!r)
		return MHD_NO;
	for (size_t i = 0; i < res->nheaders; i++)
		MHD_add_response_header(r, res->header_names[i], res->header_values[i]);
	MHD_add_response_header(r, "X-Request-Id", cr->req.request_id);
	enum MHD_Result ok = MHD_queue_response(cr->conn, (unsigned)res->status, r);
	MHD_destroy_response(r);
	/* the access log: one line per answered request, with its request id */
	double ms = (double)(time_mono_us() - cr->started_us) / 1e3;
	char path[512];
	loggable_path(cr->req.path, path, sizeof path);
	log_set_request_id(cr->req.request_id);
	log_info(cr->srv->name, "%s %s -> %d, %zu bytes in, %zu out, %.2f ms, from %s",
	         cr->req.method, path, res->status, cr->body.len, len, ms,
	         cr->remote[0] ? cr->remote : "?");
	log_set_request_id(NULL);
	return ok;
}

static enum MHD_Result reject(struct conn_req *cr, int status, const char *msg)
{
	http_response_init(&cr->res);
	http_response_text(&cr->res, status, "%s\n", msg);
	if (status == 503) /* a budget refusal: Trello retries later */
		http_response_header(&cr->res, "Retry-After", "5");
	cr->phase = PHASE_READY;
	guard_phase(cr->srv->guard, cr->slot, GUARD_BUSY);
	char path[512];
	loggable_path(cr->req.path, path, sizeof path);
	log_info(cr->srv->name, "%s %s -> %d (%s)", cr->req.method, path, status, msg);
	return send_response(cr);
}

/* ---- checking the request head ---------------------------------------------------- */

/* What one pass over every request header found (MHD hands us all of them;
 * handlers see the first HTTP_MAX_HEADERS). */
struct head_scan {
	http_request *req;
	size_t count;
	const char *cl; /* the first Content-Length */
	bool cl_conflict;
	const char *te; /* the first Transfer-Encoding */
	size_t te_count;
	bool bad_byte;
	const char *prev_end; /* just past the previous header's value */
	buf xff;              /* every X-Forwarded-For, joined with "," */
};

/* MHD ends each header string at the first NUL and says nothing, so
 * "X-Trello-Webhook: <valid>\0junk" reads as "<valid>". The strings live in
 * MHD's line buffer, where it replaced the line's CR LF (or bare LF) with one
 * or two NULs: anything else between one value's end and the next line's
 * name is bytes the header hid. For the last line only what follows the
 * first NUL can be checked (the head's end is not known). */
static bool hidden_bytes(const char *end, const char *next_line)
{
	if (!next_line)
		return end[1] != '\0';
	size_t gap = (size_t)(next_line - end);
	if (next_line < end || gap > 2)
		return true;
	for (size_t i = 0; i < gap; i++)
		if (end[i] != '\0')
			return true;
	return false;
}

/* Control bytes other than tab, or a NUL hidden inside (@len counts past it). */
static bool has_control(const char *s, size_t len, bool allow_tab)
{
	if (!s)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f)
			return true;
	}
	return false;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
	struct head_scan *hs = cls;
	http_request *req = hs->req;
	if (!value)
		value = "";
	hs->count++;
	if (has_control(key, key_size, false) || has_control(value, value_size, true) ||
	    strlen(key) != key_size || strlen(value) != value_size ||
	    (hs->prev_end && hidden_bytes(hs->prev_end, key)))
		hs->bad_byte = true;
	hs->prev_end = value_size ? value + value_size : NULL;
	if (str_case_eq(key, "Content-Length")) {
		if (hs->cl && !str_eq(hs->cl, value))
			hs->cl_conflict = true;
		if (!hs->cl)
			hs->cl = value;
	} else if (str_case_eq(key, "Transfer-Encoding")) {
		hs->te_count++;
		if (!hs->te)
			hs->te = value;
	} else if (str_case_eq(key, "X-Forwarded-For")) {
		if (hs->xff.len)
			buf_putc(&hs->xff, ',');
		buf_puts(&hs->xff, value);
	}
	if (req->nheaders < HTTP_MAX_HEADERS) {
		req->headers[req->nheaders].name = key;
		req->headers[req->nheaders].value = value;
		req->nheaders++;
	}
	return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	http_request *req = cls;
	if (req->nargs < HTTP_MAX_ARGS) {
		req->args[req->nargs].name = key;
		req->args[req->nargs].value = value ? value : "";
		req->nargs++;
	}
	return MHD_YES;
}

/* Whether every comma-separated coding in @v is "chunked" (any case). */
static bool only_chunked(const char *v)
{
	while (*v) {
		size_t n = strcspn(v, ","), b = 0, e = n;
		while (b < e && (v[b] == ' ' || v[b] == '\t'))
			b++;
		while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - b != 7 || strncasecmp(v + b, "chunked", 7) != 0)
			return false;
		v += n + (v[n] == ',');
	}
	return true;
}

/* Transfer-Encoding: only "chunked" alone (any case, RFC 9112 7) is read;
 * MHD would otherwise read a body of unknown length until the peer closes,
 * and the client would wait for an answer that never comes. */
static int check_coding(const struct head_scan *hs, const char **msg)
{
	if (!hs->te)
		return 0;
	bool stacked = hs->te_count > 1 || strchr(hs->te, ',');
	if (!only_chunked(hs->te) || !*hs->te) {
		*msg = "unsupported Transfer-Encoding: only chunked is accepted";
		return 501;
	}
	if (stacked) {
		*msg = "chunked given more than once: send Transfer-Encoding: chunked once";
		return 400;
	}
	return 0;
}

/* Take @n bytes of the body budget; false when that would cross it. */
static bool budget_take(struct conn_req *cr, size_t n)
{
	struct http_server *srv = cr->srv;
	size_t cur = atomic_load(&srv->inflight);
	do {
		if (cur + n > srv->body_memory || cur + n < cur)
			return false;
	} while (!atomic_compare_exchange_weak(&srv->inflight, &cur, cur + n));
	cr->reserved += n;
	return true;
}

/* Decide on the request head before reading the body. Returns a status or 0. */
static int check_head(struct conn_req *cr, struct head_scan *hs, const char **msg)
{
	if (cr->early_status) {
		*msg = cr->early_msg;
		return cr->early_status;
	}
	if (hs->bad_byte) {
		*msg = "control character (or NUL) in a header name or value";
		return 400;
	}
	if (hs->cl_conflict) {
		*msg = "conflicting Content-Length headers";
		return 400;
	}
	if (hs->cl && hs->te) {
		*msg = "both Content-Length and Transfer-Encoding given";
		return 400;
	}
	int st = check_coding(hs, msg);
	if (st)
		return st;
	if (hs->count > HTTP_MAX_HEADERS) {
		*msg = "too many header fields (at most 64)";
		return 431;
	}
	if (hs->cl) {
		int64_t n;
		if (num_parse_i64(hs->cl, 0, INT64_MAX, &n)) {
			*msg = "malformed Content-Length";
			return 400;
		}
		if ((uint64_t)n > cr->srv->opts.max_body) {
			*msg = "body larger than the configured maximum";
			return 413;
		}
		if (n > 0 && !budget_take(cr, (size_t)n)) {
			*msg = "too many request bodies in flight; retry later";
			return 503;
		}
		/* one allocation for the whole body instead of doubling from 64 bytes */
		if (n > 0 && buf_reserve(&cr->body, (size_t)n)) {
			*msg = "out of memory for the body; try again later";
			return 503;
		}
	}
	return 0;
}

/* The request line's target, raw as it came (before MHD decodes it): control
 * bytes in the path, also percent-encoded, a NUL in the query, and too many
 * arguments are refused. MHD stores every argument in the connection's small
 * memory pool before we see the request and gives no answer when that runs
 * out, so an over-long argument list is cut here, in MHD's own buffer, before
 * MHD parses it (the request gets 414 anyway). */
static void check_target(struct conn_req *cr, char *uri)
{
	char *q = strchr(uri, '?');
	size_t plen = q ? (size_t)(q - uri) : strlen(uri);
	for (size_t i = 0; i < plen; i++) {
		int c = (unsigned char)uri[i];
		if (c == '%' && i + 2 < plen && str_hex_digit(uri[i + 1]) >= 0 &&
		    str_hex_digit(uri[i + 2]) >= 0)
			c = str_hex_digit(uri[i + 1]) * 16 + str_hex_digit(uri[i + 2]);
		if (c < 0x20 || c == 0x7f) {
			cr->early_status = 400;
			cr->early_msg = "control character (or NUL) in the path";
			return;
		}
	}
	if (!q)
		return;
	size_t args = 1;
	for (char *p = q + 1; *p; p++) {
		args += *p == '&';
		if ((unsigned char)*p < 0x20 || *p == 0x7f ||
		    (p[0] == '%' && p[1] == '0' && p[2] == '0')) {
			cr->early_status = 400;
			cr->early_msg = "control character (or NUL) in the query";
		}
	}
	if (args > HTTP_MAX_ARGS) {
		cr->early_status = 414;
		cr->early_msg = "too many query arguments (at most 64)";
	}
	if (cr->early_status)
		q[1] = '\0'; /* MHD parses nothing of a refused query */
}

static void make_request_id(struct http_server *srv, char out[24])
{
	uint_fast64_t n = atomic_fetch_add(&srv->next_id, 1);
	str_printf(out, 24, "%s-%llx", srv->id_prefix, (unsigned long long)n);
}

/* MHD's URI log callback: the request line is complete, the headers are not.
 * The request's state starts here, so the target is seen raw. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_server *srv = cls;
	struct conn_req *cr = calloc(1, sizeof *cr);
	if (!cr)
		return NULL; /* on_request tries again */
	cr->srv = srv;
	cr->conn = conn;
	cr->slot = guard_slot_of(conn);
	guard_phase(srv->guard, cr->slot, GUARD_HEADERS);
	if (uri)
		check_target(cr, (char *)uri); /* MHD's writable line buffer, see above */
	return cr;
}

/* First access-handler call: the head is complete. Fill the request; return
 * a status to refuse it with (and @msg), or 0. */
static int begin_request(struct conn_req *cr, const char *url, const char *method, const char **msg)
{
	struct http_server *srv = cr->srv;
	cr->started = true;
	cr->req.method = method;
	cr->req.path = url;
	cr->req.internal = cr;
	cr->req.remote = cr->remote;
	cr->started_us = time_mono_us();
	buf_init(&cr->body, srv->opts.max_body + 1);
	make_request_id(srv, cr->req.request_id);
	struct head_scan hs = {.req = &cr->req};
	buf_init(&hs.xff, 8192);
	MHD_get_connection_values_n(cr->conn, MHD_HEADER_KIND, scan_header, &hs);
	if (hs.prev_end && hidden_bytes(hs.prev_end, NULL))
		hs.bad_byte = true;
	MHD_get_connection_values(cr->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &cr->req);
	char peer[NET_ADDR_LEN];
	if (cr->slot) {
		str_copy(peer, sizeof peer, guard_peer(cr->slot));
	} else {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(cr->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		net_format_addr(ci ? ci->client_addr : NULL, peer, sizeof peer);
	}
	/* an X-Forwarded-For too long to keep whole is not believed: its hops
	 * nearest to us would be the part missing */
	net_client_addr(srv->proxies, srv->nproxies, peer, buf_status(&hs.xff) ? NULL : hs.xff.data,
	                cr->remote, sizeof cr->remote);
	buf_free(&hs.xff);
	guard_phase(srv->guard, cr->slot, GUARD_BODY);
	return check_head(cr, &hs, msg);
}

/* ---- the access handler ------------------------------------------------------------ */

/* A deferred answer made by its finisher's function, on this thread; with
 * @res NULL the function only frees what it holds (no answer will be sent). */
static void make_answer(struct conn_req *cr, http_response *res)
{
	http_answer_fn answer = cr->answer;
	if (!answer)
		return;
	cr->answer = NULL;
	answer(cr->answer_arg, res);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	struct http_server *srv = cls;
	struct conn_req *cr = *req_cls;

	if (!cr) { /* on_uri could not allocate */
		cr = calloc(1, sizeof *cr);
		if (!cr)
			return MHD_NO;
		cr->srv = srv;
		cr->conn = conn;
		cr->slot = guard_slot_of(conn);
		*req_cls = cr;
	}
	if (!cr->started) {
		/* First call: headers are complete, no body yet. */
		const char *msg = NULL;
		int status = begin_request(cr, url, method, &msg);
		if (status) {
			cr->phase = PHASE_REJECTED;
			log_set_request_id(cr->req.request_id);
			enum MHD_Result r = reject(cr, status, msg);
			log_set_request_id(NULL);
			return r;
		}
		return MHD_YES;
	}

	if (cr->phase == PHASE_REJECTED || (cr->phase == PHASE_READY && *upload_data_size)) {
		*upload_data_size = 0; /* discard whatever still arrives */
		return MHD_YES;
	}

	if (*upload_data_size) {
		/* A body chunk. Past a limit keep nothing; past 4x close the connection. */
		size_t n = *upload_data_size;
		guard_body_bytes(srv->guard, cr->slot, n);
		if (!cr->reject_status && cr->body.len + n > srv->opts.max_body) {
			cr->reject_status = 413;
			cr->reject_msg = "body larger than the configured maximum";
		} else if (!cr->reject_status && cr->body.len + n > cr->reserved &&
		           !budget_take(cr, cr->body.len + n - cr->reserved)) {
			cr->reject_status = 503; /* chunked: its size was not known up front */
			cr->reject_msg = "too many request bodies in flight; retry later";
			buf_free(&cr->body);
		}
		if (cr->reject_status) {
			cr->discarded += n;
			if (cr->discarded > 4 * srv->opts.max_body + 65536)
				return MHD_NO;
		} else if (buf_append(&cr->body, upload_data, *upload_data_size)) {
			return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (cr->phase == PHASE_DEFERRED) {
		/* Resumed: the deferred answer is in cr->res, or made now. */
		cr->phase = PHASE_READY;
		make_answer(cr, &cr->res);
		return send_response(cr);
	}
	if (cr->phase == PHASE_READY)
		return MHD_YES;

	/* The whole request is here. */
	guard_phase(srv->guard, cr->slot, GUARD_BUSY);
	log_set_request_id(cr->req.request_id);
	if (cr->reject_status) {
		enum MHD_Result r = reject(cr, cr->reject_status, cr->reject_msg);
		log_set_request_id(NULL);
		return r;
	}
	if (!cr->body.data)
		buf_append(&cr->body, "", 0);
	cr->req.body = cr->body.data ? cr->body.data : "";
	cr->req.body_len = cr->body.len;
	http_response_init(&cr->res);
	int hr = srv->opts.handler(srv->opts.ctx, &cr->req, &cr->res);
	enum MHD_Result result = MHD_YES;
	if (hr == HTTP_DEFERRED) {
		pthread_mutex_lock(&srv->lock);
		if (cr->finished) {
			/* answered already, before we could suspend */
			pthread_mutex_unlock(&srv->lock);
			cr->phase = PHASE_READY;
			make_answer(cr, &cr->res);
			result = send_response(cr);
		} else {
			cr->phase = PHASE_DEFERRED;
			cr->suspended = true;
			MHD_suspend_connection(conn);
			pthread_mutex_unlock(&srv->lock);
		}
	} else {
		cr->phase = PHASE_READY;
		result = send_response(cr);
	}
	log_set_request_id(NULL);
	return result;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct conn_req *cr = *req_cls;
	if (!cr)
		return;
	struct http_server *srv = cls;
	if (cr->reserved)
		atomic_fetch_sub(&srv->inflight, cr->reserved);
	/* the connection may carry a next request (kept alive) */
	guard_phase(srv->guard, cr->slot, GUARD_IDLE);
	if (cr->stream)
		stream_drop(cr->stream); /* ended before its response was made */
	make_answer(cr, NULL);           /* ended before its deferred answer was made */
	free(cr->deferred);
	http_response_clear(&cr->res);
	buf_free(&cr->body);
	free(cr);
	*req_cls = NULL;
}

http_stream *http_stream_start(http_request *req)
{
	struct conn_req *cr = req->internal;
	if (!cr || cr->stream)
		return NULL;
	cr->stream = stream_new(cr->srv->streams);
	return cr->stream;
}

http_deferred *http_defer(http_request *req)
{
	struct conn_req *cr = req->internal;
	if (!cr)
		return NULL;
	struct http_deferred *d = malloc(sizeof *d);
	if (!d)
		return NULL;
	d->cr = cr;
	cr->deferred = d; /* freed on this thread, with the request */
	pthread_mutex_lock(&cr->srv->lock);
	cr->srv->outstanding++;
	pthread_mutex_unlock(&cr->srv->lock);
	return d;
}

/* The deferred answer is known: @res (moved), or @answer's to make. */
static void deferred_end(http_deferred *d, http_response *res, http_answer_fn answer, void *arg)
{
	struct conn_req *cr = d->cr;
	struct http_server *srv = cr->srv;
	pthread_mutex_lock(&srv->lock);
	if (res) {
		http_response_clear(&cr->res);
		cr->res = *res; /* move */
		http_response_init(res);
	}
	cr->answer = answer;
	cr->answer_arg = arg;
	cr->finished = true;
	if (cr->suspended) {
		cr->suspended = false;
		MHD_resume_connection(cr->conn);
	}
	srv->outstanding--;
	if (!srv->outstanding)
		pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
}

void http_deferred_finish(http_deferred *d, http_response *res)
{
	deferred_end(d, res, NULL, NULL);
}

void http_deferred_answer(http_deferred *d, http_answer_fn answer, void *arg)
{
	deferred_end(d, NULL, answer, arg);
}

/* ---- listening ----------------------------------------------------------------------- */

static int open_listener(struct http_server *srv, th_error *err)
{
	char host[256];
	uint16_t port;
	if (net_parse_listen(srv->opts.listen, host, sizeof host, &port))
		return th_err(
		    err, TH_ECONFIG,
		    "cannot listen on '%s': expected HOST:PORT, e.g. 127.0.0.1:8000 or [::1]:8000",
		    srv->opts.listen ? srv->opts.listen : "");
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char portstr[8];
	str_printf(portstr, sizeof portstr, "%u", port);
	int gai = getaddrinfo(host, portstr, &hints, &ai);
	if (gai)
		return th_err(err, TH_ECONFIG, "cannot resolve listen host '%s': %s", host,
		              gai_strerror(gai));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return th_err(err, TH_EIO, "cannot listen on %s: %s", srv->opts.listen,
		              strerror(e));
	}
	int family = ai->ai_family;
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		close(fd);
		return th_err(err, TH_EIO, "getsockname: %s", strerror(errno));
	}
	srv->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                     : ((struct sockaddr_in *)&ss)->sin_port);
	if (family == AF_INET6)
		str_printf(srv->url, sizeof srv->url, "http://[%s]:%u", host, srv->port);
	else
		str_printf(srv->url, sizeof srv->url, "http://%s:%u", host, srv->port);
	srv->listen_fd = fd;
	return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_debug("mhd", "%s", msg);
}

int http_server_start(http_server **out, const http_server_opts *opts, th_error *err)
{
	*out = NULL;
	struct http_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return th_err(err, TH_ENOMEM, "out of memory");
	srv->opts = *opts;
	srv->listen_fd = -1;
	str_copy(srv->name, sizeof srv->name, opts->name ? opts->name : "http");
	srv->opts.name = srv->name;
	if (!srv->opts.max_body)
		srv->opts.max_body = 1 << 20;
	srv->body_memory = opts->body_memory ? opts->body_memory : DEFAULT_BODY_MEMORY;
	if (srv->body_memory < srv->opts.max_body)
		srv->body_memory = srv->opts.max_body; /* else the largest body never fits */
	atomic_init(&srv->inflight, 0);
	srv->opts.trusted_proxies = NULL; /* parsed below; the caller's string is not kept */
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
	if (!(srv->streams = stream_set_new())) {
		http_server_free(srv);
		return th_err(err, TH_ENOMEM, "out of memory");
	}
	char rid[ID_LEN + 1];
	if (rand_id(rid)) {
		http_server_free(srv);
		return th_err(err, TH_EIO, "no randomness available");
	}
	str_copy(srv->id_prefix, sizeof srv->id_prefix, rid);
	char why[128];
	if (net_cidrs_parse(opts->trusted_proxies, srv->proxies, NET_MAX_PROXIES, &srv->nproxies,
	                    why, sizeof why)) {
		http_server_free(srv);
		return th_err(err, TH_ECONFIG, "trusted proxies: %s", why);
	}
	unsigned max_conn = opts->max_connections ? opts->max_connections : 1024;
	guard_opts go = {
	    .max_connections = max_conn,
	    .per_address = opts->per_address ? opts->per_address : 128,
	    .header_timeout_s = opts->header_timeout_s ? opts->header_timeout_s : 10,
	    .body_timeout_s = opts->body_timeout_s ? opts->body_timeout_s : 10,
	    .body_max_s = 120,
	    .idle_timeout_s = opts->timeout_s ? opts->timeout_s : 30,
	    .min_rate = MIN_BODY_RATE,
	    .proxies = srv->proxies,
	    .nproxies = srv->nproxies,
	    .name = srv->name,
	};
	int rc = guard_start(&srv->guard, &go, err);
	rc = rc ? rc : open_listener(srv, err);
	if (rc) {
		http_server_free(srv);
		return rc;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = opts->threads ? opts->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (opts->thread_per_connection)
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	else
		flags |= MHD_USE_EPOLL;
	srv->daemon = MHD_start_daemon(
	    flags, 0, guard_accept, srv->guard, on_request, srv, MHD_OPTION_LISTEN_SOCKET,
	    (MHD_socket)srv->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, guard_notify, srv->guard, MHD_OPTION_URI_LOG_CALLBACK,
	    on_uri, srv, MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)(opts->timeout_s ? opts->timeout_s : 30), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)(opts->conn_memory ? opts->conn_memory : 32768), MHD_OPTION_EXTERNAL_LOGGER,
	    mhd_log, NULL,
	    opts->thread_per_connection ? MHD_OPTION_END : MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_END);
	if (!srv->daemon) {
		http_server_free(srv);
		return th_err(err, TH_EIO, "cannot start the HTTP server on %s", opts->listen);
	}
	srv->listen_fd = -1; /* the daemon owns the listening socket now */
	log_info(srv->name, "listening on %s (%s)", srv->url,
	         opts->thread_per_connection ? "thread per connection" : "epoll thread pool");
	*out = srv;
	return 0;
}

uint16_t http_server_port(const http_server *srv)
{
	return srv->port;
}

const char *http_server_url(const http_server *srv)
{
	return srv->url;
}

void http_server_quiesce(http_server *srv)
{
	if (srv)
		stream_set_end_all(srv->streams); /* streams never hold a stop */
	if (srv && srv->daemon) {
		MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
		if (fd != MHD_INVALID_SOCKET)
			close(fd); /* handed back to us by the daemon */
	}
}

bool http_server_drain(http_server *srv, int64_t timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;
	pthread_mutex_lock(&srv->lock);
	while (srv->outstanding && time_mono_ms() < deadline) {
		struct timespec ts;
		wait_deadline(&ts, CLOCK_REALTIME, 50);
		pthread_cond_timedwait(&srv->idle, &srv->lock, &ts);
	}
	bool done = srv->outstanding == 0;
	pthread_mutex_unlock(&srv->lock);
	/* streams ended at quiesce: a moment for them to send their end, so
	 * clients see a clean close; never long enough to hold a stop */
	int64_t left = deadline - time_mono_ms();
	if (!stream_set_wait_empty(srv->streams,
	                           left < STREAM_END_WAIT_MS ? left : STREAM_END_WAIT_MS))
		log_info(srv->name, "streams still open at stop: closed without their end");
	return done;
}

void http_server_free(http_server *srv)
{
	if (!srv)
		return;
	/* MHD must not meet a suspended connection when it stops */
	stream_set_end_all(srv->streams);
	if (srv->daemon)
		MHD_stop_daemon(srv->daemon);
	stream_set_free(srv->streams);
	guard_free(srv->guard);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->idle);
	free(srv);
}
