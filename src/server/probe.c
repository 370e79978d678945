/* SPDX-License-Identifier: MIT */
/* probe.c — POST /callbacks/.probe: `trellohook doctor`'s proof that
 * CALLBACK_DOMAIN reaches this instance (the protocol: service/doctor.h). */
#include <string.h>

#include "server/server.h"
#include "service/doctor.h"
#include "store/identity.h"
#include "util/log.h"

int server_probe(svc_ctx *sc, http_request *req, http_response *res)
{
	if (!str_eq(req->method, "POST")) {
		http_response_text(res, 405, "method not allowed\n");
		http_response_header(res, "Allow", "POST");
		return HTTP_DONE;
	}
	/* the body is the nonce: exactly 64 hex characters */
	if (req->body_len != DOCTOR_NONCE_LEN || !str_is_hex(req->body, req->body_len)) {
		http_response_text(res, 400, "the probe's body is a 64-hex nonce\n");
		return HTTP_DONE;
	}
	char url[700];
	if (!str_printf(url, sizeof url, "%s" DOCTOR_PROBE_PATH, sc->cfg->callback_domain) ||
	    sign_trello_verify(sc->cfg->api_secret, req->body, req->body_len, url,
	                       http_header(req, DOCTOR_PROBE_HEADER), NULL) != 0) {
		http_response_text(res, 401, "probe signature missing or wrong\n");
		return HTTP_DONE;
	}
	char identity[128], proof[TRELLO_SIG_LEN + 1];
	th_error err = {0, {0}};
	if (store_identity(sc->cfg->database_url, identity, sizeof identity, &err)) {
		log_warn("probe", "cannot read the store's identity: %s", err.msg);
		http_response_text(res, 503, "store unavailable\n");
		return HTTP_DONE;
	}
	if (doctor_probe_proof(sc->cfg->api_secret, req->body, identity, proof)) {
		http_response_text(res, 500, "cannot compute the proof\n");
		return HTTP_DONE;
	}
	http_response_text(res, 200, DOCTOR_PROBE_PREFIX "%s\n", proof);
	http_response_header(res, "Cache-Control", "no-store");
	return HTTP_DONE;
}
