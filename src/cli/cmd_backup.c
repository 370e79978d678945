/* SPDX-License-Identifier: MIT */
/* cmd_backup.c — `trellohook backup PATH [--force]`: a consistent copy of
 * the SQLite store while serve keeps running; `trellohook restore PATH`: a
 * backup put back, serve stopped (store/backup.c does both). */
#include <stdio.h>

#include "cli/cli.h"
#include "store/backup.h"

int cmd_backup(cli *c, int argc, char **argv)
{
	const char *dest = NULL;
	bool force = false;
	for (int i = 0; i < argc; i++) {
		if (cli_is_flag(argv[i], "--force"))
			force = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return cli_unexpected(c, argv[i]);
		else if (!dest)
			dest = argv[i];
		else
			return cli_unexpected(c, argv[i]);
	}
	if (!dest)
		return cli_fail(EXIT_USAGE, "backup: give the PATH of the copy (trellohook backup "
		                            "PATH [--force])");
	buf hint;
	buf_init(&hint, 16384);
	if (store_backup_pg_hint(c->cfg.database_url, dest, &hint) == 0) {
		/* PostgreSQL has its own consistent online dump: nothing to do here */
		cli_fail(EXIT_USAGE,
		         "backup copies SQLite stores; this store is PostgreSQL: back it up with "
		         "pg_dump (password: PGPASSWORD or ~/.pgpass), e.g.\n  %s\nand restore "
		         "with pg_restore --dbname=URL FILE",
		         hint.data ? hint.data : "pg_dump");
		buf_free(&hint);
		return EXIT_USAGE;
	}
	buf_free(&hint);
	th_error err = {0, {0}};
	store_backup_info info;
	if (store_backup(c->cfg.database_url, dest, force, &info, &err))
		return cli_fail_err(&err);
	if (c->json)
		return cli_print_json(
		    json_pack("{s:s,s:s,s:I,s:I,s:I,s:i}", "store", "sqlite", "path", dest, "pages",
		              (json_int_t)info.pages, "bytes", (json_int_t)info.bytes, "ms",
		              (json_int_t)info.ms, "schema_version", info.schema_version));
	printf("backed up the store to %s: %lld bytes, schema version %d, in %lld ms\n", dest,
	       (long long)info.bytes, info.schema_version, (long long)info.ms);
	return EXIT_OK;
}

int cmd_restore(cli *c, int argc, char **argv)
{
	const char *src = NULL;
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1])
			return cli_unexpected(c, argv[i]);
		if (src)
			return cli_unexpected(c, argv[i]);
		src = argv[i];
	}
	if (!src)
		return cli_fail(EXIT_USAGE, "restore: give the PATH of the backup (trellohook "
		                            "restore PATH)");
	buf hint;
	buf_init(&hint, 16384);
	if (store_restore_pg_hint(c->cfg.database_url, src, &hint) == 0) {
		cli_fail(
		    EXIT_USAGE,
		    "restore puts back SQLite stores; this store is PostgreSQL: with serve "
		    "stopped, restore a pg_dump file with (password: PGPASSWORD or ~/.pgpass)\n  %s",
		    hint.data ? hint.data : "pg_restore");
		buf_free(&hint);
		return EXIT_USAGE;
	}
	buf_free(&hint);
	th_error err = {0, {0}};
	store_restore_info info;
	if (store_restore(c->cfg.database_url, src, &info, &err))
		return cli_fail_err(&err);
	if (c->json)
		return cli_print_json(json_pack(
		    "{s:s,s:s,s:I,s:i,s:s?,s:I}", "store", "sqlite", "path", src, "bytes",
		    (json_int_t)info.bytes, "schema_version", info.schema_version, "replaced",
		    *info.replaced ? info.replaced : NULL, "ms", (json_int_t)info.ms));
	printf("restored the store from %s: %lld bytes, schema version %d, in %lld ms\n", src,
	       (long long)info.bytes, info.schema_version, (long long)info.ms);
	if (*info.replaced)
		printf(
		    "the store it replaced is kept as %s (remove it once you no longer need it)\n",
		    info.replaced);
	printf("start serve: it brings the schema up to date and backfills from Trello what "
	       "happened since the backup (up to TRELLOHOOK_BACKFILL_MAX_AGE); webhooks, tokens "
	       "and handlers are as they were then (trellohook sync reconciles webhooks with "
	       "Trello)\n");
	return EXIT_OK;
}
