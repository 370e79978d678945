/* SPDX-License-Identifier: MIT */
/* handlers.c — handler add/rm, delivery retry, event replay, C function rows. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "service/handlers.h"
#include "util/log.h"
#include "util/sign.h"

#define ON_MAX 1000
#define URL_MAX 2000
#define COMMAND_MAX 8000

static bool is_alpha_run(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalpha((unsigned char)s[i]))
			return false;
	return true;
}

int handlers_check_on(const char *on, th_error *err)
{
	if (!on || !*on)
		return th_err(err, TH_EINVAL,
		              "--on: expected action types such as "
		              "commentCard,updateCard:idList");
	if (strlen(on) > ON_MAX)
		return th_err(err, TH_EINVAL, "--on: at most %d characters", ON_MAX);
	const char *p = on;
	for (;;) {
		size_t len = strcspn(p, ",");
		const char *colon = memchr(p, ':', len);
		bool ok = colon ? is_alpha_run(p, (size_t)(colon - p)) &&
		                      is_alpha_run(colon + 1, len - (size_t)(colon - p) - 1)
		                : is_alpha_run(p, len);
		if (!ok)
			return th_err(
			    err, TH_EINVAL,
			    "--on: '%.*s' is not an action type (letters only, optionally "
			    "TYPE:field, e.g. commentCard or updateCard:idList)",
			    (int)(len > 60 ? 60 : len), p);
		if (!p[len])
			break;
		p += len + 1;
	}
	return 0;
}

int handlers_check_url(const char *url, th_error *err)
{
	if (!url || !*url)
		return th_err(err, TH_EINVAL,
		              "--forward: expected a URL such as https://example.com/hook");
	size_t len = strlen(url);
	if (len > URL_MAX)
		return th_err(err, TH_EINVAL, "--forward: URL longer than %d bytes", URL_MAX);
	const char *host = str_starts(url, "http://")    ? url + 7
	                   : str_starts(url, "https://") ? url + 8
	                                                 : NULL;
	if (!host)
		return th_err(
		    err, TH_EINVAL,
		    "--forward: only http:// and https:// URLs, e.g. https://example.com/hook");
	if (!*host || *host == '/' || *host == ':' || *host == '?' || *host == '#')
		return th_err(err, TH_EINVAL, "--forward: the URL has no host");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c >= 0x7f)
			return th_err(
			    err, TH_EINVAL,
			    "--forward: the URL contains a space, control or non-ASCII byte "
			    "(percent-encode it)");
	}
	return 0;
}

int handlers_add(svc_ctx *sc, const handler_spec *spec, handler *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	int rc = 0;
	if (spec->kind == HANDLER_EXEC) {
		if (!spec->target || !*spec->target)
			return th_err(
			    err, TH_EINVAL,
			    "--exec: expected a command, e.g. --exec 'cat >> events.log'");
		if (strlen(spec->target) > COMMAND_MAX)
			return th_err(err, TH_EINVAL, "--exec: command longer than %d bytes",
			              COMMAND_MAX);
	} else if (spec->kind == HANDLER_FORWARD) {
		if ((rc = handlers_check_url(spec->target, err)))
			return rc;
	} else {
		return th_err(err, TH_EINVAL,
		              "handlers of C functions are connected with th_connect()");
	}
	if (!str_utf8_valid(spec->target, strlen(spec->target)))
		return th_err(err, TH_EINVAL, "the handler target is not valid UTF-8");
	if (spec->on && (rc = handlers_check_on(spec->on, err)))
		return rc;
	if (spec->model && !str_is_trello_id(spec->model))
		return th_err(err, TH_EINVAL,
		              "--model: expected a 24-hex Trello id of a board, list or card, e.g. "
		              "5f0c1e2d3b4a596877665544");
	char id[ID_LEN + 1], secret[64];
	if (rand_id(id))
		return th_err(err, TH_EIO, "no randomness for a handler id");
	out->kind = spec->kind;
	out->id = str_dup(id);
	out->target = str_dup(spec->target);
	out->on = spec->on ? str_dup(spec->on) : NULL;
	out->model = spec->model ? str_dup(spec->model) : NULL;
	out->enabled = true;
	out->created_at = time_now_ms();
	if (spec->kind == HANDLER_FORWARD) {
		if (sign_sw_secret_new(secret)) {
			rc = th_err(err, TH_EIO, "no randomness for a signing secret");
			goto out;
		}
		out->secret = str_dup(secret);
	}
	if (!out->id || !out->target || (spec->on && !out->on) || (spec->model && !out->model) ||
	    (spec->kind == HANDLER_FORWARD && !out->secret)) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	/* the caller gets the plain secret (shown once); the row keeps it sealed */
	char *stored = NULL;
	if (out->secret && (rc = handlers_seal_for_store(sc, out->secret, &stored, err)))
		goto out;
	handler row = *out;
	row.secret = stored;
	rc = store_handler_insert(sc->st, &row, err);
	str_free_secret(stored);
out:
	explicit_bzero(secret, sizeof secret);
	if (rc)
		handler_clear(out);
	return rc;
}

int handlers_remove(svc_ctx *sc, const char *id, th_error *err)
{
	return store_handler_delete(sc->st, id, err);
}

int handlers_delivery_retry(svc_ctx *sc, const char *id, th_error *err)
{
	return store_delivery_retry(sc->st, id, err);
}

int handlers_event_replay(svc_ctx *sc, const char *id, size_t *out_n, th_error *err)
{
	*out_n = 0;
	return store_event_replay(sc->st, id, out_n, err);
}

int handlers_ensure_funcs(svc_ctx *sc, th_error *err)
{
	if (!sc->funcs->n)
		return 0;
	handler *hs = NULL;
	size_t n = 0;
	int rc = store_handler_list(sc->st, &hs, &n, err);
	if (rc)
		return rc;
	for (size_t f = 0; !rc && f < sc->funcs->n; f++) {
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found =
			    hs[i].kind == HANDLER_FUNC && str_eq(hs[i].target, sc->funcs->v[f].uid);
		if (found)
			continue;
		char id[ID_LEN + 1];
		if (rand_id(id)) {
			rc = th_err(err, TH_EIO, "no randomness for a handler id");
			break;
		}
		handler h = {.id = id,
		             .kind = HANDLER_FUNC,
		             .target = sc->funcs->v[f].uid,
		             .enabled = true,
		             .created_at = time_now_ms()};
		rc = store_handler_insert(sc->st, &h, err);
		if (!rc)
			log_info("dispatch", "C function '%s' registered as handler %s",
			         sc->funcs->v[f].uid, id);
	}
	handler_list_free(hs, n);
	return rc;
}
