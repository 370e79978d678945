/* SPDX-License-Identifier: MIT */
/*
 * fuzz_payload — store/payload_codec.c: how the SQLite store packs event
 * payloads and reads them back from the database file, whose bytes are
 * outside data too (a damaged disk, a file edited by hand, a restored
 * backup from anywhere).
 *
 * Input: CODEC_BYTE then the stored bytes. Checks: unpacking hostile stored
 * bytes under the codec byte (0 raw, 1 LZ4, anything else unknown) never
 * crashes or reads past them, and answers either the declared number of
 * bytes, NUL-terminated, or TH_ESTORE with a reason; and the same bytes
 * taken as a received body pack and unpack to exactly themselves, with a
 * packed copy never larger than the body.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store/payload_codec.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	int64_t codec = fz_byte(&in) % 4;
	/* the stored bytes in a block of exactly their length, for ASan */
	char *stored = fz_dup(in.p, in.n);
	char *out = NULL, why[160] = "";
	size_t out_len = 0;
	int rc = payload_unpack(codec, stored, in.n, &out, &out_len, why, sizeof why);
	if (rc == 0) {
		if (!out || out[out_len] != '\0' || out_len > PAYLOAD_UNPACKED_MAX)
			abort();
		if (codec == PAYLOAD_RAW && (out_len != in.n || memcmp(out, stored, in.n) != 0))
			abort();
	} else {
		bool oom = rc == TH_ENOMEM; /* raw bytes can fail only so */
		if ((rc != TH_ESTORE && !oom) || !why[0] || out || (codec == PAYLOAD_RAW && !oom))
			abort();
	}
	free(out);

	/* the same bytes as a body: packed and read back exactly */
	packed_payload pk;
	payload_pack(stored, in.n, &pk);
	if (pk.len > in.n || (pk.codec == PAYLOAD_RAW && pk.data != stored))
		abort();
	out = NULL;
	if (payload_unpack(pk.codec, pk.data, pk.len, &out, &out_len, why, sizeof why) != 0 ||
	    out_len != in.n || memcmp(out, stored, in.n) != 0)
		abort();
	free(out);
	packed_payload_free(&pk);
	free(stored);
	return 0;
}
