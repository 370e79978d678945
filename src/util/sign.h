/* SPDX-License-Identifier: MIT */
/*
 * sign — the two webhook signature schemes trellohook deals with.
 *
 * Trello (incoming): X-Trello-Webhook = base64(HMAC-SHA1(app secret,
 *   raw body bytes ++ callbackURL exactly as registered)).
 * Standard Webhooks (outgoing forwards): webhook-signature = "v1," +
 *   base64(HMAC-SHA256(key, "<msg id>.<unix seconds>.<body>")), where the key
 *   is the base64 part of a "whsec_..." secret, decoded.
 */
#ifndef TH_SIGN_H
#define TH_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRELLO_SIG_LEN 28 /* base64 of 20 bytes */

/* Compute the Trello signature into @out (NUL-terminated). */
int sign_trello(const char *secret, const void *body, size_t len, const char *callback_url,
                char out[TRELLO_SIG_LEN + 1]);
/* Constant-time check of a received X-Trello-Webhook value. Returns 0 when it
 * matches, TH_EAUTH otherwise; @why (may be NULL) gets "missing", "malformed"
 * or "mismatch". */
int sign_trello_verify(const char *secret, const void *body, size_t len, const char *callback_url,
                       const char *header, const char **why);

/* A new Standard Webhooks secret "whsec_" + base64(24 random bytes). */
int sign_sw_secret_new(char out[64]);
/* "v1,<base64 sig>" for msg id @id at unix time @ts. @out must hold 64+ bytes. */
int sign_sw(const char *whsec, const char *id, int64_t ts, const void *body, size_t len, char *out,
            size_t outsz);

#endif
