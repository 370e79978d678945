/*
 * store.c — choosing a store implementation from DATABASE_URL, and the
 * array/struct helpers shared by every implementation.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define URL_HELP "expected sqlite:PATH (e.g. sqlite:trellohook.db) or postgresql://user:pass@host:port/db"

/* Open the store named by @database_url and migrate it. Accepted forms:
 *   sqlite:PATH          a file (created when missing; its directory must exist)
 *   sqlite:///ABS/PATH   the same, URL style
 *   sqlite::memory:      a private in-memory database (tests)
 *   postgresql://... or postgres://...   PostgreSQL (store/pg.c; optional
 *                        query parameters pool_size=N, statement_timeout=MS)
 * On success *out is owned by the caller (store_close()). On failure *out is
 * NULL and @err names DATABASE_URL and what was wrong. The URL is never
 * printed in full (it may hold a password). */
int store_open(store **out, const char *database_url, th_error *err)
{
	*out = NULL;
	const char *u = database_url;
	if (!u || !*u)
		return th_err(err, TH_ECONFIG, "DATABASE_URL is empty; " URL_HELP);
	if (str_starts(u, "sqlite:")) {
		const char *path = u + strlen("sqlite:");
		if (str_starts(path, "//")) {
			/* URL style: sqlite:///abs/path (no host allowed) */
			path += 2;
			if (path[0] != '/')
				return th_err(err, TH_ECONFIG,
				              "DATABASE_URL: sqlite:// must be followed by an absolute path "
				              "(sqlite:///var/lib/trellohook.db); " URL_HELP);
		}
		if (!*path)
			return th_err(err, TH_ECONFIG, "DATABASE_URL: sqlite: needs a file path; " URL_HELP);
		int rc = store_sqlite_open(out, path, err);
		if (rc != 0)
			th_err_wrap(err, "DATABASE_URL");
		return rc;
	}
	if (str_starts(u, "postgresql://") || str_starts(u, "postgres://")) {
		int rc = store_pg_open(out, u, err);
		if (rc != 0)
			th_err_wrap(err, "DATABASE_URL");
		return rc;
	}
	char masked[128];
	mask_url(u, masked, sizeof masked);
	return th_err(err, TH_ECONFIG, "DATABASE_URL \"%s\" is not understood; " URL_HELP, masked);
}

/* Close @st and free everything it owns. NULL-safe. Not to be called while
 * another thread still uses the store. */
void store_close(store *st)
{
	if (st && st->ops && st->ops->close)
		st->ops->close(st);
}

/* Free an array of @n webhooks returned by a listing (each cleared). NULL-safe. */
void webhook_list_free(webhook *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		webhook_clear(&a[i]);
	free(a);
}

/* Free an array of @n tokens (each cleared, tokens wiped). NULL-safe. */
void token_list_free(token *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		token_clear(&a[i]);
	free(a);
}

/* Free the strings of a listed event (listings never carry a payload, but a
 * json tree or payload set by a caller is released too). */
static void event_row_clear(event *ev)
{
	free(ev->id);
	free(ev->webhook_id);
	free(ev->action_id);
	free(ev->action_type);
	free(ev->action_date);
	free(ev->model_id);
	free(ev->board_id);
	free(ev->board_name);
	free(ev->list_id);
	free(ev->list_name);
	free(ev->card_id);
	free(ev->card_name);
	free(ev->member);
	free(ev->summary);
	free(ev->payload);
	if (ev->json)
		json_decref(ev->json);
	memset(ev, 0, sizeof *ev);
}

/* Free an array of @n event rows from event_list(). NULL-safe. Does not depend
 * on event.c so the store stands on its own. */
void event_row_list_free(event_row *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		event_row_clear(&a[i].ev);
	free(a);
}

/* Free an array of @n handlers (secrets wiped). NULL-safe. */
void handler_list_free(handler *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		handler_clear(&a[i]);
	free(a);
}

/* Free an array of @n deliveries. NULL-safe. */
void delivery_list_free(delivery *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		delivery_clear(&a[i]);
	free(a);
}

/* Free the strings of @s (the CSRF token wiped first) and zero it. NULL-safe. */
void user_session_clear(user_session *s)
{
	if (!s)
		return;
	free(s->id_hash);
	free(s->user);
	if (s->csrf)
		memset(s->csrf, 0, strlen(s->csrf));
	free(s->csrf);
	memset(s, 0, sizeof *s);
}
