/* SPDX-License-Identifier: MIT */
/* sign.c — see sign.h. HMAC via OpenSSL 3; comparisons in constant time. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/sign.h"
#include "util/util.h"

/* The HMAC implementation, fetched once: EVP_MAC_fetch() searches the
 * providers under a lock and showed up in profiles of the receive path. The
 * fetched object is immutable and may be shared by threads; it lives as long
 * as the process (this module owns it). */
static EVP_MAC *hmac_impl;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void fetch_hmac(void)
{
	hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* HMAC over two parts, the way both schemes need it (body ++ suffix). */
static int hmac2(const EVP_MD *md, const void *key, size_t keylen, const void *a, size_t alen,
                 const void *b, size_t blen, unsigned char *out, unsigned *outlen)
{
	int rc = TH_EIO;
	pthread_once(&hmac_once, fetch_hmac);
	EVP_MAC_CTX *ctx = hmac_impl ? EVP_MAC_CTX_new(hmac_impl) : NULL;
	if (!ctx)
		goto out;
	OSSL_PARAM params[2];
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_end();
	size_t n = 0;
	if (EVP_MAC_init(ctx, key, keylen, params) != 1 || EVP_MAC_update(ctx, a, alen) != 1 ||
	    EVP_MAC_update(ctx, b, blen) != 1 || EVP_MAC_final(ctx, out, &n, EVP_MAX_MD_SIZE) != 1)
		goto out;
	*outlen = (unsigned)n;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

/* The Trello scheme's HMAC-SHA1 under one key, kept per thread: keying a
 * context (fetching SHA-1, hashing the padded key into the inner and outer
 * states) was about half the cost of a callback's verification, and the app
 * secret changes only at startup. A thread's context is keyed again when it
 * is asked for another key (tests, the mock), and re-initialised from its
 * saved inner state on every other call (EVP_MAC_init with no key). Keys
 * longer than KEYED_MAX take the unkeyed path. The copy of the key is only
 * compared with the key the caller passes (in constant time all the same)
 * and cleansed when the thread ends. */
#define KEYED_MAX 128
struct keyed {
	EVP_MAC_CTX *ctx;
	size_t keylen; /* SIZE_MAX: @ctx holds no usable key */
	unsigned char key[KEYED_MAX];
};
static pthread_key_t keyed_slot;
static pthread_once_t keyed_once = PTHREAD_ONCE_INIT;
static bool keyed_usable;

static void keyed_free(void *p)
{
	struct keyed *k = p;
	EVP_MAC_CTX_free(k->ctx);
	OPENSSL_cleanse(k, sizeof *k);
	free(k);
}

static void keyed_setup(void)
{
	keyed_usable = pthread_key_create(&keyed_slot, keyed_free) == 0;
}

/* This thread's context, keyed with @key; NULL when none can be made. */
static EVP_MAC_CTX *keyed_ctx(const void *key, size_t keylen)
{
	pthread_once(&hmac_once, fetch_hmac);
	pthread_once(&keyed_once, keyed_setup);
	if (!hmac_impl || !keyed_usable)
		return NULL;
	struct keyed *k = pthread_getspecific(keyed_slot);
	if (!k) {
		if (!(k = calloc(1, sizeof *k)))
			return NULL;
		k->keylen = SIZE_MAX;
		if (!(k->ctx = EVP_MAC_CTX_new(hmac_impl)) || pthread_setspecific(keyed_slot, k)) {
			keyed_free(k);
			return NULL;
		}
	}
	if (k->keylen == keylen && CRYPTO_memcmp(k->key, key, keylen) == 0)
		return EVP_MAC_init(k->ctx, NULL, 0, NULL) == 1 ? k->ctx : NULL;
	k->keylen = SIZE_MAX;
	OSSL_PARAM params[2];
	params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA1", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(k->ctx, key, keylen, params) != 1)
		return NULL;
	memcpy(k->key, key, keylen);
	k->keylen = keylen;
	return k->ctx;
}

/* HMAC-SHA1(@key, @a ++ @b) into @out (20 bytes), on this thread's keyed
 * context when the key is short enough, else as hmac2 does it. */
static int hmac_sha1(const char *key, const void *a, size_t alen, const void *b, size_t blen,
                     unsigned char *out, unsigned *outlen)
{
	size_t keylen = strlen(key);
	if (keylen > KEYED_MAX)
		return hmac2(EVP_sha1(), key, keylen, a, alen, b, blen, out, outlen);
	EVP_MAC_CTX *ctx = keyed_ctx(key, keylen);
	size_t n = 0;
	if (!ctx || EVP_MAC_update(ctx, a, alen) != 1 || EVP_MAC_update(ctx, b, blen) != 1 ||
	    EVP_MAC_final(ctx, out, &n, EVP_MAX_MD_SIZE) != 1)
		return TH_EIO;
	*outlen = (unsigned)n;
	return 0;
}

int sign_trello(const char *secret, const void *body, size_t len, const char *callback_url,
                char out[TRELLO_SIG_LEN + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	int rc = hmac_sha1(secret, body, len, callback_url, strlen(callback_url), mac, &n);
	if (rc)
		return rc;
	b64_encode(mac, n, out);
	return 0;
}

int sign_trello_verify(const char *secret, const void *body, size_t len, const char *callback_url,
                       const char *header, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if (!header || !*header) {
		*why = "missing";
		return TH_EAUTH;
	}
	unsigned char given[32];
	size_t hlen = strlen(header);
	if (hlen != TRELLO_SIG_LEN || b64_decode(header, hlen, given, sizeof given) != 20) {
		*why = "malformed";
		return TH_EAUTH;
	}
	/* Only the canonical spelling: the decoder ignores the unused low bits of
	 * the last character, so without this four headers pass for each MAC
	 * (found by fuzz/fuzz_sign). The header is public, so memcmp is fine. */
	char canon[TRELLO_SIG_LEN + 1];
	b64_encode(given, 20, canon);
	if (memcmp(canon, header, TRELLO_SIG_LEN) != 0) {
		*why = "malformed";
		return TH_EAUTH;
	}
	unsigned char want[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (hmac_sha1(secret, body, len, callback_url, strlen(callback_url), want, &n) || n != 20) {
		*why = "internal error";
		return TH_EIO;
	}
	if (CRYPTO_memcmp(given, want, 20) != 0) {
		*why = "mismatch";
		return TH_EAUTH;
	}
	*why = "ok";
	return 0;
}

int sign_sw_secret_new(char out[64])
{
	unsigned char key[24];
	if (rand_fill(key, sizeof key))
		return TH_EIO;
	memcpy(out, "whsec_", 6);
	b64_encode(key, sizeof key, out + 6);
	return 0;
}

int sign_sw(const char *whsec, const char *id, int64_t ts, const void *body, size_t len, char *out,
            size_t outsz)
{
	const char *b64 = str_starts(whsec, "whsec_") ? whsec + 6 : whsec;
	unsigned char key[128];
	long klen = b64_decode(b64, strlen(b64), key, sizeof key);
	if (klen <= 0)
		return TH_EINVAL;
	char prefix[160];
	if (!str_printf(prefix, sizeof prefix, "%s.%lld.", id, (long long)ts))
		return TH_EINVAL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	int rc = hmac2(EVP_sha256(), key, (size_t)klen, prefix, strlen(prefix), body, len, mac, &n);
	OPENSSL_cleanse(key, sizeof key);
	if (rc)
		return rc;
	if (outsz < 3 + b64_encoded_len(n))
		return TH_ETOOBIG;
	memcpy(out, "v1,", 3);
	b64_encode(mac, n, out + 3);
	return 0;
}
