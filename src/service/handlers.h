/* SPDX-License-Identifier: MIT */
/*
 * handlers — the handler and delivery operations users perform (layer 5),
 * shared by the CLI, the admin and the C API: add / list / remove handlers,
 * retry a delivery, replay an event, and the rows of connected C functions.
 *
 * Every function returns 0 or a negative TH_E* code with a message a user can
 * act on in @err. Thread-safe (the store is).
 */
#ifndef TH_HANDLERS_H
#define TH_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>

#include "service/ctx.h"

/* What `handler add` asks for. Strings are borrowed. */
typedef struct handler_spec {
	enum handler_kind kind; /* HANDLER_EXEC or HANDLER_FORWARD */
	const char *target;     /* the command line, or the http(s) URL */
	const char *on;         /* "TYPE[,TYPE...]" with optional ":field", or NULL */
	const char *model;      /* 24-hex Trello id, or NULL */
} handler_spec;

/* Check an --on list: comma-separated action types [A-Za-z]+, each optionally
 * followed by ":field" ([A-Za-z]+); no empty entries. TH_EINVAL with a message. */
int handlers_check_on(const char *on, th_error *err);

/* Check a forward URL: http:// or https:// with a host, no spaces or control
 * characters, at most 2000 bytes. TH_EINVAL with a message. */
int handlers_check_url(const char *url, th_error *err);

/* Validate @spec and store a new enabled handler; @out receives it (caller
 * clears it with handler_clear), including the forward's whsec_ secret, which
 * is shown to the user exactly once. */
int handlers_add(svc_ctx *sc, const handler_spec *spec, handler *out, th_error *err);

/* Forward secrets at rest (handlers_secret.c). With TRELLOHOOK_SECRET_KEY a
 * forward's whsec_ secret is stored sealed like a token (svc_seal).
 * handlers_open_secret replaces a sealed h->secret by the plain one in place
 * (a plain one is left as is); errors as svc_open's: TH_ECONFIG without the
 * key, TH_EAUTH with another key. */
int handlers_open_secret(svc_ctx *sc, handler *h, th_error *err);
/* The stored form of a new forward secret (sealed with a key, else a copy). */
int handlers_seal_for_store(svc_ctx *sc, const char *plain, char **out, th_error *err);
/* With a key: seal every forward secret still stored in plain text (rows from
 * before the key was set). Returns how many are left unsealed (logged). */
size_t handlers_seal_secrets(svc_ctx *sc);

/* Remove a handler (its unfinished deliveries go with it). */
int handlers_remove(svc_ctx *sc, const char *id, th_error *err);

/* Make a delivery pending again, due now (any status but running). */
int handlers_delivery_retry(svc_ctx *sc, const char *id, th_error *err);

/* New deliveries of event @id to every matching enabled handler; @out_n
 * receives their number. */
int handlers_event_replay(svc_ctx *sc, const char *id, size_t *out_n, th_error *err);

/* For each C function connected to @a (app->funcs), make sure a handler row
 * of kind func with target = dispatch_uid exists, so events get deliveries
 * for it. Called when serving starts. */
int handlers_ensure_funcs(svc_ctx *sc, th_error *err);

#endif
