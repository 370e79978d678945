/* SPDX-License-Identifier: MIT */
/*
 * handlers_secret.c — forward handlers' whsec_ signing secrets at rest.
 *
 * With TRELLOHOOK_SECRET_KEY set, a forward's secret is stored sealed exactly
 * like a Trello token (svc_seal: "enc:v1:" + base64(nonce || secretbox)); the
 * plain secret exists only in memory: shown once by `handler add`, opened by
 * the dispatcher just before it signs a forward, masked in listings. Without
 * a key secrets are stored as they are. Rows written before a key was
 * configured are sealed when serving starts (handlers_seal_secrets).
 */
#include <stdlib.h>
#include <string.h>

#include "service/handlers.h"
#include "service/service.h"
#include "util/log.h"

#define COMPONENT "handlers"
#define WHAT "forward signing secret"

int handlers_open_secret(svc_ctx *sc, handler *h, th_error *err)
{
	if (!h->secret || !tokens_is_sealed(h->secret))
		return 0;
	char *plain = NULL;
	int rc = svc_open(sc->cfg, WHAT, h->secret, &plain, err);
	if (rc)
		return rc;
	str_free_secret(h->secret);
	h->secret = plain;
	return 0;
}

int handlers_seal_for_store(svc_ctx *sc, const char *plain, char **out, th_error *err)
{
	return svc_seal(sc->cfg, WHAT, plain, out, err);
}

size_t handlers_seal_secrets(svc_ctx *sc)
{
	if (!sc->cfg->has_secret_key)
		return 0;
	handler *hs = NULL;
	size_t n = 0, sealed = 0, left = 0;
	th_error err = {0, {0}};
	if (store_handler_list(sc->st, &hs, &n, &err) != 0) {
		log_warn(COMPONENT, "cannot list handlers to seal their secrets: %s", err.msg);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!hs[i].secret || tokens_is_sealed(hs[i].secret))
			continue;
		char *stored = NULL;
		bool changed = false;
		int rc = svc_seal(sc->cfg, WHAT, hs[i].secret, &stored, &err);
		if (!rc)
			rc = store_handler_set_secret(sc->st, hs[i].id, hs[i].secret, stored,
			                              &changed, &err);
		free(stored);
		if (rc)
			log_warn(COMPONENT,
			         "handler %s: its signing secret stays unsealed for now "
			         "(sealed at the next start): %s",
			         hs[i].id, err.msg);
		left += rc != 0;
		sealed += changed; /* not changed: another process sealed it first */
	}
	handler_list_free(hs, n);
	if (sealed)
		log_info(COMPONENT,
		         "sealed the signing secrets of %zu forward handler(s) stored before "
		         "TRELLOHOOK_SECRET_KEY was set",
		         sealed);
	return left;
}

int svc_handler_list(svc_ctx *sc, handler **out, size_t *n, th_error *err)
{
	int rc = store_handler_list(sc->st, out, n, err);
	for (size_t i = 0; !rc && i < *n; i++) {
		/* A secret that cannot be opened here (no key, another key) stays in
		 * its sealed form: listings mask it, so it still shows as "enc:…". */
		th_error oerr = {0, {0}};
		if (handlers_open_secret(sc, &(*out)[i], &oerr) == TH_ENOMEM)
			rc = th_err(err, TH_ENOMEM, "out of memory");
	}
	if (rc && *out) {
		handler_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
