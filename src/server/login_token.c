/* SPDX-License-Identifier: MIT */
/* login_token.c — see login_token.h. */
#include <sodium.h>
#include <string.h>

#include "server/login_token.h"
#include "util/util.h"

#define NONCE_LEN 16
#define NONCE_B64 22 /* base64url of 16 bytes, no padding */
#define MAC_B64 43   /* base64url of 32 bytes, no padding */
#define ISSUED_MAX 12

int login_token_key(unsigned char key[LOGIN_TOKEN_KEY_LEN], const unsigned char *secret)
{
	if (!secret)
		return rand_fill(key, LOGIN_TOKEN_KEY_LEN) ? TH_EIO : 0;
	/* a key of its own for this purpose, not the sealing key itself */
	static const char label[] = "trellohook admin login token v1";
	crypto_auth_hmacsha256(key, (const unsigned char *)label, sizeof label - 1, secret);
	return 0;
}

/* The mac of "login.<issued>.<nonce>" as base64url into @out (MAC_B64 + 1). */
static void mac_of(const unsigned char key[LOGIN_TOKEN_KEY_LEN], const char *issued,
                   size_t issued_len, const char *nonce, char out[MAC_B64 + 1])
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_init(&st, key, LOGIN_TOKEN_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)"login.", 6);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)issued, issued_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)nonce, NONCE_B64);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2base64(out, MAC_B64 + 1, mac, sizeof mac,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(&st, sizeof st);
}

int login_token_make(const unsigned char key[LOGIN_TOKEN_KEY_LEN], int64_t now_s,
                     char out[LOGIN_TOKEN_MAX])
{
	unsigned char raw[NONCE_LEN];
	char issued[ISSUED_MAX + 1], nonce[NONCE_B64 + 1], mac[MAC_B64 + 1];
	if (now_s < 0 || rand_fill(raw, sizeof raw))
		return TH_EIO;
	sodium_bin2base64(nonce, sizeof nonce, raw, sizeof raw,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	str_printf(issued, sizeof issued, "%lld", (long long)now_s);
	mac_of(key, issued, strlen(issued), nonce, mac);
	str_printf(out, LOGIN_TOKEN_MAX, "%s.%s.%s", issued, nonce, mac);
	return 0;
}

enum login_token_check login_token_check(const unsigned char key[LOGIN_TOKEN_KEY_LEN],
                                         const char *tok, int64_t now_s)
{
	if (!tok)
		return LOGIN_TOKEN_MALFORMED;
	size_t len = strnlen(tok, LOGIN_TOKEN_MAX);
	const char *dot1 = memchr(tok, '.', len);
	if (len >= LOGIN_TOKEN_MAX || !dot1)
		return LOGIN_TOKEN_MALFORMED;
	/* issued: 1..ISSUED_MAX decimal digits, no sign, no leading zero */
	size_t ilen = (size_t)(dot1 - tok);
	if (ilen < 1 || ilen > ISSUED_MAX || (tok[0] == '0' && ilen > 1))
		return LOGIN_TOKEN_MALFORMED;
	int64_t issued = 0;
	for (size_t i = 0; i < ilen; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return LOGIN_TOKEN_MALFORMED;
		issued = issued * 10 + (tok[i] - '0');
	}
	const char *nonce = dot1 + 1;
	if (len != ilen + 1 + NONCE_B64 + 1 + MAC_B64 || nonce[NONCE_B64] != '.' ||
	    !str_is_b64url(nonce, NONCE_B64) || !str_is_b64url(nonce + NONCE_B64 + 1, MAC_B64))
		return LOGIN_TOKEN_MALFORMED;
	char want[MAC_B64 + 1];
	mac_of(key, tok, ilen, nonce, want);
	if (sodium_memcmp(want, nonce + NONCE_B64 + 1, MAC_B64) != 0)
		return LOGIN_TOKEN_FORGED;
	if (issued > now_s + LOGIN_TOKEN_SKEW_S || now_s - issued > LOGIN_TOKEN_TTL_S)
		return LOGIN_TOKEN_EXPIRED;
	return LOGIN_TOKEN_OK;
}
