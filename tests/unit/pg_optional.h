/* SPDX-License-Identifier: MIT */
/*
 * pg_optional.h — what a unit binary with PostgreSQL tests does when no
 * server can be had (no TH_TEST_PG_URL and no server binaries for
 * scripts/pg.sh): it FAILS, so a machine without PostgreSQL never reports
 * those tests as passed. Only an explicit TH_SKIP_PG=1 (or TH_PG_OPTIONAL=1)
 * turns that into a skip, reported through exit status 77, which meson shows
 * as SKIP, never as OK.
 */
#ifndef TH_TEST_PG_OPTIONAL_H
#define TH_TEST_PG_OPTIONAL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_SKIP_EXIT 77 /* meson (and automake): the test was skipped */

/* Has the user said the PostgreSQL tests may be skipped? */
static inline bool pg_optional(void)
{
	const char *a = getenv("TH_SKIP_PG"), *b = getenv("TH_PG_OPTIONAL");
	return (a && strcmp(a, "1") == 0) || (b && strcmp(b, "1") == 0);
}

/* Say loudly that there is no server for @what ("store", "upgrade") and
 * whether that fails the binary (returns false) or skips it (true). */
static inline bool pg_no_server(const char *what)
{
	bool skip = pg_optional();
	fprintf(stderr,
	        "\n*** %s THE POSTGRESQL %s TESTS: no PostgreSQL server binaries (scripts/pg.sh "
	        "available said no)\n*** and no TH_TEST_PG_URL. Install the 'postgresql' package "
	        "(make deps-test)%s.\n\n",
	        skip ? "SKIPPING" : "FAILING", what,
	        skip ? "; TH_SKIP_PG=1 asked to skip them" : ", or set TH_SKIP_PG=1 to skip them");
	return skip;
}

#endif
