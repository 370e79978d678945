/* SPDX-License-Identifier: MIT */
/*
 * main.c — `trellohook`: find the command, apply configuration, run it.
 *
 * Configuration flags (--listen, --database-url, ...) may stand anywhere on
 * the line and win over the environment; --json and --help likewise.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const cli_command commands[] = {
    {"serve", NULL, cmd_serve, NEED_API_SECRET | NEED_CALLBACK_DOMAIN, "",
     "Receive Trello callbacks on TRELLOHOOK_LISTEN, store them, run handlers, serve the admin."},
    {"migrate", NULL, cmd_migrate, 0, "[--check | --vacuum | --repack] [--json]",
     "Create the store or bring its schema up to date (also done by every command). "
     "--check changes nothing: exit 0 when the schema is current, 1 listing the pending "
     "versions. --vacuum rewrites once an SQLite file made by an older trellohook, so that "
     "pruning shrinks it (stop serve first). --repack packs (LZ4) the payloads an older "
     "trellohook stored raw in SQLite, then rewrites the file once to give the space back "
     "(stop serve first). On SQLite both refuse while another process has the store open."},
    {"events", "ls", cmd_events_ls, 0, "[--webhook ID] [--type TYPE] [--limit N] [--json]",
     "List stored events, newest first."},
    {"events", "show", cmd_events_show, 0, "ID [--json]",
     "Show one event: summary, metadata and the payload as received."},
    {"events", "tail", cmd_events_tail, 0, "[--type TYPE] [--webhook ID]",
     "Print events as they are stored, until interrupted."},
    {"events", "replay", cmd_events_replay, 0, "ID [--json]",
     "Deliver an event again: new deliveries to every handler that matches it now."},
    {"events", "export", cmd_events_export, 0,
     "[--since DATE] [--until DATE] [--webhook ID] [--type TYPE] --format jsonl "
     "[--output FILE]",
     "Write stored events, oldest first, one JSON object a line with the payload as received "
     "(streamed: any number of events). DATE: 2026-12-01T10:00:00Z, 2026-12-01 or an age "
     "such as 7d, on the time received. --output writes FILE whole or not at all."},
    {"events", "prune", cmd_events_prune, 0, "--older-than DURATION [--dry-run] [--json]",
     "Delete events received more than DURATION ago (90d, 12h) whose deliveries are all done "
     "or dead, with those deliveries, in small batches; --dry-run only counts."},
    {"handler", "add", cmd_handler_add, 0,
     "(--exec COMMAND | --forward URL) [--on TYPE[,TYPE...]] [--model ID] [--json]",
     "Run a command (payload on stdin, TRELLO_* variables) or POST to a URL (signed per "
     "Standard Webhooks; the whsec_ secret is printed once) for every matching event. "
     "--on takes action types, also TYPE:field such as updateCard:idList (card moves); "
     "--model a 24-hex board, list or card id."},
    {"handler", "ls", cmd_handler_ls, 0, "[--json]", "List handlers (secrets masked)."},
    {"handler", "rm", cmd_handler_rm, 0, "ID", "Remove a handler and its unfinished deliveries."},
    {"deliveries", "ls", cmd_deliveries_ls, 0,
     "[--status pending|running|done|failed|dead] [--event ID] [--limit N] [--json]",
     "List deliveries of events to handlers, with attempts and the last error or output."},
    {"deliveries", "retry", cmd_deliveries_retry, 0, "ID",
     "Make a delivery (also a dead or done one) pending again, due now."},
    {"webhook", "add", cmd_webhook_add, NEED_API_KEY | NEED_CALLBACK_DOMAIN,
     "--model ID|TRELLO_URL --token TOKEN [--description TEXT] [--json]",
     "Register a webhook on a Trello board or card (id or trello.com URL) under a user token."},
    {"webhook", "ls", cmd_webhook_ls, 0, "[--json]", "List webhooks with their state."},
    {"webhook", "show", cmd_webhook_show, 0, "ID [--trello] [--json]",
     "Show one webhook; --trello also asks Trello (active, consecutiveFailures, ...)."},
    {"webhook", "update", cmd_webhook_update, NEED_API_KEY,
     "ID [--description TEXT] [--active true|false] [--json]",
     "Change a webhook's description or pause/resume it, on Trello first, then here."},
    {"webhook", "backfill", cmd_webhook_backfill, NEED_API_KEY,
     "ID [--since DATE|ACTION_ID] [--json]",
     "Store what Trello did while trellohook was not listening (its actions listing since the "
     "last pass, or --since), as events marked backfill, each once."},
    {"webhook", "rm", cmd_webhook_rm, NEED_API_KEY, "ID",
     "Delete a webhook on Trello, then here (marked removing while Trello is unreachable)."},
    {"sync", NULL, cmd_sync, NEED_API_KEY | NEED_CALLBACK_DOMAIN,
     "[--token TOKEN]... [--dry-run] [--prune] [--json]",
     "Reconcile stored webhooks with Trello's for every known token (and the ones given)."},
    {"token", "add", cmd_token_add, 0, "TOKEN [--json]", "Remember a Trello user token."},
    {"token", "ls", cmd_token_ls, 0, "[--json]", "List tokens (masked) and their state."},
    {"token", "check", cmd_token_check, NEED_API_KEY, "[TOKEN] [--json]",
     "Ask Trello about a token (or every stored one): owner, expiry, permissions."},
    {"token", "rm", cmd_token_rm, 0, "TOKEN", "Forget a token no webhook uses."},
    {"user", "add", cmd_user_add, 0, "NAME",
     "Create an admin user, or set its password: the first line of stdin (at least 8 "
     "characters), stored as an Argon2id hash."},
    {"trigger", NULL, cmd_trigger, 0, "TYPE [--webhook ID] [--set PATH=VALUE]... [--json] | --list",
     "Send a realistic, signed Trello delivery of action TYPE to a webhook's callback URL, as "
     "Trello would (the webhook: --webhook, or the only one). --set action.data.text=hi "
     "overrides a field by dotted path (VALUE is JSON when it parses, else a string). "
     "Prints the answer and the stored event. Needs TRELLO_API_SECRET."},
    {"demo", NULL, cmd_demo, 0,
     "[--data-dir DIR] [--listen HOST:PORT] [--mock-listen HOST:PORT] [--exit-after-setup]",
     "Run the whole product locally without a Trello account: trello-mock with a seeded board, "
     "trellohook serve wired to it, a webhook, an example handler, an admin login; state under "
     "DIR (./demo-data). Serves until Ctrl-C; --exit-after-setup (or TRELLOHOOK_DEMO_EXIT=1) "
     "stops after printing the login."},
    {"backup", NULL, cmd_backup, 0, "PATH [--force] [--json]",
     "Copy the SQLite store to PATH while serve keeps running (SQLite's online backup: one "
     "consistent snapshot, written beside PATH, synced, then renamed). An existing PATH needs "
     "--force. For PostgreSQL it prints the pg_dump command to use."},
    {"restore", NULL, cmd_restore, 0, "PATH [--json]",
     "Put the backup PATH back in place of the SQLite store (stop serve first: refused while "
     "another process has the store open). The backup is copied beside the store, checked, "
     "synced, then renamed over it; the store it replaces is kept as STORE.replaced-TIME. "
     "serve then backfills from Trello what happened since the backup. For PostgreSQL it "
     "prints the pg_restore command to use."},
    {"doctor", NULL, cmd_doctor, 0, "[--json]",
     "Check a deployment when Trello says the callback did not return 200: configuration, "
     "the store (opens, writable, disk room), the API key and every token (and its expiry), "
     "CALLBACK_DOMAIN (resolves, answers Trello's HEAD, and reaches this very instance: a "
     "signed one-time probe answered with proof of this store), and each webhook as Trello "
     "sees it. One line per check, each failure with what to do; exit 1 when any fails."},
    {"version", NULL, cmd_version, 0, "", "Print the version."},
};

static void print_usage(FILE *f)
{
	fputs("trellohook — manage Trello webhooks, receive and dispatch their events\n\n"
	      "Usage: trellohook COMMAND [ARGS] [--json] [--no-header] [--help]\n\n"
	      "List commands print a header row and aligned columns (--no-header: rows "
	      "only).\n\nCommands:\n",
	      f);
	for (size_t i = 0; i < TH_ARRAY_LEN(commands); i++) {
		char words[64];
		str_printf(words, sizeof words, "%s%s%s", commands[i].name,
		           commands[i].sub ? " " : "", commands[i].sub ? commands[i].sub : "");
		fprintf(f, "  %-18s %s\n", words, commands[i].help);
	}
	buf b;
	buf_init(&b, 0);
	if (!config_help(&b))
		fprintf(f, "\n%s", b.data);
	buf_free(&b);
	fputs("\nExit codes: 0 success, 1 the operation failed, 2 usage or configuration error.\n",
	      f);
}

static void print_command_help(const cli_command *cmd)
{
	printf("Usage: trellohook %s%s%s %s\n\n%s\n", cmd->name, cmd->sub ? " " : "",
	       cmd->sub ? cmd->sub : "", cmd->usage, cmd->help);
	if (cmd->needs & NEED_API_KEY)
		puts("Needs TRELLO_API_KEY.");
	if (cmd->needs & NEED_API_SECRET)
		puts("Needs TRELLO_API_SECRET.");
	if (cmd->needs & NEED_CALLBACK_DOMAIN)
		puts("Needs CALLBACK_DOMAIN.");
	puts("Configuration flags (see `trellohook --help`) work here too.");
}

/* The subcommands of @name, for a helpful message. */
static void list_subcommands(const char *name, char *out, size_t outsz)
{
	buf b;
	buf_init(&b, outsz - 1);
	for (size_t i = 0; i < TH_ARRAY_LEN(commands); i++)
		if (str_eq(commands[i].name, name) && commands[i].sub)
			buf_printf(&b, "%s%s", b.len ? ", " : "", commands[i].sub);
	str_copy(out, outsz, b.data ? b.data : "");
	buf_free(&b);
}

int main(int argc, char **argv)
{
	cli c;
	memset(&c, 0, sizeof c);
	th_error err = {0, {0}};
	if (config_load_env(&c.cfg, NULL, &err))
		return cli_fail_err(&err);

	/* Pull out configuration flags, --json and --help; keep the rest in order. */
	char **rest = calloc((size_t)argc + 1, sizeof *rest);
	if (!rest)
		return cli_fail(EXIT_FAIL, "out of memory");
	int nrest = 0;
	bool help = false;
	for (int i = 1; i < argc; i++) {
		if (str_eq(argv[i], "--")) {
			while (++i < argc)
				rest[nrest++] = argv[i];
			break;
		}
		if (str_eq(argv[i], "--json")) {
			c.json = true;
			continue;
		}
		if (str_eq(argv[i], "--no-header")) {
			c.no_header = true;
			continue;
		}
		if (str_eq(argv[i], "--help") || str_eq(argv[i], "-h")) {
			help = true;
			continue;
		}
		int used =
		    config_apply_flag(&c.cfg, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &err);
		if (used < 0) {
			free(rest);
			return cli_fail_err(&err);
		}
		if (used) {
			i += used - 1;
			continue;
		}
		rest[nrest++] = argv[i];
	}
	log_setup(c.cfg.log_level, c.cfg.log_format);

	int rc = EXIT_USAGE;
	const cli_command *cmd = NULL;
	int consumed = 0;
	if (nrest == 0) {
		print_usage(help ? stdout : stderr);
		rc = help ? EXIT_OK : EXIT_USAGE;
		goto out;
	}
	bool known_name = false;
	for (size_t i = 0; i < TH_ARRAY_LEN(commands); i++) {
		if (!str_eq(commands[i].name, rest[0]))
			continue;
		known_name = true;
		if (!commands[i].sub) {
			cmd = &commands[i];
			consumed = 1;
			break;
		}
		if (nrest > 1 && str_eq(commands[i].sub, rest[1])) {
			cmd = &commands[i];
			consumed = 2;
			break;
		}
	}
	if (!cmd) {
		if (known_name) {
			char subs[256];
			list_subcommands(rest[0], subs, sizeof subs);
			if (help && nrest == 1) {
				printf(
				    "Usage: trellohook %s {%s} ... (see trellohook %s SUBCOMMAND --help)\n",
				    rest[0], subs, rest[0]);
				rc = EXIT_OK;
			} else {
				rc = cli_fail(EXIT_USAGE,
				              "%s: unknown subcommand '%s' (expected one of: %s)",
				              rest[0], nrest > 1 ? rest[1] : "", subs);
			}
		} else {
			rc = cli_fail(EXIT_USAGE, "unknown command '%s' (see trellohook --help)",
			              rest[0]);
		}
		goto out;
	}
	if (help) {
		print_command_help(cmd);
		rc = EXIT_OK;
		goto out;
	}
	if (config_require(&c.cfg, cmd->needs, &err)) {
		rc = cli_fail_err(&err);
		goto out;
	}
	char prog[64];
	str_printf(prog, sizeof prog, "%s%s%s", cmd->name, cmd->sub ? " " : "",
	           cmd->sub ? cmd->sub : "");
	c.prog = prog;
	rc = cmd->fn(&c, nrest - consumed, rest + consumed);
out:
	th_app_free(c.a);
	free(rest);
	return rc;
}
