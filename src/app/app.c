/* SPDX-License-Identifier: MIT */
/* app.c — the app's lifetime: open, serve, stop, free; signals; the public C
 * API of include/trellohook.h. The composition root: the only file that
 * knows every layer and wires them together. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "dispatch/dispatch.h"
#include "server/server.h"
#include "service/handlers.h"
#include "service/service.h"
#include "service/webhook_cache.h"
#include "util/log.h"

/* The write end of the serving app's stop pipe, for the signal handler. This
 * module owns it; only one app serves per process at a time. */
static volatile sig_atomic_t signal_stop_fd = -1;

/* SIGINT/SIGTERM write "s" (stop), SIGHUP "h" (reopen the log, reload). */
static void on_signal(int sig)
{
	int fd = signal_stop_fd;
	if (fd >= 0) {
		int saved = errno;
		ssize_t n = write(fd, sig == SIGHUP ? "h" : "s", 1);
		(void)n;
		errno = saved;
	}
}

/* SIGHUP: reopen the log file (rotation), forget cached webhooks, and read
 * the handler set again (the dispatcher reads it from the store for every
 * event, so this only reports what is now in force). */
static void app_reload(app *a)
{
	th_error err = {0, {0}};
	bool reopened = false;
	if (log_reopen(&reopened, &err))
		log_error("serve", "SIGHUP: %s; logging continues to the old file", err.msg);
	webhook_cache_forget(a->cache, NULL);
	handler *hs = NULL;
	size_t n = 0, on = 0;
	if (svc_handler_list(&a->svc, &hs, &n, &err)) {
		log_error("serve", "SIGHUP: reading the handlers: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		on += hs[i].enabled;
	handler_list_free(hs, n);
	log_info("serve", "SIGHUP: %s; handler set reloaded: %zu handlers, %zu enabled",
	         reopened ? "log file reopened" : "logging to stderr", n, on);
}

/* The stop pipe is readable: true when serving should stop, after handling
 * any SIGHUP bytes ("h") read with it. */
static bool app_wakeup(app *a)
{
	char bytes[16];
	ssize_t got = read(a->stop_pipe[0], bytes, sizeof bytes);
	if (got < 0)
		return errno != EAGAIN && errno != EINTR;
	bool stop = got == 0, hup = false;
	for (ssize_t i = 0; i < got; i++) {
		hup = hup || bytes[i] == 'h';
		stop = stop || bytes[i] != 'h';
	}
	if (hup && !stop)
		app_reload(a);
	return stop;
}

int app_new(app **out, const th_config *cfg, th_error *err)
{
	*out = NULL;
	app *a = calloc(1, sizeof *a);
	if (!a)
		return th_err(err, TH_ENOMEM, "out of memory");
	a->cfg = *cfg;
	a->stop_pipe[0] = a->stop_pipe[1] = -1;
	metrics_init(&a->m);
	log_setup(cfg->log_level, cfg->log_format);
	int rc = store_open(&a->st, cfg->database_url, err);
	if (!rc && webhook_cache_new(&a->cache, 2000))
		rc = th_err(err, TH_ENOMEM, "out of memory");
	if (!rc)
		rc = svc_throttle_new(&a->throttle, err);
	if (!rc && pipe2(a->stop_pipe, O_CLOEXEC | O_NONBLOCK))
		rc = th_err(err, TH_EIO, "pipe: %s", strerror(errno));
	if (rc) {
		th_app_free(a);
		return rc;
	}
	a->svc = (svc_ctx){
	    .cfg = &a->cfg,
	    .st = a->st,
	    .cache = a->cache,
	    .m = &a->m,
	    .funcs = &a->funcs,
	    .throttle = a->throttle,
	};
	/* rows from before token fingerprints (see service/crypto_tokens.c) */
	(void)svc_tokens_fill_fingerprints(&a->svc);
	/* forward secrets stored before TRELLOHOOK_SECRET_KEY was set */
	(void)handlers_seal_secrets(&a->svc);
	*out = a;
	return 0;
}

svc_ctx *app_svc(app *a)
{
	return &a->svc;
}

int th_app_new(th_app **out, int argc, char **argv, th_error *err)
{
	th_config cfg;
	*out = NULL;
	int rc = config_load_env(&cfg, NULL, err);
	for (int i = 0; !rc && i < argc; i++) {
		int used = config_apply_flag(&cfg, argv[i], i + 1 < argc ? argv[i + 1] : NULL, err);
		if (used < 0)
			rc = used;
		else if (used == 0)
			rc = th_err(err, TH_ECONFIG, "unknown flag '%s'", argv[i]);
		else
			i += used - 1;
	}
	return rc ? rc : app_new(out, &cfg, err);
}

void th_app_free(th_app *a)
{
	if (!a)
		return;
	store_close(a->st);
	webhook_cache_free(a->cache);
	svc_throttle_free(a->throttle);
	if (a->stop_pipe[0] >= 0)
		close(a->stop_pipe[0]);
	if (a->stop_pipe[1] >= 0)
		close(a->stop_pipe[1]);
	free(a);
}

int th_connect(th_app *a, const char *signal_name, th_handler_fn fn, void *ctx,
               const char *dispatch_uid)
{
	if (!a || !fn || !dispatch_uid || !*dispatch_uid)
		return TH_EINVAL;
	if (!str_eq(signal_name, "callback_received"))
		return TH_EINVAL;
	svc_funcs *fs = &a->funcs;
	for (size_t i = 0; i < fs->n; i++)
		if (str_eq(fs->v[i].uid, dispatch_uid))
			return 0; /* connected already: connecting twice connects once */
	if (fs->n == SVC_MAX_FUNCS || strlen(dispatch_uid) >= sizeof fs->v[0].uid)
		return TH_ETOOBIG;
	svc_func *f = &fs->v[fs->n++];
	f->fn = fn;
	f->ctx = ctx;
	str_copy(f->uid, sizeof f->uid, dispatch_uid);
	return 0;
}

void th_app_stop(th_app *a)
{
	if (a && a->stop_pipe[1] >= 0) {
		ssize_t n = write(a->stop_pipe[1], "s", 1);
		(void)n;
	}
}

static void on_commit(void *ctx, size_t n)
{
	(void)n;
	app *a = ctx;
	if (store_take_fresh_deliveries(a->svc.st)) /* new deliveries are due */
		dispatcher_wake(a->disp);
}

/* The receiver's new-event hook: the live view's streams (admin_live.c). */
static void on_event(void *ctx, const event *ev)
{
	admin_live_publish(((app *)ctx)->live, ev);
}

/* svc_ctx.on_session_end: a signed-out session's live views end now. */
static void on_session_end(void *ctx, const char *id_hash)
{
	admin_live_end_session(((app *)ctx)->live, id_hash);
}

/* Unhook the live view from the service layer and end its streams. */
static void live_stop(app *a)
{
	a->svc.on_session_end = NULL;
	a->svc.on_session_end_ctx = NULL;
	admin_live_free(a->live);
	a->live = NULL;
}

/* svc_ctx.on_events: a backfill committed events (outside the receiver);
 * the live view shows them like received ones, then the dispatcher wakes. */
static void on_events(void *ctx, const event *const *fresh, size_t n)
{
	for (size_t i = 0; i < n; i++)
		on_event(ctx, fresh[i]);
	on_commit(ctx, n);
}

/* svc_queue_fn over the receiver (the service layer does not know it). */
static int queue_submit(void *queue, event *ev, svc_stored_fn done, void *ctx, th_error *err)
{
	return receiver_submit(queue, ev, done, ctx, err);
}

/* server_ctx's extra /metrics series: the dispatcher's (NULL-safe). */
static int render_dispatch(void *ctx, buf *out)
{
	return dispatcher_metrics_render(((app *)ctx)->disp, out);
}

int app_receiver_start(app *a, th_error *err)
{
	/* One writer on either store. SQLite has one writer connection: a second
	 * writer would only wait on its lock (and, tried with the WAL sync moved
	 * outside it, cost CPU per event and gained nothing measurable:
	 * docs/DESIGN.md). On PostgreSQL each batch updates its webhooks' rows
	 * (last event time, event counter, hourly rollup), so a second writer's
	 * batch waited on the first one's row locks until its commit: the
	 * commits did not overlap, the batches were half as large, and the
	 * server's CPU per event was a third higher. */
	int rc = receiver_new(&a->rcv, &a->svc, 1, err);
	if (rc)
		return rc;
	receiver_on_commit(a->rcv, on_commit, a);
	a->svc.on_events = on_events;
	a->svc.on_events_ctx = a;
	a->svc.queue_submit = queue_submit;
	a->svc.queue = a->rcv;
	return 0;
}

void app_receiver_stop(app *a)
{
	a->svc.queue_submit = NULL;
	a->svc.queue = NULL;
	a->svc.on_events = NULL;
	a->svc.on_events_ctx = NULL;
	receiver_free(a->rcv);
	a->rcv = NULL;
}

/* Deliveries a previous life of this process left running (kill -9) are due
 * again at once instead of after their lease; other instances' stay theirs. */
static void recover_leases(app *a)
{
	size_t n = 0;
	th_error e = {0, {0}};
	if (svc_delivery_recover(&a->svc, &n, &e) != 0)
		log_warn("serve", "cannot recover deliveries of a stopped process: %s", e.msg);
	else if (n)
		log_info("serve", "%zu deliver%s left running by a stopped process: due again", n,
		         n == 1 ? "y" : "ies");
}

int app_serve(app *a, app_ready_fn ready, void *ctx, th_error *err)
{
	int rc = config_require(&a->cfg, NEED_API_SECRET | NEED_CALLBACK_DOMAIN, err);
	if (rc)
		return rc;
	rc = app_receiver_start(a, err);
	if (rc)
		return rc;
	recover_leases(a);
	rc = dispatcher_start(&a->disp, &a->svc, err);
	if (rc) {
		app_receiver_stop(a);
		return rc;
	}
	admin_live_opts lo = {.sc = &a->svc};
	if ((rc = admin_live_new(&a->live, &lo, err)) != 0) {
		dispatcher_stop(a->disp);
		a->disp = NULL;
		app_receiver_stop(a);
		return rc;
	}
	a->svc.on_session_end = on_session_end;
	a->svc.on_session_end_ctx = a;
	receiver_on_event(a->rcv, on_event, a);
	a->srv = (server_ctx){
	    .svc = &a->svc, .render_extra = render_dispatch, .render_ctx = a, .live = a->live};
	http_server_opts opts = {
	    .listen = a->cfg.listen,
	    .max_body = a->cfg.max_body,
	    .handler = server_route,
	    .ctx = &a->srv,
	    .name = "server",
	    .timeout_s = 30,
	    .trusted_proxies = a->cfg.trusted_proxies,
	    .body_memory = a->cfg.body_memory,
	};
	rc = http_server_start(&a->http, &opts, err);
	if (rc) {
		dispatcher_stop(a->disp);
		a->disp = NULL;
		app_receiver_stop(a);
		live_stop(a);
		return rc;
	}
	a->started_at = time_now_ms();
	/* the periodic health pass talks to Trello, never to our server: a failure
	 * to start it is logged, not fatal */
	th_error herr = {0, {0}};
	if (health_start(a, &herr))
		log_error("serve", "%s", herr.msg);
	if (retention_start(a, &herr))
		log_error("serve", "%s", herr.msg);

	struct sigaction sa, old_int, old_term, old_hup;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	signal_stop_fd = a->stop_pipe[1];
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	signal(SIGPIPE, SIG_IGN);

	char domain_log[600];
	str_copy(domain_log, sizeof domain_log, a->cfg.callback_domain);
	log_info("serve", "trellohook %s serving on %s; callbacks at %s/callbacks/{id}; store %s",
	         th_version(), http_server_url(a->http), domain_log, svc_store_name(&a->svc));
	if (ready)
		ready(ctx, http_server_url(a->http));

	/* Wait for a stop request (signal or th_app_stop). */
	for (;;) {
		struct pollfd pfd = {.fd = a->stop_pipe[0], .events = POLLIN};
		int n = poll(&pfd, 1, -1);
		if (n > 0 && app_wakeup(a))
			break;
		if (n < 0 && errno != EINTR)
			break;
	}
	log_info("serve", "stopping: no new connections; finishing requests in flight");
	retention_stop(a);
	http_server_quiesce(a->http);
	if (!http_server_drain(a->http, 10000))
		log_warn("serve", "some requests were still waiting for the store after 10 s");
	http_server_free(a->http);
	a->http = NULL;
	/* after the server: an admin request may still ask it for a backfill */
	health_stop(a);
	/* handlers run outside requests: stop them only once no request can commit */
	dispatcher_stop(a->disp);
	a->disp = NULL;
	app_receiver_stop(a);
	/* no stream and no commit left to publish to */
	live_stop(a);
	signal_stop_fd = -1;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	char drain[8];
	while (read(a->stop_pipe[0], drain, sizeof drain) > 0) {
	}
	log_info("serve", "stopped cleanly");
	return 0;
}

int th_app_serve(th_app *a, th_error *err)
{
	return app_serve(a, NULL, NULL, err);
}

/* ---- event accessors of the public API ------------------------------------------------ */

const char *th_event_id(const th_event *e)
{
	return e->id;
}
const char *th_event_webhook_id(const th_event *e)
{
	return e->webhook_id;
}
const char *th_event_action_id(const th_event *e)
{
	return e->action_id;
}
const char *th_event_action_type(const th_event *e)
{
	return e->action_type;
}
const char *th_event_action_date(const th_event *e)
{
	return e->action_date;
}
const char *th_event_model_id(const th_event *e)
{
	return e->model_id;
}
const char *th_event_board_id(const th_event *e)
{
	return e->board_id;
}
const char *th_event_list_id(const th_event *e)
{
	return e->list_id;
}
const char *th_event_card_id(const th_event *e)
{
	return e->card_id;
}
const char *th_event_member(const th_event *e)
{
	return e->member;
}
const char *th_event_board_name(const th_event *e)
{
	return e->board_name;
}
const char *th_event_list_name(const th_event *e)
{
	return e->list_name;
}
const char *th_event_card_name(const th_event *e)
{
	return e->card_name;
}
const char *th_event_member_name(const th_event *e)
{
	return e->member;
}
const char *th_event_member_id(const th_event *e)
{
	return e->member_id;
}
const char *th_event_summary(const th_event *e)
{
	return e->summary;
}
const char *th_event_source(const th_event *e)
{
	return event_source_name(e->source);
}
void *th_event_json(const th_event *e)
{
	return e->json;
}

const char *th_event_payload(const th_event *e, size_t *len)
{
	if (len)
		*len = e->payload_len;
	return e->payload;
}
