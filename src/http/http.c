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
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "util/log.h"

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
};

enum req_phase { PHASE_READING, PHASE_REJECTED, PHASE_DEFERRED, PHASE_READY };

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

const char *http_arg(const http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nargs; i++)
		if (str_eq(req->args[i].name, name))
			return req->args[i].value;
	return NULL;
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
	struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(data);
		return MHD_NO;
	}
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
	log_info(cr->srv->name, "%s %s -> %d, %zu bytes in, %zu out, %.2f ms", cr->req.method, path,
	         res->status, cr->body.len, len, ms);
	log_set_request_id(NULL);
	return ok;
}

static enum MHD_Result reject(struct conn_req *cr, int status, const char *msg)
{
	http_response_init(&cr->res);
	http_response_text(&cr->res, status, "%s\n", msg);
	cr->phase = PHASE_READY;
	char path[512];
	loggable_path(cr->req.path, path, sizeof path);
	log_info(cr->srv->name, "%s %s -> %d (%s)", cr->req.method, path, status, msg);
	return send_response(cr);
}

/* ---- collecting headers and arguments --------------------------------------------- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
	http_request *req = cls;
	if (req->nheaders < HTTP_MAX_HEADERS) {
		req->headers[req->nheaders].name = key;
		req->headers[req->nheaders].value = value ? value : "";
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

/* Decide on framing problems before reading the body. Returns a status or 0. */
static int check_framing(struct conn_req *cr, const char **msg)
{
	http_request *req = &cr->req;
	const char *cl = NULL;
	for (size_t i = 0; i < req->nheaders; i++) {
		if (!str_case_eq(req->headers[i].name, "Content-Length"))
			continue;
		if (cl && !str_eq(cl, req->headers[i].value)) {
			*msg = "conflicting Content-Length headers";
			return 400;
		}
		cl = req->headers[i].value;
	}
	if (cl && http_header(req, "Transfer-Encoding")) {
		*msg = "both Content-Length and Transfer-Encoding given";
		return 400;
	}
	if (cl) {
		int64_t n;
		if (num_parse_i64(cl, 0, INT64_MAX, &n)) {
			*msg = "malformed Content-Length";
			return 400;
		}
		if ((uint64_t)n > cr->srv->opts.max_body) {
			*msg = "body larger than the configured maximum";
			return 413;
		}
		/* one allocation for the whole body instead of doubling from 64 bytes */
		if (n > 0 && buf_reserve(&cr->body, (size_t)n)) {
			*msg = "out of memory for the body; try again later";
			return 503;
		}
	}
	return 0;
}

static void make_request_id(struct http_server *srv, char out[24])
{
	uint_fast64_t n = atomic_fetch_add(&srv->next_id, 1);
	str_printf(out, 24, "%s-%llx", srv->id_prefix, (unsigned long long)n);
}

/* ---- the access handler ------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	struct http_server *srv = cls;
	struct conn_req *cr = *req_cls;

	if (!cr) {
		/* First call: headers are complete, no body yet. */
		cr = calloc(1, sizeof *cr);
		if (!cr)
			return MHD_NO;
		cr->srv = srv;
		cr->conn = conn;
		cr->req.method = method;
		cr->req.path = url;
		cr->req.internal = cr;
		cr->req.remote = "";
		cr->started_us = time_mono_us();
		buf_init(&cr->body, srv->opts.max_body + 1);
		make_request_id(srv, cr->req.request_id);
		MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &cr->req);
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &cr->req);
		*req_cls = cr;
		const char *msg = NULL;
		int status = check_framing(cr, &msg);
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
		/* A body chunk. Past the limit keep nothing; past 4x close the connection. */
		if (cr->reject_status || cr->body.len + *upload_data_size > srv->opts.max_body) {
			cr->reject_status = 413;
			cr->reject_msg = "body larger than the configured maximum";
			cr->discarded += *upload_data_size;
			if (cr->discarded > 4 * srv->opts.max_body + 65536)
				return MHD_NO;
		} else if (buf_append(&cr->body, upload_data, *upload_data_size)) {
			return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (cr->phase == PHASE_DEFERRED) {
		/* Resumed: the deferred answer is in cr->res. */
		cr->phase = PHASE_READY;
		return send_response(cr);
	}
	if (cr->phase == PHASE_READY)
		return MHD_YES;

	/* The whole request is here. */
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
	http_response_clear(&cr->res);
	buf_free(&cr->body);
	free(cr);
	*req_cls = NULL;
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
	pthread_mutex_lock(&cr->srv->lock);
	cr->srv->outstanding++;
	pthread_mutex_unlock(&cr->srv->lock);
	return d;
}

void http_deferred_finish(http_deferred *d, http_response *res)
{
	struct conn_req *cr = d->cr;
	struct http_server *srv = cr->srv;
	free(d);
	pthread_mutex_lock(&srv->lock);
	http_response_clear(&cr->res);
	cr->res = *res; /* move */
	http_response_init(res);
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
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
	char rid[ID_LEN + 1];
	if (rand_id(rid)) {
		http_server_free(srv);
		return th_err(err, TH_EIO, "no randomness available");
	}
	str_copy(srv->id_prefix, sizeof srv->id_prefix, rid);
	int rc = open_listener(srv, err);
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
	    flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_LISTEN_SOCKET,
	    (MHD_socket)srv->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)(opts->max_connections ? opts->max_connections : 1024),
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(opts->timeout_s ? opts->timeout_s : 30),
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
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
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&srv->idle, &srv->lock, &ts);
	}
	bool done = srv->outstanding == 0;
	pthread_mutex_unlock(&srv->lock);
	return done;
}

void http_server_free(http_server *srv)
{
	if (!srv)
		return;
	if (srv->daemon)
		MHD_stop_daemon(srv->daemon);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->idle);
	free(srv);
}
