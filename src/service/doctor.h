/* SPDX-License-Identifier: MIT */
/*
 * doctor — `trellohook doctor`: every check between "Trello sends a
 * callback" and "it is stored", one result each, with what to do.
 *
 * The probe (how doctor knows CALLBACK_DOMAIN reaches *this* instance):
 * doctor POSTs a fresh random nonce (64 hex) to
 * CALLBACK_DOMAIN/callbacks/.probe, signed like a Trello delivery
 * (X-Trellohook-Probe: base64 HMAC-SHA1 of TRELLO_API_SECRET over the body
 * followed by that URL). `serve` checks the signature and answers
 * "trellohook-probe-v1 PROOF", PROOF = doctor_probe_proof() over the nonce
 * and the identity of the store it uses (store_identity()). Doctor computes
 * the same from its own store: only a serve that holds the secret AND uses
 * this store can answer it, so a tunnel or proxy pointing at another server
 * (or at another trellohook) is caught; the nonce makes every answer good
 * once. No schema change: the store identity is the time its first schema
 * version was applied.
 */
#ifndef TH_SERVICE_DOCTOR_H
#define TH_SERVICE_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "service/ctx.h"
#include "util/sign.h"

#define DOCTOR_PROBE_PATH "/callbacks/.probe"
#define DOCTOR_PROBE_HEADER "X-Trellohook-Probe"
#define DOCTOR_PROBE_PREFIX "trellohook-probe-v1 "
#define DOCTOR_NONCE_LEN 64

/* One check's result. Strings never hold a secret (tokens are masked). */
typedef struct doctor_check {
	char name[64]; /* "store", "token ATTA…1a2B", "callback probe", ... */
	bool ok;
	char detail[600]; /* what was found */
	char fix[600];    /* what to do ("" when ok) */
} doctor_check;

typedef struct doctor_report {
	doctor_check *items;
	size_t n, cap;
} doctor_report;

/* Is the SQLite file of @cfg's DATABASE_URL missing? (doctor never creates a
 * store: the caller opens it only when this says false.) @detail says so. */
bool doctor_store_missing(const th_config *cfg, char *detail, size_t detailsz);

/* Run every check for configuration @cfg into @out (zeroed by the caller;
 * free with doctor_report_free()), with @sc the service context of the
 * opened store, or NULL when it could not be opened (@store_error says why,
 * or the file is missing). Network steps time out after a few seconds each.
 * Returns 0 (a failed check is a result, not an error) or TH_ENOMEM. Not
 * thread-safe for one @out. */
int doctor_run(const th_config *cfg, svc_ctx *sc, const char *store_error, doctor_report *out);
void doctor_report_free(doctor_report *r);

/* PROOF of the probe for @nonce and store identity @identity under
 * @secret, into @out. Used by doctor and by serve's probe route. */
int doctor_probe_proof(const char *secret, const char *nonce, const char *identity,
                       char out[TRELLO_SIG_LEN + 1]);

#endif
