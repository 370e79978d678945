/* SPDX-License-Identifier: MIT */
/* Signature schemes: Trello's vectors (tests/data/signature-vectors.txt, from
 * the shared Trello facts) and Standard Webhooks' published example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sign.h"
#include "util/util.h"

static void test_trello_vectors(void **state)
{
	char path[512];
	const char *dir = getenv("TH_TEST_DATA");
	assert_non_null(dir);
	snprintf(path, sizeof path, "%s/signature-vectors.txt", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[4096];
	int checked = 0;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = '\0';
		char *fields[5];
		char *p = line;
		for (int i = 0; i < 5; i++) {
			fields[i] = p;
			p = strchr(p, '\t');
			if (i < 4) {
				assert_non_null(p);
				*p++ = '\0';
			}
		}
		json_error_t jerr;
		json_t *body = json_loads(fields[3], JSON_DECODE_ANY, &jerr);
		assert_non_null(body);
		const char *bytes = json_string_value(body);
		size_t len = json_string_length(body);
		char sig[TRELLO_SIG_LEN + 1];
		assert_int_equal(sign_trello(fields[1], bytes, len, fields[2], sig), 0);
		const char *why = NULL;
		if (strcmp(fields[0], "utf8") == 0) {
			assert_string_equal(sig, fields[4]);
			assert_int_equal(
			    sign_trello_verify(fields[1], bytes, len, fields[2], fields[4], &why),
			    0);
			checked++;
		} else {
			/* the pre-2016 low-byte scheme must NOT verify for non-ASCII bodies */
			assert_int_equal(
			    sign_trello_verify(fields[1], bytes, len, fields[2], fields[4], &why),
			    TH_EAUTH);
			assert_string_equal(why, "mismatch");
		}
		json_decref(body);
	}
	fclose(f);
	assert_true(checked >= 4);
}

static void test_trello_verify_reasons(void **state)
{
	const char *why;
	const char *url = "https://example.com/webhooks";
	assert_int_equal(sign_trello_verify("secret", "x", 1, url, NULL, &why), TH_EAUTH);
	assert_string_equal(why, "missing");
	assert_int_equal(sign_trello_verify("secret", "x", 1, url, "", &why), TH_EAUTH);
	assert_string_equal(why, "missing");
	assert_int_equal(sign_trello_verify("secret", "x", 1, url, "not base64!", &why), TH_EAUTH);
	assert_string_equal(why, "malformed");
	assert_int_equal(
	    sign_trello_verify("secret", "x", 1, url, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", &why),
	    TH_EAUTH);
	assert_string_equal(why, "mismatch");
	/* right signature, other callback URL: the URL is part of what is signed */
	char sig[TRELLO_SIG_LEN + 1];
	assert_int_equal(sign_trello("secret", "x", 1, url, sig), 0);
	assert_int_equal(
	    sign_trello_verify("secret", "x", 1, "https://example.com/webhooks/", sig, &why),
	    TH_EAUTH);
}

/* The last base64 character of a 20-byte MAC carries 2 unused bits: a header
 * that differs from the real signature only there decodes to the same MAC,
 * and must still be refused (found by fuzz/fuzz_sign). */
static void test_trello_verify_noncanonical(void **state)
{
	const char *why;
	const char *url = "https://example.com/webhooks";
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char sig[TRELLO_SIG_LEN + 1];
	assert_int_equal(sign_trello("secret", "x", 1, url, sig), 0);
	assert_int_equal(sign_trello_verify("secret", "x", 1, url, sig, &why), 0);
	const char *at = strchr(alphabet, sig[26]);
	assert_non_null(at);
	int refused = 0;
	for (int low = 1; low < 4; low++) {
		char bad[TRELLO_SIG_LEN + 1];
		memcpy(bad, sig, sizeof bad);
		bad[26] = alphabet[((at - alphabet) & ~3) | low];
		assert_int_equal(sign_trello_verify("secret", "x", 1, url, bad, &why), TH_EAUTH);
		assert_string_equal(why, "malformed");
		refused++;
	}
	assert_int_equal(refused, 3);
}

/* The example from the Standard Webhooks specification. */
/* sign_trello keeps a keyed context per thread: another key, a key too long
 * to keep and the first key again all give what a fresh HMAC gives
 * (computed here with OpenSSL's one-shot HMAC()). */
static void test_trello_key_changes(void **state)
{
	char longkey[300];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	const char *keys[] = {"secret-one", "secret-two", "",          longkey,
	                      "secret-one", "secret-on",  "secret-one"};
	const char *body = "{\"action\":{}}", *url = "https://example.com/callbacks/x";
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		unsigned char msg[128], mac[EVP_MAX_MD_SIZE];
		size_t blen = strlen(body), ulen = strlen(url);
		memcpy(msg, body, blen);
		memcpy(msg + blen, url, ulen);
		unsigned n = 0;
		assert_non_null(
		    HMAC(EVP_sha1(), keys[i], (int)strlen(keys[i]), msg, blen + ulen, mac, &n));
		char want[TRELLO_SIG_LEN + 1], got[TRELLO_SIG_LEN + 1];
		b64_encode(mac, n, want);
		assert_int_equal(sign_trello(keys[i], body, blen, url, got), 0);
		assert_string_equal(got, want);
		const char *why = NULL;
		assert_int_equal(sign_trello_verify(keys[i], body, blen, url, want, &why), 0);
		/* and the same signature under the key before it does not verify */
		if (i > 0 && strcmp(keys[i], keys[i - 1]) != 0)
			assert_int_equal(
			    sign_trello_verify(keys[i - 1], body, blen, url, want, &why), TH_EAUTH);
	}
}

static void test_standard_webhooks(void **state)
{
	char out[128];
	const char *body = "{\"test\": 2432232314}";
	assert_int_equal(sign_sw("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	                         "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
	                         out, sizeof out),
	                 0);
	assert_string_equal(out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	char secret[64];
	assert_int_equal(sign_sw_secret_new(secret), 0);
	assert_true(strncmp(secret, "whsec_", 6) == 0);
	assert_int_equal(sign_sw("whsec_!!!", "id", 1, "x", 1, out, sizeof out), TH_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_trello_vectors),
	    cmocka_unit_test(test_trello_verify_reasons),
	    cmocka_unit_test(test_trello_verify_noncanonical),
	    cmocka_unit_test(test_trello_key_changes),
	    cmocka_unit_test(test_standard_webhooks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
