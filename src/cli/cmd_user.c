/* SPDX-License-Identifier: MIT */
/* cmd_user.c — `trellohook user add NAME`: admin users for the web admin. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "service/service.h"

#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

/* Read the first line of stdin into @pw (without the line end). Returns the
 * length, or -1 when the line is longer than @size - 1 or stdin fails. */
static long read_password(char *pw, size_t size)
{
	size_t n = 0;
	int ch;
	while ((ch = getchar()) != EOF && ch != '\n') {
		if (n + 1 >= size)
			return -1;
		pw[n++] = (char)ch;
	}
	if (ferror(stdin))
		return -1;
	if (n > 0 && pw[n - 1] == '\r')
		n--;
	pw[n] = '\0';
	return (long)n;
}

/* `user add NAME`: the password is the first line of stdin (never an
 * argument: it would show in ps and shell history). Stored as the service
 * layer's one password hash (svc_password_hash: Argon2id). An existing user
 * gets the new password. */
int cmd_user_add(cli *c, int argc, char **argv)
{
	const char *name = NULL;
	int rc = cli_parse_flags(c, argc, argv, NULL, 0, &name,
	                         "user add: NAME is needed (the password is read from stdin)");
	if (rc)
		return rc;
	if (!svc_user_name_ok(name))
		return cli_fail(EXIT_USAGE,
		                "user add: a user name is 1-64 of letters, digits, . _ @ -");
	if (sodium_init() < 0)
		return cli_fail(EXIT_FAIL, "libsodium could not be initialised");
	char pw[PASSWORD_MAX + 2];
	rc = EXIT_FAIL;
	long n = read_password(pw, sizeof pw);
	if (n < 0) {
		rc = cli_fail(EXIT_USAGE,
		              "user add: could not read a password of at most %d bytes "
		              "from stdin",
		              PASSWORD_MAX);
		goto out;
	}
	if (n == 0) {
		rc = cli_fail(EXIT_USAGE, "user add: the password (first line of stdin) is empty");
		goto out;
	}
	if (n < PASSWORD_MIN) {
		rc = cli_fail(EXIT_USAGE, "user add: the password must have at least %d characters",
		              PASSWORD_MIN);
		goto out;
	}
	svc_ctx *sc;
	if ((rc = cli_svc(c, &sc)))
		goto out;
	th_error err = {0, {0}};
	if (svc_user_set(sc, name, pw, (size_t)n, &err)) {
		rc = cli_fail(EXIT_FAIL, "user add: %s", err.msg);
		goto out;
	}
	if (c->json) {
		rc = cli_print_json(json_pack("{s:s}", "user", name));
	} else {
		printf("user %s can now sign in to the admin\n", name);
		rc = EXIT_OK;
	}
out:
	sodium_memzero(pw, sizeof pw);
	return rc;
}
