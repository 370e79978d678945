/* SPDX-License-Identifier: MIT */
/* payload_codec.c — see payload_codec.h. */
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/payload_codec.h"
#include "util/util.h"

#define HEADER 4          /* the body's length, little-endian */
#define LZ4_MAX_RATIO 255 /* the most bytes LZ4 decodes from one */

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void keep_raw(const void *p, size_t len, packed_payload *out)
{
	out->codec = PAYLOAD_RAW;
	out->data = p;
	out->len = len;
	out->owned = NULL;
}

void payload_pack(const void *p, size_t len, packed_payload *out)
{
	keep_raw(p, len, out);
	if (len < PAYLOAD_PACK_MIN || len > PAYLOAD_UNPACKED_MAX)
		return;
	/* Room for the header and a block no larger than the raw body: a body
	 * that would not shrink is not worth a codec (LZ4 returns 0 when the
	 * block does not fit). */
	int cap = (int)(len - HEADER - 1);
	unsigned char *block = malloc(HEADER + (size_t)cap);
	if (!block)
		return; /* raw is always right */
	int n = LZ4_compress_default(p, (char *)block + HEADER, (int)len, cap);
	if (n <= 0) {
		free(block);
		return;
	}
	put_le32(block, (uint32_t)len);
	out->codec = PAYLOAD_LZ4;
	out->data = block;
	out->len = HEADER + (size_t)n;
	out->owned = block;
}

void packed_payload_free(packed_payload *pp)
{
	if (!pp)
		return;
	free(pp->owned);
	keep_raw(NULL, 0, pp);
}

int payload_unpack(int64_t codec, const void *data, size_t len, char **out, size_t *out_len,
                   char *why, size_t why_size)
{
	*out = NULL;
	*out_len = 0;
	if (codec == PAYLOAD_RAW) {
		if (!(*out = str_ndup(len ? data : "", len))) /* NULL may come with 0 */
			goto oom;
		*out_len = len;
		return 0;
	}
	if (codec != PAYLOAD_LZ4) {
		snprintf(why, why_size, "payload_codec is %lld, which this version does not know",
		         (long long)codec);
		return TH_ESTORE;
	}
	if (len <= HEADER || len - HEADER > (size_t)LZ4_MAX_INPUT_SIZE) {
		snprintf(why, why_size, "an LZ4 payload of %zu bytes is too short or too long",
		         len);
		return TH_ESTORE;
	}
	size_t want = get_le32(data);
	/* LZ4 cannot encode more than 255 bytes in one: a larger claim is damage,
	 * refused before anything is allocated for it */
	if (want == 0 || want > PAYLOAD_UNPACKED_MAX || want / LZ4_MAX_RATIO > len - HEADER) {
		snprintf(why, why_size,
		         "an LZ4 block of %zu bytes declares %zu bytes (allowed: 1 to %zu, at most"
		         " %d times the block)",
		         len - HEADER, want, PAYLOAD_UNPACKED_MAX, LZ4_MAX_RATIO);
		return TH_ESTORE;
	}
	char *v = malloc(want + 1);
	if (!v)
		goto oom;
	/* the safe decoder never reads past @len bytes nor writes past @want */
	int n = LZ4_decompress_safe((const char *)data + HEADER, v, (int)(len - HEADER), (int)want);
	if (n < 0 || (size_t)n != want) {
		free(v);
		if (n < 0)
			snprintf(why, why_size, "its LZ4 block of %zu bytes is damaged",
			         len - HEADER);
		else
			snprintf(why, why_size,
			         "its LZ4 block holds %d bytes, not the %zu it declares", n, want);
		return TH_ESTORE;
	}
	v[want] = '\0';
	*out = v;
	*out_len = want;
	return 0;
oom:
	snprintf(why, why_size, "out of memory");
	return TH_ENOMEM;
}
