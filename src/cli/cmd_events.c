/* SPDX-License-Identifier: MIT */
/* cmd_events.c — events ls / show / tail. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "service/service.h"

/* An event's fields (INTERFACE.md names); the names as the payload had them
 * (a card move: the list it went to). */
static const cli_jfield event_fields[] = {CLI_JSTR(event, id),
                                          CLI_JSTR(event, webhook_id),
                                          CLI_JSTR(event, action_id),
                                          CLI_JSTR(event, action_type),
                                          CLI_JSTR(event, action_date),
                                          CLI_JSTR(event, model_id),
                                          CLI_JSTR(event, member),
                                          CLI_JSTR(event, member_id),
                                          CLI_JSTR_AS("member_name", event, member),
                                          CLI_JSTR(event, board_id),
                                          CLI_JSTR(event, board_name),
                                          CLI_JSTR(event, list_id),
                                          CLI_JSTR(event, list_name),
                                          CLI_JSTR(event, card_id),
                                          CLI_JSTR(event, card_name),
                                          CLI_JSTR(event, summary),
                                          CLI_JFN("source", cli_event_source_json),
                                          CLI_JTIME(event, received_at)};

/* An event as JSON; payload only when @with_payload. */
static json_t *event_json(const event *ev, bool with_payload)
{
	json_t *o = CLI_JSON_RECORD(ev, event_fields);
	if (o && with_payload) {
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

/* The filters of ls and tail (tail takes the first two only), then the
 * service. */
static int parse_filters(cli *c, int argc, char **argv, event_query *q, bool ls, svc_ctx **sc)
{
	int64_t limit = 0;
	const cli_flag flags[] = {
	    CLI_STR("--webhook", &q->webhook_id), CLI_STR("--type", &q->action_type),
	    CLI_INT("--limit", &limit, 1, 1000), CLI_STR("--search", &q->text)};
	int rc = cli_parse_flags(c, argc, argv, flags, ls ? TH_ARRAY_LEN(flags) : 2, NULL, NULL);
	q->limit = (size_t)limit;
	return rc ? rc : cli_svc(c, sc);
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
	svc_ctx *sc;
	int rc = parse_filters(c, argc, argv, &q, true, &sc);
	if (rc)
		return rc;
	event_row *rows = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	if (svc_event_list(sc, &q, &rows, &n, &err))
		return cli_fail_err(&err);
	const cli_list l =
	    CLI_LIST_OF(event_cols, event_item_json, event_row_cells,
	                q.webhook_id || q.action_type ? "no events match" : "no events yet", NULL);
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
	svc_ctx *sc;
	int rc = parse_filters(c, argc, argv, &q, false, &sc);
	if (rc)
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
