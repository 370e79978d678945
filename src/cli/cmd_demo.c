/* SPDX-License-Identifier: MIT */
/*
 * cmd_demo.c — `trellohook demo`: the whole product on one machine, without a
 * Trello account (what `make run` starts when no Trello variables are set).
 *
 * It starts two children — trello-mock (state in DIR/mock.json) and
 * `trellohook serve` (store DIR/trellohook.db) wired to it — seeds a board
 * (first run only; ids kept in DIR/demo.json), registers a webhook on it
 * through the normal add path (the mock really HEAD-checks serve), adds an
 * example exec handler, sets a fresh random password for the admin user
 * `admin`, performs a few actions on the mock, waits until the handler ran
 * for them, prints
 *
 *   demo ready: admin http://HOST:PORT/admin/ user admin password PASSWORD
 *
 * and what to try next, then serves until SIGINT/SIGTERM. Children get
 * SIGTERM, then SIGKILL after a timeout; they also die with us
 * (PR_SET_PDEATHSIG) and live in their own process group, so a Ctrl-C in the
 * terminal reaches only the demo, which stops them in order. Their output
 * goes to DIR/mock.log and DIR/serve.log; the handler's lines are echoed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/demo.h"
#include "http/client.h"
#include "service/handlers.h"
#include "service/service.h"

extern char **environ;

/* trello-mock's fixed, public demo credentials (docs/trello-mock.md): this
 * is a local toy, the secret protects nothing. */
#define DEMO_KEY "5f1d3c0b9a8e7d6c5b4a39281706f5e4"
#define DEMO_SECRET "7d3c1b9a8f6e4d2c0b1a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19081726"
#define DEMO_BOARD "Demo board"
#define DEMO_USER "admin"
#define DEMO_WEBHOOK_DESC "Demo board (trellohook demo)"
#define DEMO_MOCK_LISTEN "127.0.0.1:8001"
/* ---- small helpers ------------------------------------------------------------ */

static int path_in(const demo *d, const char *name, char *out, size_t outsz)
{
	return str_printf(out, outsz, "%s/%s", d->dir, name) ? 0 : -1;
}

/* mkdir -p for @path (mode 0700: it will hold a password hash and tokens). */
static int mkdirs(const char *path)
{
	char p[PATH_MAX];
	if (!str_copy(p, sizeof p, path))
		return -1;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return (mkdir(p, 0700) && errno != EEXIST) ? -1 : 0;
}

/* Quote @s for /bin/sh in single quotes. */
static int sh_quote(buf *b, const char *s)
{
	int rc = buf_putc(b, '\'');
	for (; !rc && *s; s++)
		rc = *s == '\'' ? buf_puts(b, "'\\''") : buf_putc(b, *s);
	return rc ? rc : buf_putc(b, '\'');
}

/* A password of 20 characters from [A-Za-z0-9] (about 119 bits). */
static int random_password(char out[21])
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t k = 0;
	while (k < 20) {
		unsigned char r[32];
		if (rand_fill(r, sizeof r))
			return -1;
		for (size_t i = 0; i < sizeof r && k < 20; i++)
			if (r[i] < 248) /* 248 = 4 * 62: no modulo bias */
				out[k++] = alphabet[r[i] % 62];
	}
	out[20] = '\0';
	return 0;
}

/* A token of the ATTA form: "ATTA" + 64 lowercase hex + 8 uppercase hex. */
static int random_token(char out[80])
{
	unsigned char r[36];
	if (rand_fill(r, sizeof r))
		return -1;
	buf b;
	buf_init(&b, 79);
	int rc = buf_puts(&b, "ATTA");
	for (size_t i = 0; !rc && i < 32; i++)
		rc = buf_printf(&b, "%02x", r[i]);
	for (size_t i = 32; !rc && i < 36; i++)
		rc = buf_printf(&b, "%02X", r[i]);
	if (!rc)
		str_copy(out, 80, b.data);
	buf_free(&b);
	return rc;
}

/* A free TCP port on @host (bound, then closed), for a --listen with port 0:
 * CALLBACK_DOMAIN must name serve's port before serve starts. */
static int free_port(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof sa;
	int rc = -1;
	if (!bind(s, (struct sockaddr *)&sa, sizeof sa) &&
	    !getsockname(s, (struct sockaddr *)&sa, &len)) {
		*port = ntohs(sa.sin_port);
		rc = 0;
	}
	close(s);
	return rc;
}

/* ---- demo.json ---------------------------------------------------------------- */

static int state_load(demo *d)
{
	char p[PATH_MAX];
	if (path_in(d, "demo.json", p, sizeof p))
		return cli_fail(EXIT_FAIL, "demo: data directory path too long");
	if (access(p, F_OK)) {
		d->state = json_object();
		return d->state ? 0 : cli_fail(EXIT_FAIL, "out of memory");
	}
	json_error_t jerr;
	d->state = json_load_file(p, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(d->state))
		return cli_fail(EXIT_FAIL,
		                "demo: %s is damaged (%s); remove the directory %s to start "
		                "over",
		                p, jerr.text, d->dir_shown);
	return 0;
}

static int state_save(const demo *d)
{
	char p[PATH_MAX], tmp[PATH_MAX];
	if (path_in(d, "demo.json", p, sizeof p) || path_in(d, "demo.json.tmp", tmp, sizeof tmp))
		return cli_fail(EXIT_FAIL, "demo: data directory path too long");
	if (json_dump_file(d->state, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) || rename(tmp, p))
		return cli_fail(EXIT_FAIL, "demo: cannot write %s: %s", p, strerror(errno));
	return 0;
}

static const char *state_str(const demo *d, const char *key)
{
	return json_string_value(json_object_get(d->state, key));
}

/* ---- the mock's control API and Trello routes ------------------------------------ */

/* @method @url (relative to the mock's base) with @body (JSON, stolen, may be
 * NULL); *out gets the parsed answer (NULL when not JSON). Fails unless 2xx. */
static int mock_call_q(const demo *d, const char *method, const char *route, json_t *body,
                       json_t **out, bool quiet)
{
	/* messages name the route without its query (it carries the token) */
	int rlen = (int)strcspn(route, "?");
	int rc = EXIT_FAIL;
	char url[1024];
	char *text = NULL;
	httpc *hc = NULL;
	httpc_resp resp;
	httpc_resp_init(&resp);
	*out = NULL;
	httpc_opts o = HTTPC_OPTS_INIT;
	o.timeout_ms = 60000; /* "wait": true lasts until the deliveries are done */
	o.connect_timeout_ms = 5000;
	o.max_body = MOCK_BODY_MAX;
	o.component = "demo";
	th_error err = {0, {0}};
	if (httpc_new(&hc, &o, &err)) {
		if (!quiet)
			cli_fail(EXIT_FAIL, "demo: %s", err.msg);
		goto out;
	}
	if (!str_printf(url, sizeof url, "%s%s", d->mock_base, route))
		goto out;
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		goto out;
	const char *hdrs[] = {"Content-Type: application/json"};
	httpc_req req = {.method = method,
	                 .url = url,
	                 .headers = hdrs,
	                 .nheaders = 1,
	                 .body = text,
	                 .body_len = text ? strlen(text) : 0};
	if (httpc_perform(hc, &req, &resp)) {
		if (!quiet)
			cli_fail(EXIT_FAIL, "demo: %s %.*s: %s", method, rlen, route, resp.error);
		goto out;
	}
	if (resp.body.len)
		*out = json_loadb(resp.body.data, resp.body.len, 0, NULL);
	if (resp.status / 100 != 2) {
		if (!quiet)
			cli_fail(EXIT_FAIL, "demo: %s %.*s: the mock answered %ld %.200s", method,
			         rlen, route, resp.status, resp.body.data ? resp.body.data : "");
		json_decref(*out);
		*out = NULL;
		goto out;
	}
	rc = 0;
out:
	json_decref(body);
	free(text);
	httpc_resp_clear(&resp);
	httpc_free(hc);
	return rc;
}

static int mock_call(const demo *d, const char *method, const char *route, json_t *body,
                     json_t **out)
{
	return mock_call_q(d, method, route, body, out, false);
}

/* ---- set-up steps ---------------------------------------------------------------- */

/* The board, its lists and cards: reused when the mock still has it. */
static int ensure_board(demo *d)
{
	json_t *ans = NULL;
	const char *id = state_str(d, "board_id");
	if (id) {
		char route[512];
		str_printf(route, sizeof route, "/1/boards/%s?key=%s&token=%s", id, DEMO_KEY,
		           d->token);
		if (!mock_call_q(d, "GET", route, NULL, &ans, true)) {
			json_decref(ans);
			return 0;
		}
		fprintf(stderr, "demo: the mock no longer has the demo board; seeding a new one\n");
	}
	if (mock_call(d, "POST", "/_mock/boards", json_pack("{s:s}", "name", DEMO_BOARD), &ans))
		return EXIT_FAIL;
	json_t *lists = json_object_get(ans, "lists");
	const char *bid = json_string_value(json_object_get(ans, "id"));
	const char *todo = json_string_value(json_object_get(json_array_get(lists, 0), "id"));
	const char *doing = json_string_value(json_object_get(json_array_get(lists, 1), "id"));
	const char *url = json_string_value(json_object_get(ans, "url"));
	int rc = EXIT_FAIL;
	json_t *done = NULL, *card = NULL;
	if (!bid || !todo || !doing) {
		cli_fail(EXIT_FAIL, "demo: unexpected answer from POST /_mock/boards");
		goto out;
	}
	if (mock_call(d, "POST", "/_mock/lists",
	              json_pack("{s:s,s:s}", "idBoard", bid, "name", "Done"), &done))
		goto out;
	const char *cards[] = {"Read the README", "Try trellohook trigger", "Write a handler"};
	for (size_t i = 0; i < TH_ARRAY_LEN(cards); i++) {
		if (mock_call(d, "POST", "/_mock/cards",
		              json_pack("{s:s,s:s}", "idList", todo, "name", cards[i]), &card))
			goto out;
		json_decref(card);
		card = NULL;
	}
	const char *done_id = json_string_value(json_object_get(done, "id"));
	if (json_object_set_new(d->state, "board_id", json_string(bid)) ||
	    json_object_set_new(d->state, "board_url", json_string(url ? url : "")) ||
	    json_object_set_new(d->state, "list_todo", json_string(todo)) ||
	    json_object_set_new(d->state, "list_doing", json_string(doing)) ||
	    json_object_set_new(d->state, "list_done", json_string(done_id ? done_id : doing)) ||
	    json_object_set_new(d->state, "runs", json_integer(0)))
		goto out;
	rc = state_save(d);
out:
	json_decref(ans);
	json_decref(done);
	return rc;
}

/* The admin user with a new random password (printed by the caller). */
static int reset_admin(svc_ctx *sc, char pw[21])
{
	th_error err = {0, {0}};
	if (random_password(pw))
		return cli_fail(EXIT_FAIL, "demo: no randomness for the admin password");
	if (svc_user_set(sc, DEMO_USER, pw, strlen(pw), &err))
		return cli_fail(EXIT_FAIL, "demo: admin user: %s", err.msg);
	return 0;
}

/* A webhook on the board pointing at this serve, through the normal add path
 * (the mock HEAD-checks the callback URL). Stale ones (another address) go. */
static int ensure_webhook(demo *d, svc_ctx *sc, char *wid, size_t widsz)
{
	const char *board = state_str(d, "board_id");
	webhook *ws = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	trello_client *tc = NULL;
	int rc = EXIT_FAIL;
	wid[0] = '\0';
	if (svc_trello_client(sc, &tc, &err) || svc_webhook_rows(sc, &ws, &n, &err)) {
		cli_fail_err(&err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		/* ours: on the board, or made by an earlier demo on a board the mock lost */
		if (!str_eq(ws[i].id_model, board) && !str_eq(ws[i].description, DEMO_WEBHOOK_DESC))
			continue;
		if (!wid[0] && str_eq(ws[i].id_model, board) && ws[i].state == WEBHOOK_ACTIVE &&
		    svc_callback_is_ours(sc, ws[i].callback_url, wid, widsz))
			continue; /* keep the first good one */
		enum webhook_rm_outcome oc;
		if (svc_webhook_rm(sc, tc, ws[i].id, &oc, &err))
			fprintf(stderr, "demo: could not remove the old webhook %s: %s\n", ws[i].id,
			        err.msg);
	}
	if (!wid[0]) {
		webhook_add_opts o = {board, d->token, DEMO_WEBHOOK_DESC};
		webhook w;
		char note[256];
		if (svc_webhook_add(sc, tc, &o, &w, note, sizeof note, &err)) {
			cli_fail(EXIT_FAIL, "demo: webhook add: %s", err.msg);
			goto out;
		}
		str_copy(wid, widsz, w.id);
		webhook_clear(&w);
	}
	rc = 0;
out:
	webhook_list_free(ws, n);
	trello_client_free(tc);
	return rc;
}

/* The example handler: prints each event's summary (and appends it to
 * DIR/handler.log, which the demo echoes). Added once. */
static int ensure_handler(demo *d, svc_ctx *sc)
{
	buf cmd;
	buf_init(&cmd, 2 * PATH_MAX);
	char logp[PATH_MAX];
	handler *hs = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	int rc = EXIT_FAIL;
	if (path_in(d, "handler.log", logp, sizeof logp) ||
	    buf_puts(&cmd, "echo \"[handler] $TRELLO_SUMMARY\" | tee -a ") ||
	    sh_quote(&cmd, logp)) {
		cli_fail(EXIT_FAIL, "demo: data directory path too long");
		goto out;
	}
	if (svc_handler_list(sc, &hs, &n, &err)) {
		cli_fail_err(&err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (hs[i].kind == HANDLER_EXEC && str_eq(hs[i].target, cmd.data)) {
			rc = 0;
			goto out;
		}
	handler_spec spec = {HANDLER_EXEC, cmd.data, NULL, NULL};
	handler h;
	memset(&h, 0, sizeof h);
	if (handlers_add(sc, &spec, &h, &err)) {
		cli_fail_err(&err);
		goto out;
	}
	handler_clear(&h);
	rc = 0;
out:
	handler_list_free(hs, n);
	buf_free(&cmd);
	return rc;
}

/* One action on the mock; its id is appended to @ids. */
static int act(demo *d, json_t *body, json_t *ids, json_t **out_action)
{
	json_t *ans = NULL;
	if (json_object_set_new(body, "wait", json_true()) ||
	    mock_call(d, "POST", "/_mock/actions", body, &ans))
		return EXIT_FAIL;
	json_t *action = json_object_get(ans, "action");
	json_t *id = json_object_get(action, "id");
	int rc = json_is_string(id) && !json_array_append(ids, id) ? 0 : EXIT_FAIL;
	if (rc)
		cli_fail(EXIT_FAIL, "demo: unexpected answer from POST /_mock/actions");
	if (out_action && !rc)
		*out_action = json_incref(action);
	json_decref(ans);
	return rc;
}

/* A few actions on a new card: create, comment, move, label. */
static int perform_actions(demo *d, json_t *ids, char *card_id, size_t cardsz)
{
	const char *todo = state_str(d, "list_todo"), *doing = state_str(d, "list_doing");
	json_int_t run = json_integer_value(json_object_get(d->state, "runs")) + 1;
	if (json_object_set_new(d->state, "runs", json_integer(run)) || state_save(d))
		return EXIT_FAIL;
	char name[64];
	str_printf(name, sizeof name, "Demo card #%lld", (long long)run);
	json_t *created = NULL;
	if (act(d,
	        json_pack("{s:s,s:s,s:s,s:s}", "type", "createCard", "idModel", todo, "idList",
	                  todo, "name", name),
	        ids, &created))
		return EXIT_FAIL;
	const char *cid = json_string_value(
	    json_object_get(json_object_get(json_object_get(created, "data"), "card"), "id"));
	str_copy(card_id, cardsz, cid ? cid : "");
	json_decref(created);
	if (!card_id[0])
		return cli_fail(EXIT_FAIL, "demo: the mock did not say which card it created");
	if (act(d,
	        json_pack("{s:s,s:s,s:s}", "type", "commentCard", "idModel", card_id, "text",
	                  "Looks good \xF0\x9F\x9A\x80"),
	        ids, NULL) ||
	    act(d,
	        json_pack("{s:s,s:s,s:s}", "type", "updateCard", "idModel", card_id, "idList",
	                  doing),
	        ids, NULL) ||
	    act(d,
	        json_pack("{s:s,s:s,s:{s:s,s:s}}", "type", "addLabelToCard", "idModel", card_id,
	                  "label", "name", "demo", "color", "green"),
	        ids, NULL))
		return EXIT_FAIL;
	return 0;
}

/* Wait until every action of @ids is stored on webhook @wid and its
 * deliveries are done. Prints a warning (not a failure) on timeout. */
static void wait_handled(svc_ctx *sc, const char *wid, json_t *ids)
{
	int64_t deadline = time_mono_ms() + HANDLED_TIMEOUT_MS;
	size_t ok = 0;
	while (time_mono_ms() < deadline) {
		event_query q;
		memset(&q, 0, sizeof q);
		q.webhook_id = wid;
		q.limit = 200;
		event_row *rows = NULL;
		size_t n = 0;
		th_error err = {0, {0}};
		ok = 0;
		if (!svc_event_list(sc, &q, &rows, &n, &err)) {
			for (size_t k = 0; k < json_array_size(ids); k++) {
				const char *aid = json_string_value(json_array_get(ids, k));
				for (size_t i = 0; i < n; i++) {
					if (!str_eq(rows[i].ev.action_id, aid))
						continue;
					delivery *ds = NULL;
					size_t nd = 0;
					bool done = !svc_delivery_list(sc, NULL, rows[i].ev.id, 100,
					                               &ds, &nd, &err) &&
					            nd > 0;
					for (size_t j = 0; done && j < nd; j++)
						done = ds[j].status == DELIVERY_DONE;
					delivery_list_free(ds, nd);
					ok += done;
					break;
				}
			}
			event_row_list_free(rows, n);
		}
		if (ok == json_array_size(ids))
			return;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr,
	        "demo: after %d s only %zu of %zu actions were stored and handled; see "
	        "`trellohook deliveries ls`\n",
	        HANDLED_TIMEOUT_MS / 1000, ok, json_array_size(ids));
}

/* Echo new lines of DIR/handler.log. */
static void echo_handler_log(demo *d)
{
	if (d->handler_log < 0) {
		char p[PATH_MAX];
		if (path_in(d, "handler.log", p, sizeof p))
			return;
		/* created when missing, so the handler's first lines are not skipped */
		d->handler_log = open(p, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
		if (d->handler_log < 0)
			return;
		if (lseek(d->handler_log, 0, SEEK_END) < 0) {
			close(d->handler_log);
			d->handler_log = -1;
			return;
		}
	}
	char tmp[4096];
	ssize_t n;
	while ((n = read(d->handler_log, tmp, sizeof tmp)) > 0)
		fwrite(tmp, 1, (size_t)n, stdout);
	fflush(stdout);
}

static void print_ready(const demo *d, const char *pw, const char *card)
{
	const char *done = state_str(d, "list_done");
	printf("demo ready: admin %s/admin/ user %s password %s\n", d->domain, DEMO_USER, pw);
	printf(
	    "\nTry next (another terminal, this directory):\n"
	    "  DATABASE_URL=sqlite:%s/trellohook.db %s events ls\n"
	    "  DATABASE_URL=sqlite:%s/trellohook.db TRELLO_API_SECRET=%s %s trigger commentCard\n"
	    "  curl -s -X POST %s/_mock/actions -H 'Content-Type: application/json' \\\n"
	    "       -d '{\"type\":\"updateCard\",\"idModel\":\"%s\",\"idList\":\"%s\"}'   # move a card\n"
	    "  %s trigger --list                     # every action type trigger can send\n"
	    "State: %s/ (logs: mock.log, serve.log, handler.log). Ctrl-C stops everything.\n\n",
	    d->dir_shown, d->bin_shown, d->dir_shown, DEMO_SECRET, d->bin_shown, d->mock_base, card,
	    done ? done : "", d->bin_shown, d->dir_shown);
	fflush(stdout);
}

/* ---- the command ------------------------------------------------------------------- */

static int resolve_paths(demo *d, const char *dir)
{
	ssize_t n = readlink("/proc/self/exe", d->self, sizeof d->self - 1);
	if (n <= 0)
		return cli_fail(EXIT_FAIL, "demo: cannot find our own binary (/proc/self/exe)");
	d->self[n] = '\0';
	char cwd[PATH_MAX];
	size_t cl;
	if (getcwd(cwd, sizeof cwd) && (cl = strlen(cwd)) > 1 && strncmp(d->self, cwd, cl) == 0 &&
	    d->self[cl] == '/')
		str_copy(d->bin_shown, sizeof d->bin_shown, d->self + cl + 1);
	else
		str_copy(d->bin_shown, sizeof d->bin_shown, d->self);
	/* trello-mock next to us (build/, or PREFIX/bin), else on PATH */
	char *slash = strrchr(d->self, '/');
	d->mock_bin[0] = '\0';
	if (slash &&
	    str_printf(d->mock_bin, sizeof d->mock_bin, "%.*s/trello-mock", (int)(slash - d->self),
	               d->self) &&
	    access(d->mock_bin, X_OK) != 0)
		d->mock_bin[0] = '\0';
	if (mkdirs(dir))
		return cli_fail(EXIT_FAIL, "demo: cannot create the data directory %s: %s", dir,
		                strerror(errno));
	if (!realpath(dir, d->dir))
		return cli_fail(EXIT_FAIL, "demo: %s: %s", dir, strerror(errno));
	return 0;
}

/* Where serve listens and what CALLBACK_DOMAIN says (a port 0 is chosen now). */
static int resolve_listen(demo *d, const char *listen)
{
	char host[256];
	uint16_t port;
	if (net_parse_listen(listen, host, sizeof host, &port))
		return cli_fail(EXIT_USAGE,
		                "demo: --listen %s: expected HOST:PORT, e.g. 127.0.0.1:8000",
		                listen);
	if (port == 0 && free_port(&port))
		return cli_fail(EXIT_FAIL, "demo: no free port for serve");
	bool v6 = strchr(host, ':') != NULL;
	const char *shown = (str_eq(host, "0.0.0.0") || str_eq(host, "::")) ? "127.0.0.1" : host;
	str_printf(d->listen, sizeof d->listen, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
	str_printf(d->domain, sizeof d->domain,
	           strchr(shown, ':') ? "http://[%s]:%u" : "http://%s:%u", shown, (unsigned)port);
	return 0;
}

static int open_log(const demo *d, const char *name)
{
	char p[PATH_MAX];
	if (path_in(d, name, p, sizeof p))
		return -1;
	return open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* Start both children and wait for their ready lines. */
static int start_children(demo *d)
{
	char state[PATH_MAX], url[512];
	if (path_in(d, "mock.json", state, sizeof state))
		return cli_fail(EXIT_FAIL, "demo: data directory path too long");
	char *margv[] = {d->mock_bin[0] ? d->mock_bin : (char *)"trello-mock",
	                 (char *)"--listen",
	                 (char *)d->mock_listen,
	                 (char *)"--key",
	                 (char *)DEMO_KEY,
	                 (char *)"--secret",
	                 (char *)DEMO_SECRET,
	                 (char *)"--token",
	                 d->token,
	                 (char *)"--state",
	                 state,
	                 (char *)"--retry-delays",
	                 (char *)"1,2,4",
	                 NULL};
	if (demo_child_start(d, &d->mock, d->mock_bin[0] ? d->mock_bin : NULL, margv, environ) ||
	    demo_child_ready(d, &d->mock, "", url, sizeof url))
		return EXIT_FAIL;
	if (!str_ends(url, "/1"))
		return cli_fail(EXIT_FAIL, "demo: trello-mock printed '%.100s', not its base URL",
		                url);
	str_copy(d->mock_url, sizeof d->mock_url, url);
	str_printf(d->mock_base, sizeof d->mock_base, "%.*s", (int)(strlen(url) - 2), url);

	/* serve's configuration crosses as its environment */
	char v[7][1200];
	str_printf(v[0], sizeof v[0], "DATABASE_URL=sqlite:%s/trellohook.db", d->dir);
	str_printf(v[1], sizeof v[1], "TRELLO_API_URL=%s", d->mock_url);
	str_printf(v[2], sizeof v[2], "TRELLO_AUTH_URL=%s/authorize", d->mock_url);
	str_printf(v[3], sizeof v[3], "TRELLO_API_KEY=%s", DEMO_KEY);
	str_printf(v[4], sizeof v[4], "TRELLO_API_SECRET=%s", DEMO_SECRET);
	str_printf(v[5], sizeof v[5], "CALLBACK_DOMAIN=%s", d->domain);
	str_printf(v[6], sizeof v[6], "TRELLOHOOK_LISTEN=%s", d->listen);
	const char *vars[7] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
	char **env = demo_serve_env(vars, 7);
	if (!env)
		return cli_fail(EXIT_FAIL, "out of memory");
	char *sargv[] = {d->self, (char *)"serve", NULL};
	int rc = demo_child_start(d, &d->serve, d->self, sargv, env);
	free(env);
	char served[512];
	if (rc || demo_child_ready(d, &d->serve, "serving ", served, sizeof served))
		return EXIT_FAIL;
	return 0;
}

/* Apply the demo's configuration to this process (for the service calls). */
static int configure(demo *d, th_config *cfg)
{
	char db[PATH_MAX + 16];
	th_error err = {0, {0}};
	str_printf(db, sizeof db, "sqlite:%s/trellohook.db", d->dir);
	char auth[600];
	str_printf(auth, sizeof auth, "%s/authorize", d->mock_url);
	if (config_set(cfg, "DATABASE_URL", db, &err) ||
	    config_set(cfg, "TRELLO_API_URL", d->mock_url, &err) ||
	    config_set(cfg, "TRELLO_AUTH_URL", auth, &err) ||
	    config_set(cfg, "TRELLO_API_KEY", DEMO_KEY, &err) ||
	    config_set(cfg, "TRELLO_API_SECRET", DEMO_SECRET, &err) ||
	    config_set(cfg, "CALLBACK_DOMAIN", d->domain, &err) ||
	    config_set(cfg, "TRELLOHOOK_LISTEN", d->listen, &err))
		return cli_fail_err(&err);
	return 0;
}

/* Serve until a signal or a child's death. Returns 0 on a signal. */
static int serve_loop(demo *d)
{
	for (;;) {
		struct pollfd p[3] = {
		    {d->sigfd, POLLIN, 0}, {d->mock.out, POLLIN, 0}, {d->serve.out, POLLIN, 0}};
		int n = poll(p, 3, 250);
		if (n < 0 && errno != EINTR)
			return cli_fail(EXIT_FAIL, "demo: poll: %s", strerror(errno));
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			ssize_t r = read(d->sigfd, &si, sizeof si);
			(void)r;
			fprintf(stderr, "\ndemo: stopping (serve, then trello-mock)\n");
			return 0;
		}
		demo_child_drain(&d->mock);
		demo_child_drain(&d->serve);
		echo_handler_log(d);
		child *kids[2] = {&d->serve, &d->mock};
		for (size_t i = 0; i < 2; i++) {
			int status;
			if (kids[i]->pid > 0 &&
			    waitpid(kids[i]->pid, &status, WNOHANG) == kids[i]->pid) {
				kids[i]->pid = 0;
				return cli_fail(EXIT_FAIL,
				                "demo: %s exited unexpectedly (see %s/%s.log)",
				                kids[i]->name, d->dir_shown, i ? "mock" : "serve");
			}
		}
	}
}

int cmd_demo(cli *c, int argc, char **argv)
{
	const char *dir = "demo-data";
	demo d;
	memset(&d, 0, sizeof d);
	d.mock_listen = DEMO_MOCK_LISTEN;
	d.mock = (child){"trello-mock", 0, -1, -1};
	d.serve = (child){"serve", 0, -1, -1};
	d.sigfd = -1;
	d.handler_log = -1;
	bool exit_after = str_eq(getenv("TRELLOHOOK_DEMO_EXIT"), "1");
	const cli_flag flags[] = {CLI_BOOL("--exit-after-setup", &exit_after),
	                          CLI_STR("--data-dir", &dir),
	                          CLI_STR("--mock-listen", &d.mock_listen)};
	int prc = CLI_PARSE(c, argc, argv, flags, NULL, NULL);
	if (prc)
		return prc;
	if (!dir[0])
		return cli_fail(EXIT_USAGE, "demo: --data-dir is empty");
	{
		char h[256];
		uint16_t p;
		if (net_parse_listen(d.mock_listen, h, sizeof h, &p))
			return cli_fail(EXIT_USAGE,
			                "demo: --mock-listen %s: expected HOST:PORT, e.g. "
			                "127.0.0.1:8001 (port 0 picks one)",
			                d.mock_listen);
	}
	d.dir_shown = dir;
	/* keep the terminal for the demo's own lines unless a level was asked for */
	if (!getenv("TRELLOHOOK_LOG_LEVEL") && c->cfg.log_level == LOG_INFO) {
		c->cfg.log_level = LOG_WARN; /* the app (opened later) sets up logging from it */
		log_setup(LOG_WARN, c->cfg.log_format);
	}
	int rc = EXIT_FAIL;
	json_t *ids = json_array();
	char wid[64], card[32], pw[21] = "";
	if (!ids)
		return cli_fail(EXIT_FAIL, "out of memory");

	/* SIGINT/SIGTERM arrive on a descriptor; children get the old mask back */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, &d.oldmask) ||
	    (d.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		rc = cli_fail(EXIT_FAIL, "demo: signals: %s", strerror(errno));
		goto out;
	}
	if ((rc = resolve_paths(&d, dir)) || (rc = resolve_listen(&d, c->cfg.listen)) ||
	    (rc = state_load(&d)))
		goto out;
	rc = EXIT_FAIL;
	const char *tok = state_str(&d, "token");
	if (tok && str_is_trello_token(tok)) {
		str_copy(d.token, sizeof d.token, tok);
	} else if (random_token(d.token) ||
	           json_object_set_new(d.state, "token", json_string(d.token)) || state_save(&d)) {
		cli_fail(EXIT_FAIL, "demo: cannot make the demo token");
		goto out;
	}
	d.mock.log = open_log(&d, "mock.log");
	d.serve.log = open_log(&d, "serve.log");
	if (d.mock.log < 0 || d.serve.log < 0) {
		cli_fail(EXIT_FAIL, "demo: cannot open the logs in %s: %s", d.dir_shown,
		         strerror(errno));
		goto out;
	}
	fprintf(stderr, "demo: starting trello-mock and trellohook serve (state in %s/)\n",
	        d.dir_shown);
	if (start_children(&d) || configure(&d, &c->cfg))
		goto out;
	fprintf(stderr, "demo: trello-mock at %s, trellohook at %s\n", d.mock_base, d.domain);
	svc_ctx *sc;
	if (cli_svc(c, &sc))
		goto out;
	th_error err = {0, {0}};
	if (ensure_board(&d) || svc_token_remember(sc, d.token, &err) ||
	    ensure_webhook(&d, sc, wid, sizeof wid) || ensure_handler(&d, sc) ||
	    reset_admin(sc, pw)) {
		if (err.msg[0])
			cli_fail_err(&err);
		goto out;
	}
	fprintf(stderr, "demo: webhook %s watches \"%s\"; performing a few actions\n", wid,
	        DEMO_BOARD);
	echo_handler_log(&d); /* from here on, new handler lines are shown */
	if (perform_actions(&d, ids, card, sizeof card))
		goto out;
	wait_handled(sc, wid, ids);
	echo_handler_log(&d);
	print_ready(&d, pw, card);
	rc = exit_after ? 0 : serve_loop(&d);
out:
	sodium_memzero(pw, sizeof pw);
	if (d.serve.pid > 0 && demo_child_stop(&d.serve) && !rc)
		rc = cli_fail(EXIT_FAIL, "demo: serve did not stop cleanly (see %s/serve.log)",
		              d.dir_shown);
	if (d.mock.pid > 0 && demo_child_stop(&d.mock) && !rc)
		rc = cli_fail(EXIT_FAIL, "demo: trello-mock did not stop cleanly (see %s/mock.log)",
		              d.dir_shown);
	if (d.mock.log >= 0)
		close(d.mock.log);
	if (d.serve.log >= 0)
		close(d.serve.log);
	if (d.handler_log >= 0)
		close(d.handler_log);
	if (d.sigfd >= 0)
		close(d.sigfd);
	json_decref(ids);
	json_decref(d.state);
	/* SIGINT/SIGTERM stay blocked: a second Ctrl-C while exiting changes nothing */
	return rc;
}
