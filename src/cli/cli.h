/* SPDX-License-Identifier: MIT */
/*
 * cli — the `trellohook` command line. main.c parses configuration flags
 * (anywhere on the line), --json and --help, finds the command in its table
 * and calls it; commands only parse their own arguments and call the service
 * layer. Exit codes: 0 success, 1 the operation failed, 2 usage or
 * configuration error. Errors are one line on stderr starting "trellohook: ".
 */
#ifndef TH_CLI_H
#define TH_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"
#include "app/app.h"
#include "cli/table.h"
#include "trello/trello.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct cli {
	th_config cfg;
	bool json;        /* --json: one JSON document on stdout */
	bool no_header;   /* --no-header: list commands print rows only */
	const char *prog; /* "trellohook webhook add", for messages */
	app *a;           /* opened by cli_app() on first use */
} cli;

typedef int (*cli_cmd_fn)(cli *c, int argc, char **argv);

typedef struct cli_command {
	const char *name; /* "webhook" */
	const char *sub;  /* "add", or NULL for a command without subcommands */
	cli_cmd_fn fn;
	unsigned needs;    /* enum config_need bits checked before running */
	const char *usage; /* arguments after the command words */
	const char *help;  /* one paragraph */
} cli_command;

/* Print "trellohook: MESSAGE" on stderr and return @code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Map a th_error to an exit code (config/usage errors 2, everything else 1) and print it. */
int cli_fail_err(const th_error *err);
/* The app (store opened and migrated) for commands that need it. */
int cli_app(cli *c, app **out);
/* The service context of that app (commands talk to the core only through it). */
int cli_svc(cli *c, svc_ctx **out);
/* For commands that take exactly one argument, an id: refuse anything else
 * ("PROG: expected one @what", a usage error), then cli_svc(). */
int cli_svc_one(cli *c, int argc, const char *what, svc_ctx **out);
/* For commands that take no arguments: refuse any (usage error), then cli_svc(). */
int cli_svc_noargs(cli *c, int argc, char **argv, svc_ctx **out);
/* How long a command may wait for Trello in all (retries included), and when
 * it says on stderr what it is waiting for (once). */
#define CLI_TRELLO_BUDGET_MS 20000
#define CLI_TRELLO_NOTICE_MS 3000
/* The Trello client of a command: the service's, bounded by
 * CLI_TRELLO_BUDGET_MS from now, with the waiting notice on stderr. Prints
 * the error and returns its exit code on failure. Free with
 * trello_client_free(). */
int cli_trello_client(svc_ctx *sc, trello_client **out);
/* cli_svc() and then cli_trello_client(), for the commands that talk to
 * Trello: 0, or the exit code (error printed). *@tc is NULL unless 0. */
int cli_svc_trello(cli *c, svc_ctx **sc, trello_client **tc);
/* The waiting notice of those clients (a trello_notice_fn). @ctx is NULL or a
 * cli_progress whose line is erased first, so the notice stands on its own
 * line; a command with a progress line sets it again with that ctx. */
void cli_trello_notice(void *ctx, const char *what);
/* The result of a command that did one thing: @doc (stolen) as the JSON
 * document with --json, else the line @fmt... on stdout. Returns 0 or EXIT_FAIL. */
int cli_done(const cli *c, json_t *doc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Print @doc (stolen) as the one JSON document on stdout. Returns 0 or EXIT_FAIL. */
int cli_print_json(json_t *doc);

/* How a list command shows one kind of item: its columns, and a function
 * for each form. row() points cells[0..ncols-1] at strings (the item's own,
 * or text it writes into scratch[i], one 64-byte slot per column). */
typedef char cli_cell_buf[64];
typedef struct cli_list {
	const cli_col *cols;
	size_t ncols;
	json_t *(*json)(const void *item, void *ctx);
	void (*row)(const void *item, void *ctx, const char **cells, cli_cell_buf *scratch);
	const char *empty; /* said on stderr when there is nothing (text form only) */
	void *ctx;         /* handed to json() and row() */
} cli_list;
/* Print @n items (an array of @size-byte elements) as @l says: a JSON array
 * with --json, else a table with a header row unless --no-header. The items
 * stay the caller's. Returns EXIT_OK or EXIT_FAIL (message printed). */
int cli_print_list(const cli *c, const void *items, size_t n, size_t size, const cli_list *l);

/* Argument helpers. cli_take_value: if argv[*i] is @flag ("--x V" or "--x=V"),
 * store the value, advance *i past it and return 1; 0 if it is another flag;
 * -1 if the value is missing (message printed). */
int cli_take_value(int argc, char **argv, int *i, const char *flag, const char **out);
bool cli_is_flag(const char *arg, const char *flag);
/* Report an unexpected argument. */
int cli_unexpected(const cli *c, const char *arg);
/* A command's one positional argument (an id, a name): @arg into *@out when
 * it is no flag and none was taken yet, returning 0; else cli_unexpected(). */
int cli_take_arg(const cli *c, const char *arg, const char **out);

/* JSON helpers shared by commands: NULL becomes JSON null. */
json_t *cli_jstr(const char *s);
json_t *cli_jtime(int64_t ms); /* ISO 8601 string, or null for 0 */

/* Commands (one file each under src/cli/). */
int cmd_version(cli *c, int argc, char **argv);
int cmd_migrate(cli *c, int argc, char **argv);
int cmd_serve(cli *c, int argc, char **argv);
int cmd_events_ls(cli *c, int argc, char **argv);
int cmd_events_show(cli *c, int argc, char **argv);
int cmd_events_tail(cli *c, int argc, char **argv);
int cmd_events_export(cli *c, int argc, char **argv);
int cmd_events_prune(cli *c, int argc, char **argv);
/* handlers and deliveries (cmd_handler.c, cmd_deliveries.c) */
int cmd_handler_add(cli *c, int argc, char **argv);
int cmd_handler_ls(cli *c, int argc, char **argv);
int cmd_handler_rm(cli *c, int argc, char **argv);
int cmd_deliveries_ls(cli *c, int argc, char **argv);
int cmd_deliveries_retry(cli *c, int argc, char **argv);
int cmd_events_replay(cli *c, int argc, char **argv);
/* webhooks, tokens, sync (cmd_webhook.c, cmd_token.c, cmd_sync.c) */
int cmd_webhook_add(cli *c, int argc, char **argv);
int cmd_webhook_ls(cli *c, int argc, char **argv);
int cmd_webhook_show(cli *c, int argc, char **argv);
int cmd_webhook_rm(cli *c, int argc, char **argv);
int cmd_webhook_update(cli *c, int argc, char **argv);
/* cmd_backfill.c: the command, and a webhook's backfill mark in `webhook show` */
int cmd_webhook_backfill(cli *c, int argc, char **argv);
json_t *cli_backfill_json(const backfill_mark *m); /* new reference, NULL: out of memory */
void cli_print_backfill(const backfill_mark *m);   /* the lines of `webhook show` */
int cmd_token_add(cli *c, int argc, char **argv);
int cmd_token_ls(cli *c, int argc, char **argv);
int cmd_token_check(cli *c, int argc, char **argv);
int cmd_token_rm(cli *c, int argc, char **argv);
int cmd_sync(cli *c, int argc, char **argv);
/* admin users (cmd_user.c) */
int cmd_user_add(cli *c, int argc, char **argv);
/* the local development loop (cmd_trigger.c, cmd_demo.c) */
int cmd_trigger(cli *c, int argc, char **argv);
int cmd_demo(cli *c, int argc, char **argv);
/* operations (cmd_backup.c, cmd_doctor.c) */
int cmd_backup(cli *c, int argc, char **argv);
int cmd_doctor(cli *c, int argc, char **argv);

#endif
