/* SPDX-License-Identifier: MIT */
/*
 * trello/engine.h — private to src/trello/: the request engine (engine.c)
 * that the typed calls (client.c) hand their requests to.
 */
#ifndef TH_TRELLO_ENGINE_H
#define TH_TRELLO_ENGINE_H

#include "http/client.h"
#include "trello/trello.h"

enum req_state { RQ_WAITING = 0, RQ_RUNNING, RQ_DONE };

struct treq {
	/* what to send */
	const char *method; /* static string */
	char *path;         /* below api_url, with query; escaped; owned */
	char *body;         /* JSON or NULL; owned */
	const char *token;  /* borrowed; never logged */
	bool idempotent;    /* safe to send twice */
	/* progress */
	enum req_state state;
	int64_t not_before; /* monotonic ms */
	int tries;          /* attempts made */
	int rate_waits;
	httpc *hc;     /* kept across attempts (its connection too), owned */
	httpc_req hq;  /* the attempt on the wire */
	httpc_resp hr; /* its answer: the body, at most max_body */
	int64_t started;
	trello_rate_info rate;
	/* result */
	long status;
	int rc;
	trello_error err;
};

/* An empty request (fill method, path, body, token, idempotent). */
void trello_treq_init(struct treq *r);
/* Free what @r owns (its path, body, answer and HTTP handle); zeroes it. */
void trello_treq_clear(struct treq *r);
/* Run every request to completion on client @c (at most max_parallel at
 * once, each with the retry, rate-limit and deadline rules); each ends
 * RQ_DONE with rc/err/status/answer set. Returns 0, or TH_ENOMEM when the
 * engine could not start (every request then carries that error).
 * With @report, the client's progress function (if set) hears done/total.
 * Thread-safe per client (each call has its own HTTP group). */
int trello_engine_run(trello_client *c, struct treq **reqs, size_t n, bool report);
/* Could @s go into the Authorization header (a key or token)? */
bool trello_secret_ok(const char *s);

#endif
