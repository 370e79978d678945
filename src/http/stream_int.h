/* SPDX-License-Identifier: MIT */
/*
 * stream_int.h — between http.c and stream.c (the http layer's streamed
 * answers, see http.h "streams"). Not for other folders.
 */
#ifndef TH_HTTP_STREAM_INT_H
#define TH_HTTP_STREAM_INT_H

#include <microhttpd.h>

#include "http/http.h"

/* The streams of one server: the set they are counted in, ended together
 * when the server stops. */
typedef struct stream_set stream_set;

stream_set *stream_set_new(void);
/* No new streams; every open one ends after what is queued (suspended ones
 * are resumed, so MHD_stop_daemon never meets a suspended stream). */
void stream_set_end_all(stream_set *set);
/* Wait (at most @timeout_ms) until every stream's response was released,
 * i.e. the ended streams sent their end; true when none is left. */
bool stream_set_wait_empty(stream_set *set, int64_t timeout_ms);
/* After MHD_stop_daemon (which released every stream's response). NULL-safe. */
void stream_set_free(stream_set *set);
/* A new stream in @set (references: the caller's and the connection's), or
 * NULL when the set is ending or out of memory. */
http_stream *stream_new(stream_set *set);
/* The MHD response of @s on @conn: its body is @first (copied), then what
 * http_stream_write() adds. Takes the connection's reference (released when
 * MHD frees the response); NULL when out of memory (the reference too). */
struct MHD_Response *stream_response(http_stream *s, struct MHD_Connection *conn, const char *first,
                                     size_t first_len);
/* The connection's reference of a stream whose response was never made (the
 * request ended first). */
void stream_drop(http_stream *s);

#endif
