/* SPDX-License-Identifier: MIT */
/* rand.c — cryptographic randomness and opaque ids. */
#include <openssl/rand.h>
#include <string.h>

#include "util/util.h"

int rand_fill(void *out, size_t len)
{
	if (len > INT32_MAX || RAND_bytes(out, (int)len) != 1)
		return TH_EIO;
	return 0;
}

static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int rand_id(char out[ID_LEN + 1])
{
	unsigned char raw[ID_LEN];
	if (rand_fill(raw, sizeof raw))
		return TH_EIO;
	/* 64 symbols: each byte's low 6 bits is one character. The first one is
	 * a letter or digit (62 symbols): an id starting with '-' would read as a
	 * flag on the command line (`webhook rm -3gV...`). 5.95 + 19 * 6 = 119.95
	 * random bits; the slight bias of `% 62` costs less than 0.03 bits. */
	out[0] = url_alphabet[raw[0] % 62];
	for (size_t i = 1; i < ID_LEN; i++)
		out[i] = url_alphabet[raw[i] & 63];
	out[ID_LEN] = '\0';
	return 0;
}

/* Digits, then capitals, then small letters: ASCII order, so fixed-width
 * base-62 numbers compare like the numbers they encode. */
static const char sortable_alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define TIMED_PREFIX 8 /* 62^8 ms is ~6,900 years */

#define TIMED_RANDOM (ID_LEN - TIMED_PREFIX) /* bytes drawn per timed id */
#define TIMED_DRAW 64                        /* ids per draw in rand_ids_timed */

/* The timed id of @now_ms with its random part from @raw. */
static void timed_id_of(char out[ID_LEN + 1], int64_t now_ms, const unsigned char *raw)
{
	uint64_t t = now_ms > 0 ? (uint64_t)now_ms : 0;
	for (int i = TIMED_PREFIX - 1; i >= 0; i--) {
		out[i] = sortable_alphabet[t % 62];
		t /= 62;
	}
	/* 12 characters of 6 random bits each */
	for (size_t i = TIMED_PREFIX; i < ID_LEN; i++)
		out[i] = url_alphabet[raw[i - TIMED_PREFIX] & 63];
	out[ID_LEN] = '\0';
}

int rand_id_timed(char out[ID_LEN + 1], int64_t now_ms)
{
	return rand_ids_timed((char(*)[ID_LEN + 1]) out, 1, now_ms);
}

int rand_ids_timed(char (*out)[ID_LEN + 1], size_t n, int64_t now_ms)
{
	unsigned char raw[TIMED_DRAW * TIMED_RANDOM];
	for (size_t done = 0; done < n;) {
		size_t k = n - done < TIMED_DRAW ? n - done : TIMED_DRAW;
		if (rand_fill(raw, k * TIMED_RANDOM))
			return TH_EIO;
		for (size_t i = 0; i < k; i++)
			timed_id_of(out[done + i], now_ms, raw + i * TIMED_RANDOM);
		done += k;
	}
	return 0;
}

bool id_is_wellformed(const char *s)
{
	if (!s)
		return false;
	size_t n = strlen(s);
	if (n < 16 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(url_alphabet, s[i]))
			return false;
	return true;
}
