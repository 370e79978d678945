/* SPDX-License-Identifier: MIT */
/*
 * stream.c — streamed answers (http.h, "streams"), e.g. Server-Sent Events.
 *
 * The body is a chunked response from a content-reader callback. When the
 * reader finds nothing queued it suspends the connection (MHD allows this
 * from the reader) and returns 0, so no worker thread waits and nothing
 * polls; http_stream_write() queues bytes and resumes it. Ending (by the
 * owner or the server stopping) lets the reader return end-of-stream once
 * the queue is drained. MHD does not see a client leave while suspended:
 * the next write resumes the connection, the reader sees the socket closed
 * (client_left) and MHD frees the response; the stream is then "gone"
 * (http_stream_alive() false). That is why owners write heartbeats.
 *
 * One mutex per set guards every stream of the set; the reader runs on MHD's
 * threads, writes on any thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/stream_int.h"
#include "util/log.h"
#include "util/wait.h"

#define STREAM_BLOCK 4096
/* A client this far behind is dropped: its EventSource reconnects, or the
 * page's normal refresh shows what it missed. */
#define STREAM_QUEUE_MAX ((size_t)256 << 10)

struct http_stream {
	stream_set *set;
	struct MHD_Connection *conn; /* NULL until the response is queued, and once gone */
	unsigned refs;
	buf queue;
	size_t off;     /* bytes of queue already handed to MHD */
	bool ended;     /* no more writes: end of stream once the queue is drained */
	bool gone;      /* MHD released the response (client left, server stopped) */
	bool suspended; /* by the reader, waiting for a write */
	http_stream *next;
};

struct stream_set {
	pthread_mutex_t mu;
	pthread_cond_t emptied; /* the last stream left the list */
	http_stream *head;      /* streams MHD still holds */
	bool ending;
};

stream_set *stream_set_new(void)
{
	stream_set *set = calloc(1, sizeof *set);
	if (!set)
		return NULL;
	if (pthread_mutex_init(&set->mu, NULL)) {
		free(set);
		return NULL;
	}
	if (pthread_cond_init(&set->emptied, NULL)) {
		pthread_mutex_destroy(&set->mu);
		free(set);
		return NULL;
	}
	return set;
}

static void wake_locked(http_stream *s)
{
	if (s->suspended && s->conn) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

void stream_set_end_all(stream_set *set)
{
	if (!set)
		return;
	pthread_mutex_lock(&set->mu);
	set->ending = true;
	for (http_stream *s = set->head; s; s = s->next) {
		s->ended = true;
		wake_locked(s);
	}
	pthread_mutex_unlock(&set->mu);
}

bool stream_set_wait_empty(stream_set *set, int64_t timeout_ms)
{
	struct timespec ts;
	wait_deadline(&ts, CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&set->mu);
	while (set->head && pthread_cond_timedwait(&set->emptied, &set->mu, &ts) == 0) {
	}
	bool empty = !set->head;
	pthread_mutex_unlock(&set->mu);
	return empty;
}

static void unref_locked(http_stream *s)
{
	if (--s->refs)
		return;
	buf_free(&s->queue);
	free(s);
}

void stream_set_free(stream_set *set)
{
	if (!set)
		return;
	/* MHD_stop_daemon freed every response, so every stream left the list */
	pthread_mutex_destroy(&set->mu);
	pthread_cond_destroy(&set->emptied);
	free(set);
}

http_stream *stream_new(stream_set *set)
{
	http_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	pthread_mutex_lock(&set->mu);
	if (set->ending) {
		pthread_mutex_unlock(&set->mu);
		free(s);
		return NULL;
	}
	s->set = set;
	s->refs = 2;
	buf_init(&s->queue, STREAM_QUEUE_MAX);
	s->next = set->head;
	set->head = s;
	pthread_mutex_unlock(&set->mu);
	return s;
}

/* Did the client close its side? MHD cannot tell while the connection is
 * parked, and the first send after a close still succeeds, so before parking
 * again peek at the socket: end of file or an error means it left (a
 * stream's client sends nothing after its request; bytes waiting, e.g. a
 * pipelined request, are left alone). */
static bool client_left(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return false;
	char c;
	ssize_t k = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* MHD wants more of the body (on one of its threads). */
static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
	(void)pos;
	http_stream *s = cls;
	pthread_mutex_lock(&s->set->mu);
	ssize_t n;
	if (s->queue.len > s->off) {
		size_t k = s->queue.len - s->off;
		if (k > max)
			k = max;
		memcpy(out, s->queue.data + s->off, k);
		s->off += k;
		if (s->off == s->queue.len) {
			buf_reset(&s->queue);
			s->off = 0;
		}
		n = (ssize_t)k;
	} else if (s->ended) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else if (client_left(s->conn)) {
		n = MHD_CONTENT_READER_END_WITH_ERROR; /* MHD closes and releases it */
	} else {
		/* nothing to send: park the connection until a write */
		s->suspended = true;
		MHD_suspend_connection(s->conn);
		n = 0;
	}
	pthread_mutex_unlock(&s->set->mu);
	return n;
}

/* MHD released the response: the connection is done with the stream. */
static void reader_free(void *cls)
{
	http_stream *s = cls;
	stream_set *set = s->set;
	pthread_mutex_lock(&set->mu);
	s->gone = true;
	s->ended = true;
	s->conn = NULL;
	for (http_stream **p = &set->head; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	if (!set->head)
		pthread_cond_broadcast(&set->emptied);
	unref_locked(s);
	pthread_mutex_unlock(&set->mu);
}

void stream_drop(http_stream *s)
{
	reader_free(s);
}

struct MHD_Response *stream_response(http_stream *s, struct MHD_Connection *conn, const char *first,
                                     size_t first_len)
{
	pthread_mutex_lock(&s->set->mu);
	s->conn = conn;
	/* @first goes before whatever was written since http_stream_start() */
	buf q;
	buf_init(&q, STREAM_QUEUE_MAX);
	size_t later = s->queue.len - s->off;
	if (buf_append(&q, first_len ? first : "", first_len) ||
	    buf_append(&q, later ? s->queue.data + s->off : "", later))
		s->ended = true; /* cannot even hold the start: end at once */
	buf_free(&s->queue);
	s->queue = q;
	s->off = 0;
	pthread_mutex_unlock(&s->set->mu);
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
	                                                           reader, s, reader_free);
	if (!r)
		reader_free(s);
	return r;
}

int http_stream_write(http_stream *s, const void *data, size_t len)
{
	int rc = 0;
	pthread_mutex_lock(&s->set->mu);
	if (s->ended) {
		rc = TH_EUNAVAIL;
	} else if (buf_append(&s->queue, data, len)) {
		/* a client this far behind (or no memory): drop it */
		log_info("http", "a stream fell %zu bytes behind; ending it",
		         s->queue.len - s->off);
		s->ended = true;
		rc = TH_EUNAVAIL;
	}
	wake_locked(s);
	pthread_mutex_unlock(&s->set->mu);
	return rc;
}

bool http_stream_alive(http_stream *s)
{
	pthread_mutex_lock(&s->set->mu);
	bool alive = !s->ended && !s->gone;
	pthread_mutex_unlock(&s->set->mu);
	return alive;
}

void http_stream_end(http_stream *s)
{
	pthread_mutex_lock(&s->set->mu);
	s->ended = true;
	wake_locked(s);
	pthread_mutex_unlock(&s->set->mu);
}

void http_stream_release(http_stream *s)
{
	if (!s)
		return;
	stream_set *set = s->set;
	pthread_mutex_lock(&set->mu);
	unref_locked(s);
	pthread_mutex_unlock(&set->mu);
}
