/* SPDX-License-Identifier: MIT */
/*
 * dispatch — the outbox workers: hand every stored event to its handlers.
 *
 * events_put (store) records one pending delivery per matching enabled
 * handler in the same transaction as the event. The dispatcher claims due
 * deliveries from the store (with a lease), runs them on TRELLOHOOK_WORKERS
 * threads, records the outcome and schedules retries with exponential backoff
 * (TRELLOHOOK_RETRY_SCHEDULE, +-10% jitter); after the last attempt a delivery
 * is dead. Per (webhook, handler) order is kept by the store's claim rule;
 * the number of deliveries running at once per handler is capped
 * (TRELLOHOOK_HANDLER_CONCURRENCY).
 *
 * Three runners (one file each):
 *  - exec.c:    the command run directly (posix_spawn, words and plain file
 *               redirections split by exec_split.c) when it has no other
 *               shell syntax, else through
 *               `/bin/sh -c`; payload on stdin, variables in a clean
 *               environment, output captured, process group killed on timeout;
 *  - forward.c: POST of the raw payload signed per Standard Webhooks;
 *  - dispatcher.c also calls connected C functions (svc_ctx funcs).
 */
#ifndef TH_DISPATCH_H
#define TH_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "service/ctx.h"
#include "util/util.h"

/* How much of a handler's output (or a receiver's answer) is kept. */
#define DISPATCH_OUTPUT_MAX 8192

typedef struct dispatcher dispatcher;

/* Start the claimer and worker threads over @sc (which must outlive them). Also
 * ensures a handler row for each connected C function. On success *out owns
 * the threads; stop and free with dispatcher_stop(). */
int dispatcher_start(dispatcher **out, svc_ctx *sc, th_error *err);

/* Claim due deliveries now (called after a group commit that made some). Thread-safe,
 * cheap, NULL-safe. */
void dispatcher_wake(dispatcher *d);

/* Stop claiming, let running deliveries finish (exec/forward end by their
 * timeout at the latest), release claimed-but-not-started ones so they stay
 * due, join the threads and free @d. NULL-safe. */
void dispatcher_stop(dispatcher *d);

/* Append the dispatcher's Prometheus gauges (deliveries running now, worker
 * threads) to @out; attempts are counted in the metrics (metrics_handler_run).
 * Thread-safe. */
int dispatcher_metrics_render(dispatcher *d, buf *out);

/* The delay before the next attempt after attempt number @attempt (1-based)
 * failed: retry_ms[attempt-1] with +-10% jitter. Returns -1 when @attempt was
 * the last one (the delivery is then dead). */
int64_t dispatch_retry_delay(const th_config *cfg, int attempt);

/* ---- runners ---------------------------------------------------------------------- */

/* What one attempt produced. */
typedef struct dispatch_result {
	bool ok;    /* success: exit 0 / 2xx / function returned 0 */
	bool gone;  /* forward: the receiver answered 410 (disable the handler) */
	bool shell; /* exec: the command ran through /bin/sh -c (else directly) */
	char *text; /* malloc'd bounded note/output for last_error, or NULL */
} dispatch_result;

void dispatch_result_clear(dispatch_result *r);

/* Run @command with @ev's payload on stdin and its variables (TRELLO_*) plus
 * PATH/HOME/TMPDIR/LANG/LC_ALL/TZ of this process and PWD (its working
 * directory) in an otherwise empty environment. A command without shell
 * syntax but plain file redirections (dispatch_split) is started directly
 * with posix_spawn, its redirections done by the spawn; any other, or one
 * whose program cannot be started that way or whose redirection fails,
 * through /bin/sh -c (out->shell says which). The child leads its own process group; after
 * @timeout_ms the whole group gets SIGTERM, one second later SIGKILL.
 * stdout and stderr (one pipe) are captured up to DISPATCH_OUTPUT_MAX bytes.
 * Thread-safe (posix_spawn). Returns 0 when the attempt ran (see @out), or an
 * error when it could not be started (out->text then says why). */
int dispatch_exec(const char *command, const event *ev, int64_t timeout_ms, dispatch_result *out);

/* At most this many redirections are done without a shell. */
#define DISPATCH_REDIR_MAX 16

/* A plain file redirection, done as sh does it (in order, after the
 * descriptors 0-2 are set up): IN opens path O_RDONLY, OUT
 * O_WRONLY|O_CREAT|O_TRUNC, APPEND O_WRONLY|O_CREAT|O_APPEND (mode 0666,
 * less the umask), each onto @fd; DUP makes @fd a copy of @from. */
enum dispatch_redir_op {
	DISPATCH_REDIR_IN,     /* [fd]<path, fd 0 by default */
	DISPATCH_REDIR_OUT,    /* [fd]>path, fd 1 by default */
	DISPATCH_REDIR_APPEND, /* [fd]>>path */
	DISPATCH_REDIR_DUP     /* [fd]>&from */
};
typedef struct dispatch_redir {
	enum dispatch_redir_op op;
	int fd;           /* the descriptor redirected: 0, 1 or 2 */
	int from;         /* DUP: the descriptor copied, 0, 1 or 2 */
	const char *path; /* IN, OUT, APPEND: the file; else NULL */
} dispatch_redir;

/* A command split into words: argv[0..argc-1], argv[argc] == NULL, and its
 * redirections redir[0..nredir-1] in the order written (redir NULL when
 * none). The strings and arrays live in the allocation argv points to. */
typedef struct dispatch_argv {
	char **argv;
	size_t argc;
	dispatch_redir *redir;
	size_t nredir;
} dispatch_argv;

/* Decide whether @command (NUL-terminated, any bytes) can run without a
 * shell. Returns 1 and fills *out with its words, split and unquoted as
 * /bin/sh would, and its redirections, when it holds nothing but words,
 * blanks, quotes, backslashes and plain redirections (no $ ` | ; ( ) { } * ?
 * [ ] ~ # or newline anywhere; < > & only unquoted, as the redirections
 * [0-2]<FILE, [0-2]>FILE, [0-2]>>FILE and [0-2]>&[0-2], FILE without quotes,
 * backslashes or < > &; no leading NAME=value, no reserved word or builtin
 * as the program, quotes balanced); returns 0 when it needs /bin/sh -c (*out
 * zeroed), TH_ENOMEM when out of memory. @why (optional) gets a static phrase
 * saying which ("plain words", "words and redirections", or why the shell).
 * The caller frees *out with dispatch_argv_free. Thread-safe, no I/O. */
int dispatch_split(const char *command, dispatch_argv *out, const char **why);

/* Free what dispatch_split put in @a and zero it. NULL-safe. */
void dispatch_argv_free(dispatch_argv *a);

/* One per worker: a kept HTTP client handle per target (at most 8, least
 * recently used closed first), so connections stay alive between deliveries.
 * Not thread-safe; free closes the connections. */
typedef struct forwarder forwarder;
int forwarder_new(forwarder **out);
void forwarder_free(forwarder *f);

/* POST @ev's raw payload to @h->target with Content-Type application/json and
 * the Standard Webhooks headers (webhook-id = event id, webhook-timestamp =
 * unix seconds now, webhook-signature = sign_sw with @h->secret). 2xx is
 * success; 410 sets out->gone; anything else (status, timeout, connection
 * error) is a failure described in out->text. Not thread-safe per forwarder. */
int dispatch_forward(forwarder *f, const handler *h, const event *ev, int64_t timeout_ms,
                     dispatch_result *out);

#endif
