/* SPDX-License-Identifier: MIT */
/*
 * payload_codec — how the SQLite store keeps an event's payload on disk.
 *
 * A Trello delivery is ~3 KB of JSON that LZ4 packs 2-2.5x. Stored raw,
 * each event row fills most of a 4 KB page, so every commit writes a WAL
 * frame per event and the checkpointer copies as many pages again; packed,
 * two or three rows share a page. Measured on this machine in interleaved
 * A/B runs of bench/ab.sh: +8.5% events/s on a fast day (+9 to +34% on a
 * slow one), a lower p99, less CPU per event, and the kept history takes
 * under half the disk (bench/RESULTS.md, sessions 15-17). PostgreSQL needs
 * none of this: TOAST already compresses its BYTEA values with lz4
 * (store/pg.c), and its rows say raw.
 *
 * events.payload_codec (migration 12) says how events.payload is written:
 *   PAYLOAD_RAW  the body exactly as received (every row before migration 12,
 *                every PostgreSQL row, and bodies that do not compress);
 *   PAYLOAD_LZ4  the body's length as 4 bytes, little-endian, then one LZ4
 *                block of it (liblz4's block format, not its frame format).
 * Either way the reader gets the exact bytes that were received back.
 */
#ifndef TH_PAYLOAD_CODEC_H
#define TH_PAYLOAD_CODEC_H

#include <stddef.h>
#include <stdint.h>

enum payload_codec { PAYLOAD_RAW = 0, PAYLOAD_LZ4 = 1 };

/* The schema version that added events.payload_codec. */
#define PAYLOAD_CODEC_SCHEMA 12

/* Bodies shorter than this are kept raw (nothing worth saving). */
#define PAYLOAD_PACK_MIN 64
/* The largest body a PAYLOAD_LZ4 row may declare: four times the largest
 * TRELLOHOOK_MAX_BODY. A larger declared length is corruption, not data. */
#define PAYLOAD_UNPACKED_MAX ((size_t)256 << 20)

/* A payload as it is to be stored: @data/@len are the row's bytes under
 * @codec. @owned is what payload_pack allocated (NULL when @data is the
 * caller's payload itself). */
typedef struct packed_payload {
	enum payload_codec codec;
	const void *data;
	size_t len;
	void *owned;
} packed_payload;

/* Pack the @len bytes at @p for storing: PAYLOAD_LZ4 when that is smaller,
 * else PAYLOAD_RAW borrowing @p (also when memory for the packed copy cannot
 * be had: storing raw is always right). Never fails. Free with
 * packed_payload_free(). */
void payload_pack(const void *p, size_t len, packed_payload *out);
void packed_payload_free(packed_payload *pp);

/* The received bytes of a stored payload (@len bytes at @data under
 * @codec) into *@out, a heap copy with a NUL after its *@out_len bytes.
 * Returns 0; TH_ENOMEM; or TH_ESTORE when the row cannot be read, with @why
 * (of @why_size bytes) saying what is wrong with it: an unknown codec, a
 * truncated or damaged block, a length that does not match. */
int payload_unpack(int64_t codec, const void *data, size_t len, char **out, size_t *out_len,
                   char *why, size_t why_size);

#endif
