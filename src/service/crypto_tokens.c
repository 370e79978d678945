/* SPDX-License-Identifier: MIT */
/*
 * crypto_tokens.c — Trello tokens at rest.
 *
 * With TRELLOHOOK_SECRET_KEY set, a token is stored as
 *   "enc:v1:" + base64( nonce (24 bytes) || crypto_secretbox_easy(token) )
 * with a fresh random nonce every time (so equal tokens do not look equal in
 * the database; the service layer compares plain text to find duplicates).
 * Without a key tokens are stored as they are. Reading accepts both forms,
 * so rows written before a key was configured keep working.
 *
 * The same sealing (svc_seal/svc_open) keeps the forward handlers' whsec_
 * signing secrets (service/handlers_secret.c).
 *
 * Because sealed values differ every time, a token's identity in the store
 * is its fingerprint (tokens_fingerprint): BLAKE2b-256 (crypto_generichash)
 * keyed with a subkey derived from the secret key (crypto_kdf, context
 * "thtokfp1"), so the database alone does not let anyone test a guessed
 * token; without a secret key the tokens are stored in plain text anyway and
 * a fixed domain key is used. The prefix ("k:" / "d:") says which, so rows
 * fingerprinted before a key was configured are fingerprinted again.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"

#define TOKEN_MAX 512 /* longer than any Trello token; bounds the work below */

bool tokens_is_sealed(const char *stored)
{
	return str_starts(stored, TOKEN_SEAL_PREFIX);
}

static int sodium_ready(th_error *err)
{
	if (sodium_init() < 0)
		return th_err(err, TH_EIO, "libsodium could not be initialised");
	return 0;
}

int svc_seal(const th_config *cfg, const char *what, const char *plain, char **out, th_error *err)
{
	*out = NULL;
	if (!plain)
		return th_err(err, TH_EINVAL, "no %s", what);
	size_t len = strlen(plain);
	if (len > TOKEN_MAX)
		return th_err(err, TH_ETOOBIG, "%s longer than %d characters", what, TOKEN_MAX);
	if (!cfg->has_secret_key) {
		*out = str_dup(plain);
		return *out ? 0 : th_err(err, TH_ENOMEM, "out of memory");
	}
	int rc = sodium_ready(err);
	if (rc)
		return rc;
	unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + TOKEN_MAX];
	size_t boxlen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	if (crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain,
	                          len, box, cfg->secret_key) != 0)
		return th_err(err, TH_EIO, "cannot encrypt the %s", what);
	size_t plen = strlen(TOKEN_SEAL_PREFIX);
	char *s = malloc(plen + b64_encoded_len(boxlen));
	if (!s)
		return th_err(err, TH_ENOMEM, "out of memory");
	memcpy(s, TOKEN_SEAL_PREFIX, plen);
	b64_encode(box, boxlen, s + plen);
	sodium_memzero(box, sizeof box);
	*out = s;
	return 0;
}

int svc_open(const th_config *cfg, const char *what, const char *stored, char **out, th_error *err)
{
	*out = NULL;
	if (!stored)
		return th_err(err, TH_EINVAL, "no %s stored", what);
	if (!tokens_is_sealed(stored)) {
		*out = str_dup(stored);
		return *out ? 0 : th_err(err, TH_ENOMEM, "out of memory");
	}
	if (!cfg->has_secret_key)
		return th_err(err, TH_ECONFIG,
		              "a stored %s is encrypted: set TRELLOHOOK_SECRET_KEY to the key "
		              "it was encrypted with",
		              what);
	int rc = sodium_ready(err);
	if (rc)
		return rc;
	const char *b64 = stored + strlen(TOKEN_SEAL_PREFIX);
	unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + TOKEN_MAX];
	long n = b64_decode(b64, strlen(b64), box, sizeof box);
	if (n < (long)(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES))
		return th_err(err, TH_ESTORE, "a stored %s is damaged (not valid enc:v1 data)",
		              what);
	size_t clen = (size_t)n - crypto_secretbox_NONCEBYTES;
	size_t plen = clen - crypto_secretbox_MACBYTES;
	char *p = malloc(plen + 1);
	if (!p)
		return th_err(err, TH_ENOMEM, "out of memory");
	if (crypto_secretbox_open_easy((unsigned char *)p, box + crypto_secretbox_NONCEBYTES, clen,
	                               box, cfg->secret_key) != 0) {
		free(p);
		return th_err(err, TH_EAUTH,
		              "cannot decrypt a stored %s: TRELLOHOOK_SECRET_KEY is not the key it "
		              "was encrypted with",
		              what);
	}
	p[plen] = '\0';
	if (memchr(p, '\0', plen)) {
		sodium_memzero(p, plen);
		free(p);
		return th_err(err, TH_ESTORE, "a stored %s is damaged (NUL byte)", what);
	}
	*out = p;
	return 0;
}

int tokens_seal(const th_config *cfg, const char *plain, char **out, th_error *err)
{
	return svc_seal(cfg, "Trello token", plain, out, err);
}

int tokens_open(const th_config *cfg, const char *stored, char **out, th_error *err)
{
	return svc_open(cfg, "Trello token", stored, out, err);
}

#define FP_CONTEXT "thtokfp1" /* crypto_kdf context: 8 bytes, ours */
#define FP_DOMAIN "trellohook token fingerprint v1"

int tokens_fingerprint(const th_config *cfg, const char *plain, char out[TOKEN_FP_SIZE],
                       th_error *err)
{
	out[0] = '\0';
	if (!plain)
		return th_err(err, TH_EINVAL, "no token");
	size_t len = strlen(plain);
	if (len > TOKEN_MAX)
		return th_err(err, TH_ETOOBIG, "token longer than %d characters", TOKEN_MAX);
	int rc = sodium_ready(err);
	if (rc)
		return rc;
	unsigned char key[crypto_generichash_KEYBYTES];
	unsigned char h[32];
	if (cfg->has_secret_key)
		rc = crypto_kdf_derive_from_key(key, sizeof key, 1, FP_CONTEXT, cfg->secret_key);
	else
		rc = crypto_generichash(key, sizeof key, (const unsigned char *)FP_DOMAIN,
		                        strlen(FP_DOMAIN), NULL, 0);
	if (rc == 0)
		rc = crypto_generichash(h, sizeof h, (const unsigned char *)plain, len, key,
		                        sizeof key);
	sodium_memzero(key, sizeof key);
	if (rc != 0)
		return th_err(err, TH_EIO, "cannot fingerprint the token");
	out[0] = cfg->has_secret_key ? 'k' : 'd';
	out[1] = ':';
	sodium_bin2hex(out + 2, TOKEN_FP_SIZE - 2, h, sizeof h);
	return 0;
}
