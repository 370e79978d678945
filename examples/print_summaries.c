/* SPDX-License-Identifier: MIT */
/*
 * print_summaries.c — embed trellohook in a C program: print one line per
 * Trello event, the C counterpart of connecting a receiver to Django's
 * `callback_received` signal.
 *
 * Build: `make` (build/examples/print_summaries), or against an installed
 * library: cc print_summaries.c $(pkg-config --cflags --libs trellohook)
 * Run:   TRELLO_API_SECRET=... CALLBACK_DOMAIN=https://hooks.example.com \
 *        ./print_summaries [--listen 127.0.0.1:8000] [other trellohook flags]
 */
#include <stdio.h>
#include <trellohook.h>

/* Called on a dispatch worker thread for every stored event; 0 = handled. */
static int print_summary(const th_event *event, void *ctx)
{
	FILE *out = ctx;
	if (fprintf(out, "%s %s\n", th_event_action_type(event), th_event_summary(event)) < 0 ||
	    fflush(out) != 0)
		return 1; /* not written: the event is retried later */
	return 0;
}

int main(int argc, char **argv)
{
	th_app *app = NULL;
	th_error err = {0, {0}};
	if (th_app_new(&app, argc - 1, argv + 1, &err) != 0) {
		fprintf(stderr, "print_summaries: %s\n", err.msg);
		return 2;
	}
	/* Connecting again with the same dispatch_uid is a no-op, like Django's
	 * dispatch_uid: each event is still printed once. */
	int rc = th_connect(app, "callback_received", print_summary, stdout, "print-summaries");
	if (rc == 0)
		rc = th_connect(app, "callback_received", print_summary, stdout, "print-summaries");
	if (rc == 0)
		rc = th_app_serve(app, &err);
	else
		snprintf(err.msg, sizeof err.msg, "th_connect failed (%d)", rc);
	if (rc != 0)
		fprintf(stderr, "print_summaries: %s\n", err.msg);
	th_app_free(app);
	return rc != 0;
}
