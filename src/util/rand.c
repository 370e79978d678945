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
