/* SPDX-License-Identifier: MIT */
/* runner.c — see app.h: starting and stopping serve's background runners. */
#include <stdlib.h>
#include <string.h>

#include "app/app.h"

int app_runner_start(struct app_runner **out, app *a, size_t size, void *(*fn)(void *),
                     const char *what, const char *name, th_error *err)
{
	*out = NULL;
	struct app_runner *r = calloc(1, size);
	if (!r)
		return th_err(err, TH_ENOMEM, "out of memory");
	r->a = a;
	int prc = wait_thread_start(&r->t, fn, r, name);
	if (prc) {
		free(r);
		return th_err(err, TH_EIO, "cannot start %s: %s", what, strerror(prc));
	}
	*out = r;
	return 0;
}

void app_runner_stop(struct app_runner *r)
{
	if (!r)
		return;
	wait_thread_stop(&r->t);
	free(r);
}
