/* SPDX-License-Identifier: MIT */
/*
 * forward.c — the forward runner: POST the raw payload to a URL, signed per
 * the Standard Webhooks convention (https://www.standardwebhooks.com/):
 *
 *   webhook-id:        our event id (stable across retries, so a receiver
 *                      can dedupe)
 *   webhook-timestamp: unix seconds of this attempt
 *   webhook-signature: "v1," base64(HMAC-SHA256(key, id "." ts "." body)),
 *                      key = base64-decoded part of the handler's whsec_ secret
 *
 * Each worker owns one forwarder: a small table of HTTP client handles, one
 * per target (scheme, host and port), each keeping its connection alive
 * between deliveries; past FWD_TARGETS targets the least recently used
 * handle is closed. The policy is http/client.h's: http and https only, no
 * redirects, a hard total timeout, and here at most 1 KiB of the answer kept
 * for the delivery record (the rest is read and dropped).
 */
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "http/client.h"
#include "util/sign.h"

#define ANSWER_KEEP 1024
#define FWD_TARGETS 8  /* kept handles (and connections) per worker */
#define ORIGIN_MAX 300 /* "scheme://host:port" of a target */
#define CONNECT_MAX_MS 10000

struct target {
	char origin[ORIGIN_MAX]; /* "" when the slot is free */
	httpc *hc;
	int64_t timeout_ms; /* what the handle was made with */
	uint64_t last_used;
};

struct forwarder {
	struct target t[FWD_TARGETS];
	uint64_t clock; /* a use counter for least-recently-used */
};

/* Create an empty table; see dispatch.h. */
int forwarder_new(forwarder **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : TH_ENOMEM;
}

/* Close every kept connection and free the table. NULL-safe. */
void forwarder_free(forwarder *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < FWD_TARGETS; i++)
		httpc_free(f->t[i].hc);
	free(f);
}

/* "scheme://authority" of @url, lower-cased; false when it does not fit. */
static bool url_origin(const char *url, char *out, size_t outsz)
{
	const char *sep = strstr(url, "://");
	if (!sep)
		return false;
	size_t n = (size_t)(sep + 3 - url) + strcspn(sep + 3, "/?#");
	if (n >= outsz)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = url[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return true;
}

/* The kept handle for @url's target, made on first use (evicting the least
 * recently used one when the table is full). NULL when out of memory; @err
 * then says so. */
static httpc *handle_for(forwarder *f, const char *url, int64_t timeout_ms, th_error *err)
{
	char origin[ORIGIN_MAX];
	struct target *slot = NULL;
	if (!url_origin(url, origin, sizeof origin))
		origin[0] = '\0'; /* odd URL: one shared slot, http/client refuses it anyway */
	for (size_t i = 0; i < FWD_TARGETS && !slot; i++)
		if (f->t[i].hc && strcmp(f->t[i].origin, origin) == 0)
			slot = &f->t[i];
	if (slot && slot->timeout_ms != timeout_ms) {
		httpc_free(slot->hc);
		slot->hc = NULL;
	}
	if (!slot) {
		slot = &f->t[0];
		for (size_t i = 0; i < FWD_TARGETS; i++) {
			if (!f->t[i].hc) {
				slot = &f->t[i];
				break;
			}
			if (f->t[i].last_used < slot->last_used)
				slot = &f->t[i];
		}
		httpc_free(slot->hc);
		slot->hc = NULL;
	}
	if (!slot->hc) {
		httpc_opts o = HTTPC_OPTS_INIT;
		o.timeout_ms = (long)timeout_ms;
		o.connect_timeout_ms =
		    timeout_ms < CONNECT_MAX_MS ? (long)timeout_ms : CONNECT_MAX_MS;
		o.max_body = ANSWER_KEEP;
		o.keep_head = true;
		o.component = "forward";
		if (httpc_new(&slot->hc, &o, err))
			return NULL;
		str_copy(slot->origin, sizeof slot->origin, origin);
		slot->timeout_ms = timeout_ms;
	}
	slot->last_used = ++f->clock;
	return slot->hc;
}

/* Printable, single-line, valid UTF-8 copy of an answer body for the record. */
static int answer_note(buf *note, const buf *body)
{
	if (!body->len)
		return 0;
	int rc = buf_puts(note, ": ");
	for (size_t i = 0; i < body->len && !rc; i++) {
		unsigned char c = (unsigned char)body->data[i];
		rc = buf_putc(note, (c < 0x20 || c >= 0x7f) ? (c == '\n' ? ' ' : '?') : (char)c);
	}
	return rc;
}

/* Deliver one event to one forward handler; see dispatch.h. */
int dispatch_forward(forwarder *f, const handler *h, const event *ev, int64_t timeout_ms,
                     dispatch_result *out)
{
	memset(out, 0, sizeof *out);
	buf note;
	buf_init(&note, 2048);
	httpc_resp resp;
	httpc_resp_init(&resp);
	int ret = 0;
	char sig[128], idh[160], sigh[192], tsh[64];
	int64_t ts = time_now_ms() / 1000;
	const char *payload = ev->payload ? ev->payload : "";
	size_t plen = ev->payload ? ev->payload_len : 0;
	int nrc = 0;

	if (!h->secret || sign_sw(h->secret, ev->id, ts, payload, plen, sig, sizeof sig)) {
		nrc = buf_puts(&note, "handler has no usable whsec_ signing secret");
		ret = TH_EINVAL;
		goto out;
	}
	th_error herr = {0, {0}};
	httpc *hc = handle_for(f, h->target, timeout_ms > 0 ? timeout_ms : 1, &herr);
	if (!hc) {
		nrc = buf_puts(&note, herr.msg[0] ? herr.msg : "out of memory");
		ret = herr.code ? herr.code : TH_ENOMEM;
		goto out;
	}
	/* The headers that cross the wire (values are ours, no user text). */
	str_printf(idh, sizeof idh, "webhook-id: %s", ev->id);
	str_printf(sigh, sizeof sigh, "webhook-signature: %s", sig);
	str_printf(tsh, sizeof tsh, "webhook-timestamp: %lld", (long long)ts);
	const char *hdrs[] = {"Content-Type: application/json", idh, sigh, tsh};
	httpc_req req = {.method = "POST",
	                 .url = h->target,
	                 .headers = hdrs,
	                 .nheaders = TH_ARRAY_LEN(hdrs),
	                 .body = payload,
	                 .body_len = plen};
	int rc = httpc_perform(hc, &req, &resp);
	if (rc == TH_EINVAL) {
		nrc = buf_printf(&note, "invalid URL: %s", resp.error);
		ret = TH_EINVAL;
	} else if (rc) {
		nrc = buf_printf(&note, "%s: %s",
		                 resp.fail == HTTPC_FAIL_TIMEOUT ? "timed out" : "request failed",
		                 resp.error);
	} else if (resp.status >= 200 && resp.status < 300) {
		out->ok = true;
	} else if (resp.status == 410) {
		out->gone = true;
		nrc = buf_puts(&note, "receiver answered 410 Gone; handler disabled");
	} else {
		nrc = buf_printf(&note, "receiver answered %ld", resp.status);
		if (!nrc)
			nrc = answer_note(&note, &resp.body);
	}
out:
	/* a note cut short by its bound is still worth keeping */
	(void)nrc;
	httpc_resp_clear(&resp);
	out->text = note.len ? buf_detach(&note, NULL) : NULL;
	buf_free(&note);
	return ret;
}
