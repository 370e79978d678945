/* SPDX-License-Identifier: MIT */
/* cmd_events.c — events ls / show / tail. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "service/service.h"

/* An event as JSON (INTERFACE.md field names); payload only when @with_payload. */
static json_t *event_json(const event *ev, bool with_payload)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "id", cli_jstr(ev->id));
	json_object_set_new(o, "webhook_id", cli_jstr(ev->webhook_id));
	json_object_set_new(o, "action_id", cli_jstr(ev->action_id));
	json_object_set_new(o, "action_type", cli_jstr(ev->action_type));
	json_object_set_new(o, "action_date", cli_jstr(ev->action_date));
	json_object_set_new(o, "model_id", cli_jstr(ev->model_id));
	json_object_set_new(o, "member", cli_jstr(ev->member));
	/* the names as the payload had them (a card move: the list it went to) */
	json_object_set_new(o, "member_id", cli_jstr(ev->member_id));
	json_object_set_new(o, "member_name", cli_jstr(ev->member));
	json_object_set_new(o, "board_id", cli_jstr(ev->board_id));
	json_object_set_new(o, "board_name", cli_jstr(ev->board_name));
	json_object_set_new(o, "list_id", cli_jstr(ev->list_id));
	json_object_set_new(o, "list_name", cli_jstr(ev->list_name));
	json_object_set_new(o, "card_id", cli_jstr(ev->card_id));
	json_object_set_new(o, "card_name", cli_jstr(ev->card_name));
	json_object_set_new(o, "summary", cli_jstr(ev->summary));
	json_object_set_new(o, "source", json_string(event_source_name(ev->source)));
	json_object_set_new(o, "received_at", cli_jtime(ev->received_at));
	if (with_payload) {
		/* the exact bytes; jansson refuses invalid UTF-8, which a stored Trello body is not
		 */
		json_t *p = ev->payload ? json_stringn(ev->payload, ev->payload_len) : json_null();
		json_object_set_new(o, "payload", p ? p : json_null());
	}
	return o;
}

/* The colour of an action type on a terminal, by what it does. */
static const char *type_colour(const char *type)
{
	if (!type)
		return "\033[2m"; /* dim */
	if (str_starts(type, "create") || str_starts(type, "add") || str_starts(type, "copy"))
		return "\033[32m"; /* green */
	if (str_starts(type, "delete") || str_starts(type, "remove"))
		return "\033[31m"; /* red */
	if (str_starts(type, "comment"))
		return "\033[36m"; /* cyan */
	if (str_starts(type, "update") || str_starts(type, "move") || str_starts(type, "convert"))
		return "\033[33m"; /* yellow */
	return "\033[35m";         /* magenta: anything else */
}

/* One line of `events tail`: id, time, type, summary. Values are escaped (a
 * summary quotes card names, anyone's text); with @colour the type has its
 * colour and the summary is bold. */
static void print_event_line(const event *ev, bool colour)
{
	char when[32], type[200], summary[1300];
	time_format_iso(ev->received_at, when);
	size_t tw = cli_cell_format(ev->action_type ? ev->action_type : "-", 30, type, sizeof type);
	cli_cell_format(ev->summary ? ev->summary : "", 200, summary, sizeof summary);
	int pad = tw < 26 ? (int)(26 - tw) : 0;
	if (colour)
		printf("%s  %s  %s%s\033[0m%*s \033[1m%s\033[0m\n", ev->id, when,
		       type_colour(ev->action_type), type, pad, "", summary);
	else
		printf("%s  %s  %s%*s %s\n", ev->id, when, type, pad, "", summary);
}

/* Colours for `events tail`: only on a terminal, never when NO_COLOR is set
 * (to anything, empty too) and never with --json. */
static bool want_colour(const cli *c)
{
	return !c->json && !getenv("NO_COLOR") && isatty(STDOUT_FILENO);
}

/* Shared flag parsing for ls and tail. */
static int parse_filters(cli *c, int argc, char **argv, event_query *q, bool allow_limit)
{
	for (int i = 0; i < argc; i++) {
		const char *v = NULL;
		int t;
		if ((t = cli_take_value(argc, argv, &i, "--webhook", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			q->webhook_id = v;
		} else if ((t = cli_take_value(argc, argv, &i, "--type", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			q->action_type = v;
		} else if (allow_limit && (t = cli_take_value(argc, argv, &i, "--limit", &v))) {
			int64_t n;
			if (t < 0)
				return EXIT_USAGE;
			if (num_parse_i64(v, 1, 1000, &n))
				return cli_fail(
				    EXIT_USAGE,
				    "--limit: expected a whole number from 1 to 1000, got '%s'", v);
			q->limit = (size_t)n;
		} else if (allow_limit && (t = cli_take_value(argc, argv, &i, "--search", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			q->text = v;
		} else {
			return cli_unexpected(c, argv[i]);
		}
	}
	return 0;
}

static json_t *event_item_json(const void *item, void *ctx)
{
	(void)ctx;
	return event_json(&((const event_row *)item)->ev, false);
}

static void event_row_cells(const void *item, void *ctx, const char **cells, cli_cell_buf *scratch)
{
	const event *ev = &((const event_row *)item)->ev;
	(void)ctx;
	time_format_iso(ev->received_at, scratch[1]);
	const char *row[] = {ev->id, scratch[1], ev->action_type, ev->summary ? ev->summary : ""};
	memcpy(cells, row, sizeof row);
}

static const cli_col event_cols[] = {
    {"ID", 0, false}, {"RECEIVED", 0, false}, {"TYPE", 30, false}, {"SUMMARY", 80, false}};

int cmd_events_ls(cli *c, int argc, char **argv)
{
	event_query q = {0};
	int rc = parse_filters(c, argc, argv, &q, true);
	svc_ctx *sc;
	if (rc || (rc = cli_svc(c, &sc)))
		return rc;
	event_row *rows = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	if (svc_event_list(sc, &q, &rows, &n, &err))
		return cli_fail_err(&err);
	const cli_list l = {event_cols,
	                    TH_ARRAY_LEN(event_cols),
	                    event_item_json,
	                    event_row_cells,
	                    q.webhook_id || q.action_type ? "no events match" : "no events yet",
	                    NULL};
	rc = cli_print_list(c, rows, n, sizeof *rows, &l);
	event_row_list_free(rows, n);
	return rc;
}

int cmd_events_show(cli *c, int argc, char **argv)
{
	svc_ctx *sc;
	int rc = cli_svc_one(c, argc, "event id (see events ls)", &sc);
	if (rc)
		return rc;
	event ev = {0};
	th_error err = {0, {0}};
	rc = svc_event_get(sc, argv[0], &ev, &err);
	if (rc)
		return cli_fail_err(&err);
	if (event_fill_from_payload(&ev)) {
		event_clear(&ev);
		return cli_fail(EXIT_FAIL, "out of memory reading event %s", argv[0]);
	}
	if (c->json) {
		rc = cli_print_json(event_json(&ev, true));
		event_clear(&ev);
		return rc;
	}
	char when[32];
	time_format_iso(ev.received_at, when);
	printf("%s\n\n", ev.summary ? ev.summary : "");
	printf("event       %s\nwebhook     %s\naction      %s (%s)\naction date %s\n"
	       "model       %s\nboard       %s %s\nlist        %s %s\ncard        %s %s\n"
	       "member      %s\nreceived    %s\n\n",
	       ev.id, ev.webhook_id, ev.action_id, ev.action_type ? ev.action_type : "-",
	       ev.action_date ? ev.action_date : "-", ev.model_id ? ev.model_id : "-",
	       ev.board_id ? ev.board_id : "-", ev.board_name ? ev.board_name : "",
	       ev.list_id ? ev.list_id : "-", ev.list_name ? ev.list_name : "",
	       ev.card_id ? ev.card_id : "-", ev.card_name ? ev.card_name : "",
	       ev.member ? ev.member : "-", when);
	/* pretty-print the payload; fall back to the raw bytes if it does not parse */
	json_t *doc = json_loadb(ev.payload, ev.payload_len, 0, NULL);
	char *pretty = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (pretty)
		printf("%s\n", pretty);
	else
		fwrite(ev.payload, 1, ev.payload_len, stdout);
	free(pretty);
	json_decref(doc);
	event_clear(&ev);
	return EXIT_OK;
}

/* tail stops cleanly on SIGINT/SIGTERM; the flag is this command's own. */
static volatile sig_atomic_t tail_stop;
static void on_tail_signal(int sig)
{
	tail_stop = 1;
}

int cmd_events_tail(cli *c, int argc, char **argv)
{
	event_query q = {0};
	int rc = parse_filters(c, argc, argv, &q, false);
	svc_ctx *sc;
	if (rc || (rc = cli_svc(c, &sc)))
		return rc;
	signal(SIGINT, on_tail_signal);
	signal(SIGTERM, on_tail_signal);
	/* start after the newest event stored so far */
	event_row *rows = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	event_query first = q;
	first.limit = 1;
	if (svc_event_list(sc, &first, &rows, &n, &err))
		return cli_fail_err(&err);
	int64_t after = n ? rows[0].seq : 0;
	event_row_list_free(rows, n);
	bool colour = want_colour(c);
	fprintf(stderr, "following new events (Ctrl-C stops)\n");
	while (!tail_stop) {
		q.after_seq = after;
		q.oldest_first = true;
		q.limit = 200;
		if (svc_event_list(sc, &q, &rows, &n, &err)) {
			fprintf(stderr, "trellohook: %s (retrying)\n", err.msg);
			n = 0;
		}
		for (size_t i = 0; i < n; i++) {
			if (c->json) {
				char *line =
				    json_dumps(event_json(&rows[i].ev, false), JSON_COMPACT);
				if (line)
					puts(line);
				free(line);
			} else {
				print_event_line(&rows[i].ev, colour);
			}
			after = rows[i].seq;
		}
		fflush(stdout);
		event_row_list_free(rows, n);
		if (!n)
			usleep(200 * 1000);
	}
	return EXIT_OK;
}
