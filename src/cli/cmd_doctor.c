/* SPDX-License-Identifier: MIT */
/* cmd_doctor.c — `trellohook doctor [--json]`: one line per check, ✓ or ✗,
 * each ✗ with what to do (service/doctor.c runs the checks). Exit 1 when
 * any check fails. */
#include <stdio.h>

#include "cli/cli.h"
#include "service/doctor.h"

int cmd_doctor(cli *c, int argc, char **argv)
{
	if (argc)
		return cli_unexpected(c, argv[0]);
	doctor_report r = {NULL, 0, 0};
	/* the store is opened (and migrated) only when it exists: doctor looks at
	 * the store serve uses and never creates one */
	char detail[600];
	th_error err = {0, {0}};
	svc_ctx *sc = NULL;
	if (!doctor_store_missing(&c->cfg, detail, sizeof detail) &&
	    app_new(&c->a, &c->cfg, &err) == 0)
		sc = app_svc(c->a);
	if (doctor_run(&c->cfg, sc, err.msg, &r)) {
		doctor_report_free(&r);
		return cli_fail(EXIT_FAIL, "doctor: out of memory");
	}
	bool all_ok = true;
	for (size_t i = 0; i < r.n; i++)
		all_ok = all_ok && r.items[i].ok;
	int rc = all_ok ? EXIT_OK : EXIT_FAIL;
	if (c->json) {
		json_t *checks = json_array();
		for (size_t i = 0; checks && i < r.n; i++) {
			const doctor_check *k = &r.items[i];
			json_array_append_new(checks,
			                      json_pack("{s:s,s:b,s:s,s:o}", "check", k->name, "ok",
			                                k->ok, "detail", k->detail, "fix",
			                                k->ok ? json_null() : json_string(k->fix)));
		}
		int jrc = cli_print_json(json_pack("{s:b,s:o}", "ok", all_ok, "checks", checks));
		doctor_report_free(&r);
		return jrc ? jrc : rc;
	}
	for (size_t i = 0; i < r.n; i++) {
		const doctor_check *k = &r.items[i];
		printf("%s %s: %s\n", k->ok ? "\xe2\x9c\x93" : "\xe2\x9c\x97", k->name, k->detail);
		if (!k->ok && k->fix[0])
			printf("    \xe2\x86\x92 %s\n", k->fix);
	}
	printf("%s\n", all_ok ? "all checks passed" : "some checks failed");
	doctor_report_free(&r);
	return fflush(stdout) ? EXIT_FAIL : rc;
}
