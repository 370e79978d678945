/* SPDX-License-Identifier: MIT */
/*
 * http/client.h — the one outbound HTTP client (over libcurl) that every part
 * of trellohook and trello-mock uses: the Trello REST client, forward
 * handlers, `trigger`, `demo` and the mock's deliveries.
 *
 * The policy lives here, not in the callers:
 *  - a total timeout and a connect timeout are mandatory (httpc_new refuses 0);
 *  - only http:// and https:// URLs, also as redirect targets;
 *  - redirects are not followed unless the caller asks (a 3xx is then the
 *    answer), and never to another scheme;
 *  - the answer body is capped: over the cap the call fails (HTTPC_FAIL_TOOBIG)
 *    or, when the caller only wants a note of it, the first bytes are kept
 *    and the rest is read and dropped;
 *  - every request is logged at debug level with its secrets masked
 *    (Authorization-like headers, key= / token= style query parameters,
 *    Trello-token-shaped path segments, URL passwords, and one caller-named
 *    secret);
 *  - a handle (httpc) keeps its connections between calls: keep one per
 *    target to get keep-alive.
 *
 * Ownership: an httpc owns its curl handle and copies of its options' strings;
 * requests (httpc_req) are borrowed for the duration of the call (for a group:
 * until the transfer is done); answers (httpc_resp) belong to the caller, who
 * releases them with httpc_resp_clear().
 *
 * Thread-safety: an httpc or an httpc_group is used by one thread at a time;
 * an httpc_share may be used by any number of handles in any threads.
 * httpc_new() initialises libcurl once per process (thread-safe).
 */
#ifndef TH_HTTP_CLIENT_H
#define TH_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* Why a call got no usable answer. */
enum httpc_fail {
	HTTPC_OK = 0,
	HTTPC_FAIL_URL,      /* malformed URL or a scheme other than http/https: nothing sent */
	HTTPC_FAIL_RESOLVE,  /* the host name did not resolve: nothing sent */
	HTTPC_FAIL_CONNECT,  /* no connection (refused, unreachable, connect timeout): nothing sent
	                      */
	HTTPC_FAIL_TIMEOUT,  /* the total timeout passed; the request may have been received */
	HTTPC_FAIL_TOOBIG,   /* the answer body is larger than max_body */
	HTTPC_FAIL_REDIRECT, /* too many redirects, or one to a refused scheme */
	HTTPC_FAIL_NETWORK,  /* the connection broke (send/receive/TLS); may have been received */
	HTTPC_FAIL_ABORTED,  /* the abort callback asked to stop */
	HTTPC_FAIL_NOMEM     /* out of memory */
};

/* Polled during a transfer (about once a second and on progress); returning
 * true stops it with HTTPC_FAIL_ABORTED. */
typedef bool (*httpc_abort_fn)(void *ctx);
/* Told every raw response header line ("Name: value\r\n", and each status
 * line "HTTP/1.1 200 OK\r\n" that starts a header block). */
typedef void (*httpc_header_fn)(void *ctx, const char *line, size_t len);

typedef struct httpc httpc;
typedef struct httpc_share httpc_share;

typedef struct httpc_opts {
	long timeout_ms;         /* required (> 0): the whole call, first byte to last */
	long connect_timeout_ms; /* required (> 0): TCP + TLS set-up; capped at timeout_ms */
	size_t max_body;         /* required (> 0): largest answer body */
	bool keep_head;          /* over max_body: keep the first max_body bytes and set
	                          * resp->truncated, instead of failing with TOOBIG */
	int max_redirects;       /* 0 (the default): a redirect is returned, not followed */
	const char *user_agent;  /* copied; NULL: "trellohook/VERSION" */
	const char *component;   /* log component (static string); NULL: "http-client" */
	httpc_abort_fn abort;    /* optional */
	void *abort_ctx;
	httpc_share *share; /* optional, borrowed: DNS answers and TLS sessions shared */
} httpc_opts;

#define HTTPC_OPTS_INIT                                                                      \
	{                                                                                    \
		.timeout_ms = 0, .connect_timeout_ms = 0, .max_body = 0, .keep_head = false, \
		.max_redirects = 0, .user_agent = NULL, .component = NULL, .abort = NULL,    \
		.abort_ctx = NULL, .share = NULL                                             \
	}

/* One request. url and the header lines are copied when the call starts;
 * the struct itself and everything else it points to (method, body,
 * header_ctx, secret) are borrowed until the call (or the group transfer) is
 * done. */
typedef struct httpc_req {
	const char *method;         /* NULL: "GET"; "HEAD" sends no body and reads none */
	const char *url;            /* http:// or https:// only */
	const char *const *headers; /* "Name: value" lines (no CR/LF inside) */
	size_t nheaders;
	const void *body; /* sent as is; NULL with POST/PUT: an empty body */
	size_t body_len;
	long timeout_ms;           /* 0: the handle's; else the smaller of both */
	httpc_header_fn on_header; /* optional */
	void *header_ctx;
	const char *secret; /* optional: masked wherever it shows in a logged URL */
} httpc_req;

/* One answer. Initialise with httpc_resp_init(), free with httpc_resp_clear(). */
typedef struct httpc_resp {
	long status;          /* the HTTP status, 0 when no answer came */
	buf body;             /* the answer body, at most max_body bytes */
	bool truncated;       /* keep_head: more came than was kept */
	enum httpc_fail fail; /* HTTPC_OK when an answer (of any status) came */
	char error[256];      /* what went wrong, for people; "" when fail == HTTPC_OK */
	int64_t elapsed_ms;
} httpc_resp;

void httpc_resp_init(httpc_resp *r);
/* Free the body; the struct is left initialised (reusable). NULL-safe. */
void httpc_resp_clear(httpc_resp *r);

/* Create a kept handle. Returns 0, TH_EINVAL (a timeout or max_body missing:
 * the message names it), TH_EIO (libcurl would not initialise) or TH_ENOMEM.
 * Free with httpc_free(). */
int httpc_new(httpc **out, const httpc_opts *opts, th_error *err);
/* NULL-safe; closes the handle's connections. Not while a transfer runs. */
void httpc_free(httpc *c);

/* Send @req and read the answer into @resp (initialised by the caller; its
 * previous content is dropped). Blocks up to the timeout. Returns 0 when an
 * answer came (look at resp->status), else TH_EINVAL (URL or scheme refused),
 * TH_ETOOBIG, TH_ENOMEM or TH_EUNAVAIL (no answer: resp->fail says why, and
 * resp->error in words). */
int httpc_perform(httpc *c, const httpc_req *req, httpc_resp *resp);

/* Did the request certainly never reach the server (safe to resend even a
 * non-idempotent one)? */
bool httpc_fail_never_sent(enum httpc_fail f);
/* A failure worth retrying later (resolve, connect, timeout, network). */
bool httpc_fail_transient(enum httpc_fail f);
/* The TH_E* code for a failure (0 for HTTPC_OK). */
int httpc_fail_code(enum httpc_fail f);

/* ---- many transfers at once ---------------------------------------------------- */

typedef struct httpc_group httpc_group;

/* A set of transfers moved together by one thread, sharing up to
 * @max_connections kept connections. Free with httpc_group_free(). */
int httpc_group_new(httpc_group **out, unsigned max_connections);
/* Detaches whatever is still attached (those answers stay incomplete). NULL-safe. */
void httpc_group_free(httpc_group *g);
/* Start @req on handle @c (which must not be busy) inside the group; @resp
 * and @tag come back through httpc_group_done(). Returns 0, or an error code
 * with resp->fail and resp->error set (nothing was started). */
int httpc_group_add(httpc_group *g, httpc *c, const httpc_req *req, httpc_resp *resp, void *tag);
/* Move bytes; wait at most @max_wait_ms for activity when nothing is ready.
 * Returns the number of transfers still running. */
int httpc_group_run(httpc_group *g, int max_wait_ms);
/* The tag of one finished transfer (its resp is complete and its handle free
 * again), or NULL when none finished since the last call. */
void *httpc_group_done(httpc_group *g);

/* ---- shared caches -------------------------------------------------------------- */

/* DNS answers and TLS sessions shared by many handles (thread-safe). Returns
 * NULL when out of memory (callers then simply do without). */
httpc_share *httpc_share_new(void);
/* NULL-safe; no handle may still use it. */
void httpc_share_free(httpc_share *s);

/* ---- masking (what the logs show; exposed for tests) --------------------------- */

/* @url as it may be logged: the password of user:pass@, the values of
 * secret-named query parameters (key, token, api_key, apikey, access_token,
 * oauth_token, secret, password, signature), path segments shaped like Trello
 * tokens, and every occurrence of @secret (may be NULL) masked. Output is
 * cut to @outsz. */
void httpc_mask_url(const char *url, const char *secret, char *out, size_t outsz);
/* A header line as it may be logged: Authorization, Proxy-Authorization,
 * Cookie, Set-Cookie, X-Api-Key and X-Trello-Webhook keep only their name
 * (and an auth scheme word, "OAuth ****"); other lines are copied. */
void httpc_mask_header(const char *line, char *out, size_t outsz);

#endif
