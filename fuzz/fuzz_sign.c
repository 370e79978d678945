/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sign — util/sign.c: the X-Trello-Webhook check trellohook runs on
 * every unauthenticated POST, and the Standard Webhooks signing of forwards.
 *
 * Input: SECRET \x01 CALLBACK_URL \x01 HEADER \x01 BODY (missing pieces are
 * empty). Checks: verification of the hostile header never crashes and
 * answers 0 or TH_EAUTH with a reason; the signature computed for the same
 * body verifies, and the same one with any byte flipped or cut does not.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/sign.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	size_t l1, l2, l3, l4;
	const uint8_t *p1 = fz_cut(&in, 1, &l1);
	const uint8_t *p2 = fz_cut(&in, 1, &l2);
	const uint8_t *p3 = fz_cut(&in, 1, &l3);
	const uint8_t *p4 = fz_cut(&in, 1, &l4);
	char *secret = fz_dup(p1 ? p1 : data, p1 ? l1 : 0);
	char *url = fz_dup(p2 ? p2 : data, p2 ? l2 : 0);
	char *header = fz_dup(p3 ? p3 : data, p3 ? l3 : 0);
	void *body = fz_dup(p4 ? p4 : data, p4 ? l4 : 0);
	size_t blen = p4 ? l4 : 0;

	const char *why = NULL;
	int rc = sign_trello_verify(secret, body, blen, url, p3 ? header : NULL, &why);
	if (rc != 0 && (rc != TH_EAUTH || !why))
		abort();

	char sig[TRELLO_SIG_LEN + 1];
	if (sign_trello(secret, body, blen, url, sig) == 0) {
		if (strlen(sig) != TRELLO_SIG_LEN)
			abort();
		if (sign_trello_verify(secret, body, blen, url, sig, &why) != 0)
			abort();
		char bad[TRELLO_SIG_LEN + 1];
		memcpy(bad, sig, sizeof bad);
		size_t at = blen ? ((const uint8_t *)body)[0] % TRELLO_SIG_LEN : 0;
		bad[at] = bad[at] == 'A' ? 'B' : 'A';
		if (sign_trello_verify(secret, body, blen, url, bad, &why) == 0)
			abort();
		bad[at] = sig[at];
		bad[TRELLO_SIG_LEN - 1] = '\0';
		if (sign_trello_verify(secret, body, blen, url, bad, &why) == 0)
			abort();
	}

	/* Standard Webhooks: the secret piece as a whsec_ secret, the url as the id. */
	char out[128];
	(void)sign_sw(secret, url, (int64_t)blen * 1000003, body, blen, out, sizeof out);
	(void)sign_sw(secret, url, 0, body, blen, out, 8); /* too small an out */

	free(secret);
	free(url);
	free(header);
	free(body);
	return 0;
}
