/* SPDX-License-Identifier: MIT */
/* cmd_serve.c — serve, migrate [--check | --vacuum | --repack], version. */
#include <malloc.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "service/history.h"
#include "service/service.h"
#include "store/peer.h"
#include "store/schema_check.h"

int cmd_version(cli *c, int argc, char **argv)
{
	if (argc)
		return cli_unexpected(c, argv[0]);
	if (c->json) {
		return cli_print_json(json_pack("{s:s}", "version", th_version()));
	}
	printf("trellohook %s\n", th_version());
	return EXIT_OK;
}

/* `migrate --check`: report the pending versions without opening the store
 * through store_open() (which migrates). Exit 0 current, 1 behind, newer or
 * unreadable, 2 a bad DATABASE_URL. */
static int migrate_check(cli *c)
{
	th_error err = {0, {0}};
	int current, latest;
	const char *kind;
	if (store_schema_check(c->cfg.database_url, &current, &latest, &kind, &err))
		return cli_fail_err(&err);
	if (current > latest)
		return cli_fail(EXIT_FAIL,
		                "the %s store's schema is version %d, newer than this trellohook "
		                "knows (%d); upgrade trellohook",
		                kind, current, latest);
	if (c->json) {
		json_t *pending = json_array();
		for (int v = current + 1; pending && v <= latest; v++)
			json_array_append_new(pending, json_integer(v));
		int rc = cli_print_json(json_pack("{s:s,s:i,s:i,s:o}", "store", kind, "version",
		                                  current, "latest", latest, "pending", pending));
		return rc ? rc : current == latest ? EXIT_OK : EXIT_FAIL;
	}
	if (current == latest) {
		printf("store (%s) is at schema version %d: current\n", kind, current);
		return EXIT_OK;
	}
	printf("store (%s) is at schema version %d of %d; pending versions:", kind, current,
	       latest);
	for (int v = current + 1; v <= latest; v++)
		printf("%s %d", v > current + 1 ? "," : "", v);
	printf(" (run trellohook migrate)\n");
	return EXIT_FAIL;
}

/* The rewrites below (one VACUUM) hold the store's write lock from start to
 * end: refuse them, before this process opens the store (store/peer.h),
 * while another process has it open. 0, or the exit code (message printed). */
static int require_store_alone(cli *c, const char *what)
{
	th_error err = {0, {0}};
	store_peer p;
	if (store_sqlite_peer(c->cfg.database_url, &p, &err))
		return cli_fail_err(&err);
	if (p.pid == 0)
		return 0;
	char who[96];
	store_peer_describe(&p, who, sizeof who);
	return cli_fail(EXIT_FAIL,
	                "%s: %s has the store open; this rewrites the whole SQLite file "
	                "(VACUUM), which holds the store's write lock throughout (serve would "
	                "answer Trello 503): stop serve (e.g. systemctl stop trellohook) and any "
	                "other trellohook command using the store, run this again, then start "
	                "serve",
	                what, who);
}

/* `migrate --vacuum`: switch an SQLite file made before incremental
 * auto-vacuum to it (one VACUUM), so that prunes give pages back. */
static int migrate_vacuum(cli *c, svc_ctx *sc)
{
	th_error err = {0, {0}};
	int before = 0, after = 0;
	if (svc_vacuum_mode(sc, false, &before, &err))
		return cli_fail_err(&err);
	if (before >= 0 && before != 2) {
		fprintf(stderr, "trellohook: rewriting the SQLite file once (VACUUM); this takes a "
		                "while on a large store\n");
		if (svc_vacuum_mode(sc, true, &after, &err))
			return cli_fail_err(&err);
	} else {
		after = before;
	}
	const char *what = after < 0    ? "not SQLite (PostgreSQL reuses space itself)"
	                   : after == 2 ? (before == 2 ? "incremental already" : "now incremental")
	                                : "not incremental";
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:b,s:b}", "store", svc_store_name(sc),
		                                "vacuumed", before >= 0 && before != 2,
		                                "incremental", after == 2));
	printf("store (%s) auto-vacuum: %s\n", svc_store_name(sc), what);
	return after < 0 || after == 2 ? EXIT_OK : EXIT_FAIL;
}

static bool repack_progress(void *ctx, uint64_t done, uint64_t total)
{
	cli_progress_set(ctx, done, total);
	return true;
}

/* @n bytes for people: "812 B", "3.4 KB", "1.6 MB" (powers of 1000). */
static void fmt_bytes(char *out, size_t outsz, int64_t n)
{
	if (n < 1000)
		str_printf(out, outsz, "%lld B", (long long)n);
	else if (n < 1000000)
		str_printf(out, outsz, "%.1f KB", (double)n / 1e3);
	else if (n < 1000000000)
		str_printf(out, outsz, "%.1f MB", (double)n / 1e6);
	else
		str_printf(out, outsz, "%.2f GB", (double)n / 1e9);
}

/* `migrate --repack`: pack the payloads an older trellohook stored raw
 * (SQLite, schema < 12) where that makes them smaller, then rewrite the file
 * once so the space is given back (stop serve first). */
static int migrate_repack(cli *c, svc_ctx *sc)
{
	th_error err = {0, {0}};
	svc_repack_result r;
	cli_progress prog;
	cli_progress_init(&prog, stderr, "repack: events");
	bool sqlite = str_eq(svc_store_name(sc), "sqlite");
	if (sqlite && !c->json)
		fprintf(stderr, "trellohook: packing the payloads stored raw, then, if any were, "
		                "rewriting the SQLite file once (VACUUM, with serve stopped); this "
		                "takes a while on a large store\n");
	int ret = svc_payloads_repack(sc, repack_progress, &prog, &r, &err);
	cli_progress_end(&prog);
	if (ret)
		return cli_fail_err(&err);
	if (c->json)
		return cli_print_json(
		    json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "store", svc_store_name(sc), "raw",
		              (json_int_t)r.raw, "packed", (json_int_t)r.packed, "bytes_before",
		              (json_int_t)r.bytes_before, "bytes_after", (json_int_t)r.bytes_after,
		              "file_before", (json_int_t)r.file_before, "file_after",
		              (json_int_t)r.file_after));
	if (!sqlite) {
		printf("store (%s): nothing to pack (PostgreSQL compresses payloads itself)\n",
		       svc_store_name(sc));
		return EXIT_OK;
	}
	if (r.packed == 0) {
		printf("store (sqlite): nothing to pack (%lld payload(s) stored raw would not "
		       "shrink)\n",
		       (long long)r.raw);
		return EXIT_OK;
	}
	char b0[32], b1[32], f0[32], f1[32];
	fmt_bytes(b0, sizeof b0, r.bytes_before);
	fmt_bytes(b1, sizeof b1, r.bytes_after);
	fmt_bytes(f0, sizeof f0, r.file_before);
	fmt_bytes(f1, sizeof f1, r.file_after);
	printf("store (sqlite): packed %lld of %lld payload(s) stored raw (%s -> %s); the file"
	       " went from %s to %s\n",
	       (long long)r.packed, (long long)r.raw, b0, b1, f0, f1);
	return EXIT_OK;
}

int cmd_migrate(cli *c, int argc, char **argv)
{
	if (argc == 1 && str_eq(argv[0], "--check"))
		return migrate_check(c);
	bool vacuum = argc == 1 && str_eq(argv[0], "--vacuum");
	bool repack = argc == 1 && str_eq(argv[0], "--repack");
	svc_ctx *sc;
	int rc = vacuum   ? require_store_alone(c, "migrate --vacuum")
	         : repack ? require_store_alone(c, "migrate --repack")
	                  : 0;
	if (!rc)
		rc = vacuum || repack ? cli_svc(c, &sc) : cli_svc_noargs(c, argc, argv, &sc);
	if (rc)
		return rc;
	if (vacuum)
		return migrate_vacuum(c, sc);
	if (repack)
		return migrate_repack(c, sc);
	th_error err = {0, {0}};
	int version = 0;
	if (svc_migrate(sc, &version, &err))
		return cli_fail_err(&err);
	if (c->json)
		return cli_print_json(
		    json_pack("{s:s,s:i}", "store", svc_store_name(sc), "version", version));
	printf("store (%s) is at schema version %d\n", svc_store_name(sc), version);
	return EXIT_OK;
}

/* The ready line tells scripts and tests where we listen (port 0 picks one). */
static void on_ready(void *ctx, const char *url)
{
	printf("serving %s\n", url);
	fflush(stdout);
}

int cmd_serve(cli *c, int argc, char **argv)
{
	if (argc)
		return cli_unexpected(c, argv[0]);
	/* The server allocates and frees small objects on several threads at a
	 * high rate. glibc's defaults (one arena per thread, returning memory to
	 * the kernel on every shrink) cost an madvise(2) storm and fragmentation:
	 * measured +33% ingest throughput with these two settings. The process is
	 * ours, so the program (not the library) sets them. */
	if (!mallopt(M_ARENA_MAX, 2) || !mallopt(M_TRIM_THRESHOLD, 64 << 20))
		log_warn("serve", "could not tune the allocator; continuing with its defaults");
	th_error err = {0, {0}};
	/* the log file first: everything serve says goes there (SIGHUP reopens it) */
	if (c->cfg.log_file[0] && log_open_file(c->cfg.log_file, &err))
		return cli_fail(EXIT_USAGE, "%s (check the directory exists and is writable)",
		                err.msg);
	app *a;
	int rc = cli_app(c, &a);
	if (rc)
		return rc;
	if (app_serve(a, on_ready, NULL, &err))
		return cli_fail_err(&err);
	return EXIT_OK;
}
