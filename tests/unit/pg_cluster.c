/* SPDX-License-Identifier: MIT */
/* pg_cluster.c — see pg_cluster.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#include "pg_cluster.h"
#include "pg_optional.h"

int pg_cluster_start(pg_cluster *pc, const char *prefix, const char *what)
{
	memset(pc, 0, sizeof *pc);
	const char *url = getenv("TH_TEST_PG_URL");
	if (url && *url)
		return str_copy(pc->base, sizeof pc->base, url) ? 0 : -1;
	const char *script = getenv("TH_PG_SCRIPT");
	if (script && *script) {
		str_copy(pc->script, sizeof pc->script, script);
	} else {
		const char *data = getenv("TH_TEST_DATA");
		str_printf(pc->script, sizeof pc->script, "%s/../../scripts/pg.sh",
		           data ? data : "tests/data");
	}
	char cmd[700];
	str_printf(cmd, sizeof cmd, "'%s' available", pc->script);
	if (system(cmd) != 0) {
		/* no server: fail, unless TH_SKIP_PG=1 asked to skip (pg_optional.h) */
		if (!pg_no_server(what))
			return -1;
		pc->skip = true;
		return 0;
	}
	if (!str_printf(pc->dir, sizeof pc->dir, "/tmp/%s-XXXXXX", prefix) || !mkdtemp(pc->dir))
		return -1;
	str_printf(cmd, sizeof cmd, "'%s' start '%s'", pc->script, pc->dir);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char line[512] = "";
	char *got = fgets(line, sizeof line, p);
	int rc = pclose(p);
	if (!got || rc != 0) {
		fprintf(stderr, "pg.sh start failed (%d)\n", rc);
		return -1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	pc->own = true;
	return str_copy(pc->base, sizeof pc->base, line) ? 0 : -1;
}

void pg_cluster_stop(const pg_cluster *pc)
{
	if (!pc->own)
		return;
	char cmd[700];
	str_printf(cmd, sizeof cmd, "'%s' stop '%s'", pc->script, pc->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "pg.sh stop failed\n");
}

void pg_url_with_db(char *out, size_t size, const char *base, const char *db, const char *q)
{
	const char *hostpart = strstr(base, "://");
	hostpart = hostpart ? hostpart + 3 : base;
	const char *slash = strchr(hostpart, '/');
	const char *query = strchr(base, '?');
	size_t keep =
	    slash ? (size_t)(slash - base) : (query ? (size_t)(query - base) : strlen(base));
	char extra[256] = "";
	if (query && *q)
		str_printf(extra, sizeof extra, "%s&%s", query, q);
	else if (query)
		str_copy(extra, sizeof extra, query);
	else if (*q)
		str_printf(extra, sizeof extra, "?%s", q);
	str_printf(out, size, "%.*s/%s%s", (int)keep, base, db, extra);
}
