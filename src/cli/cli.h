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
#include <stddef.h>
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
/* config_require(@needs) (enum config_need bits; 0: none), then cli_svc(). */
int cli_svc_need(cli *c, unsigned needs, svc_ctx **out);
/* For commands that take exactly one argument, an id: refuse anything else
 * ("PROG: expected one @what", a usage error), then cli_svc(). */
int cli_svc_one(cli *c, int argc, const char *what, svc_ctx **out);
/* That check alone: 0, or the usage error (printed). */
int cli_one_arg(const cli *c, int argc, const char *what);
/* A service operation on one id (a handler's, a token): 0 or a TH_E* code. */
typedef int (*cli_id_op)(svc_ctx *sc, const char *id, th_error *err);
/* cli_svc(), then @op on @id (its error printed by cli_fail_err()): 0 or the
 * exit code. *@sc (NULL: not wanted) is the service for what follows. */
int cli_svc_op(cli *c, cli_id_op op, const char *id, svc_ctx **sc);
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
/* A cli_list of the columns array @cols (their count taken from it). */
#define CLI_LIST_OF(cols, json, row, empty, ctx) \
	CLI_ROW(cols, TH_ARRAY_LEN(cols), json, row, empty, ctx)
/* Print @n items (an array of @size-byte elements) as @l says: a JSON array
 * with --json, else a table with a header row unless --no-header. The items
 * stay the caller's. Returns EXIT_OK or EXIT_FAIL (message printed). */
int cli_print_list(const cli *c, const void *items, size_t n, size_t size, const cli_list *l);

/* Argument helpers: @arg is exactly the flag @flag (no "=VALUE"). */
bool cli_is_flag(const char *arg, const char *flag);
/* Report an unexpected argument. */
int cli_unexpected(const cli *c, const char *arg);

/* A command's flags as a table, read by cli_parse_flags(). */
typedef enum cli_flag_kind {
	CLI_FLAG_BOOL, /* no value: *(bool *)dst = true */
	CLI_FLAG_STR,  /* "--x V" or "--x=V": *(const char **)dst = V */
	CLI_FLAG_INT,  /* a whole number from min to max into *(int64_t *)dst */
	CLI_FLAG_FN,   /* fn(dst, name, V): 0, or the exit code (message printed) */
	CLI_FLAG_LIST, /* repeatable: V appended to the cli_strs *dst, fn (if any) checks it */
} cli_flag_kind;
/* The values of a repeatable flag: at most @max into @v. */
typedef struct cli_strs {
	const char **v;
	size_t n, max;
} cli_strs;
typedef struct cli_flag {
	const char *name; /* "--limit" */
	cli_flag_kind kind;
	void *dst;
	int64_t min, max; /* CLI_FLAG_INT only */
	int (*fn)(void *dst, const char *name, const char *value);
} cli_flag;
/* A braced initializer (a row of the tables below); the rows of a flag table, one per kind. */
#define CLI_ROW(...)        \
	{                   \
		__VA_ARGS__ \
	}
#define CLI_BOOL(name, dst) CLI_ROW(name, CLI_FLAG_BOOL, dst, 0, 0, NULL)
#define CLI_STR(name, dst) CLI_ROW(name, CLI_FLAG_STR, dst, 0, 0, NULL)
#define CLI_INT(name, dst, min, max) CLI_ROW(name, CLI_FLAG_INT, dst, min, max, NULL)
#define CLI_FN(name, fn, dst) CLI_ROW(name, CLI_FLAG_FN, dst, 0, 0, fn)
#define CLI_LIST(name, dst, check) CLI_ROW(name, CLI_FLAG_LIST, dst, 0, 0, check)
/* Read @argv (the arguments after the command words) against the @n flags
 * @f, in order, each value checked as it comes. @arg: where the one
 * positional argument goes (NULL: none is taken); @missing: said (a usage
 * error) when @arg is given and stays NULL, or NULL when it may. Returns 0 or
 * the exit code (message printed: "NAME needs a value", the range of an int,
 * an unexpected argument). */
int cli_parse_flags(const cli *c, int argc, char **argv, const cli_flag *f, size_t n,
                    const char **arg, const char *missing);
#define CLI_PARSE(c, argc, argv, flags, arg, missing) \
	cli_parse_flags(c, argc, argv, flags, TH_ARRAY_LEN(flags), arg, missing)

/* JSON helpers shared by commands: NULL becomes JSON null. */
json_t *cli_jstr(const char *s);
json_t *cli_jtime(int64_t ms); /* ISO 8601 string, or null for 0 */

/* How a record (a struct) reads as a JSON object: its fields in order, each
 * a key and the member it comes from, read as what the kind says. */
typedef enum cli_jkind {
	CLI_J_STR,  /* char *: cli_jstr() */
	CLI_J_TIME, /* int64_t milliseconds: cli_jtime() */
	CLI_J_BOOL, /* bool */
	CLI_J_INT,  /* int */
	CLI_J_I64,  /* int64_t */
	CLI_J_FN,   /* fn(record) makes the value (a new reference) */
} cli_jkind;
typedef struct cli_jfield {
	const char *key;
	cli_jkind kind;
	size_t off; /* offsetof the member */
	json_t *(*fn)(const void *rec);
} cli_jfield;
/* A row whose key is @member's name, or @key; the member must have the C type
 * of its kind (checked when it compiles). */
#define CLI_JF_(key, kind, type, member, ctype)                                                \
	CLI_ROW(key, kind,                                                                     \
	        offsetof(type, member) + 0 * sizeof(_Generic(((type *)0)->member, ctype : 1)), \
	        NULL)
#define CLI_JSTR(type, member) CLI_JF_(#member, CLI_J_STR, type, member, char *)
#define CLI_JSTR_AS(key, type, member) CLI_JF_(key, CLI_J_STR, type, member, char *)
#define CLI_JTIME(type, member) CLI_JF_(#member, CLI_J_TIME, type, member, int64_t)
#define CLI_JTIME_AS(key, type, member) CLI_JF_(key, CLI_J_TIME, type, member, int64_t)
#define CLI_JBOOL(type, member) CLI_JF_(#member, CLI_J_BOOL, type, member, bool)
#define CLI_JINT(type, member) CLI_JF_(#member, CLI_J_INT, type, member, int)
#define CLI_JI64(type, member) CLI_JF_(#member, CLI_J_I64, type, member, int64_t)
#define CLI_JFN(key, fn) CLI_ROW(key, CLI_J_FN, 0, fn)
/* A new object of @rec's @n fields @f (a field whose value cannot be made is
 * left out); NULL: out of memory. */
json_t *cli_json_record(const void *rec, const cli_jfield *f, size_t n);
#define CLI_JSON_RECORD(rec, fields) cli_json_record(rec, fields, TH_ARRAY_LEN(fields))
/* The "source" of an event (delivery, backfill, ...): a CLI_JFN of events. */
json_t *cli_event_source_json(const void *ev);

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
int cmd_restore(cli *c, int argc, char **argv);
int cmd_doctor(cli *c, int argc, char **argv);

#endif
