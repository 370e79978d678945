/* SPDX-License-Identifier: MIT */
/*
 * login_token — the admin sign-in form's anti-CSRF token, bound to a server
 * key: "<issued>.<nonce>.<mac>" where issued is the time in seconds since the
 * epoch, nonce 16 random bytes and mac HMAC-SHA-256(key, "login." issued "."
 * nonce), both base64url without padding. The same value goes in a cookie
 * and in the form (double submit); the POST is accepted only when both agree
 * AND the mac verifies under our key AND the token is not expired, so a value
 * an attacker picks (or planted in a cookie) is refused.
 *
 * The key: derived from TRELLOHOOK_SECRET_KEY when it is set (stable across
 * restarts and between instances sharing the key), else random per process
 * (a restart then makes open sign-in forms ask for a reload). No sockets: the
 * functions take the key and the clock, for tests.
 */
#ifndef TH_LOGIN_TOKEN_H
#define TH_LOGIN_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGIN_TOKEN_KEY_LEN 32
#define LOGIN_TOKEN_MAX 96     /* a token and its NUL fit */
#define LOGIN_TOKEN_TTL_S 3600 /* as long as the cookie lives */
#define LOGIN_TOKEN_SKEW_S 60  /* issued this far in the future is still fine */

enum login_token_check {
	LOGIN_TOKEN_OK = 0,
	LOGIN_TOKEN_MALFORMED, /* not of our form (length, characters, fields) */
	LOGIN_TOKEN_FORGED,    /* the mac does not verify under our key */
	LOGIN_TOKEN_EXPIRED,   /* older than LOGIN_TOKEN_TTL_S, or from the future */
};

/* Fill @key: from @secret (32 bytes, or NULL: random). 0 or TH_EIO. */
int login_token_key(unsigned char key[LOGIN_TOKEN_KEY_LEN], const unsigned char *secret);
/* A fresh token issued at @now_s into @out (LOGIN_TOKEN_MAX). 0 or TH_EIO. */
int login_token_make(const unsigned char key[LOGIN_TOKEN_KEY_LEN], int64_t now_s,
                     char out[LOGIN_TOKEN_MAX]);
/* Is @tok (outside data: any bytes, NUL-terminated) a token of ours, valid at
 * @now_s? Constant time in the mac. Thread-safe (no state). */
enum login_token_check login_token_check(const unsigned char key[LOGIN_TOKEN_KEY_LEN],
                                         const char *tok, int64_t now_s);

#endif
