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
 * One curl easy handle per worker, reused so connections stay alive. Only
 * http and https, no redirects, a hard total timeout, at most 1 KiB of the
 * answer kept for the delivery record.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "util/sign.h"

#define ANSWER_KEEP 1024

struct forwarder {
	CURL *curl;
};

int forwarder_new(forwarder **out)
{
	*out = NULL;
	forwarder *f = calloc(1, sizeof *f);
	if (!f)
		return TH_ENOMEM;
	f->curl = curl_easy_init();
	if (!f->curl) {
		free(f);
		return TH_ENOMEM;
	}
	*out = f;
	return 0;
}

void forwarder_free(forwarder *f)
{
	if (!f)
		return;
	curl_easy_cleanup(f->curl);
	free(f);
}

/* Keep the first ANSWER_KEEP bytes of the receiver's answer; drop the rest. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	buf *b = ud;
	size_t len = size * nmemb;
	if (b->len < ANSWER_KEEP) {
		size_t take = ANSWER_KEEP - b->len < len ? ANSWER_KEEP - b->len : len;
		if (buf_append(b, data, take)) {
			/* keep going: the answer text is only informative */
		}
	}
	return len;
}

/* Printable, single-line, valid UTF-8 copy of an answer body for the record. */
static void answer_note(buf *note, const buf *body)
{
	if (!body->len)
		return;
	buf_puts(note, ": ");
	for (size_t i = 0; i < body->len; i++) {
		unsigned char c = (unsigned char)body->data[i];
		buf_putc(note, (c < 0x20 || c >= 0x7f) ? (c == '\n' ? ' ' : '?') : (char)c);
	}
}

int dispatch_forward(forwarder *f, const handler *h, const event *ev, int64_t timeout_ms,
                     dispatch_result *out)
{
	memset(out, 0, sizeof *out);
	buf note, body;
	buf_init(&note, 2048);
	buf_init(&body, ANSWER_KEEP + 1);
	struct curl_slist *hdrs = NULL;
	int ret = 0;
	char line[256], sig[128];
	int64_t ts = time_now_ms() / 1000;
	const char *payload = ev->payload ? ev->payload : "";
	size_t plen = ev->payload ? ev->payload_len : 0;

	if (!h->secret || sign_sw(h->secret, ev->id, ts, payload, plen, sig, sizeof sig)) {
		buf_puts(&note, "handler has no usable whsec_ signing secret");
		ret = TH_EINVAL;
		goto out;
	}
	/* The headers that cross the wire (values are ours, no user text). */
	const char *fixed[] = {"Content-Type: application/json",
	                       "Expect:", "User-Agent: trellohook/" TH_VERSION};
	for (size_t i = 0; i < TH_ARRAY_LEN(fixed); i++) {
		struct curl_slist *n = curl_slist_append(hdrs, fixed[i]);
		if (!n)
			goto oom;
		hdrs = n;
	}
	char *vals[3][2] = {{"webhook-id", ev->id}, {"webhook-signature", sig}, {NULL, NULL}};
	for (size_t i = 0; vals[i][0]; i++) {
		str_printf(line, sizeof line, "%s: %s", vals[i][0], vals[i][1]);
		struct curl_slist *n = curl_slist_append(hdrs, line);
		if (!n)
			goto oom;
		hdrs = n;
	}
	str_printf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts);
	struct curl_slist *n = curl_slist_append(hdrs, line);
	if (!n)
		goto oom;
	hdrs = n;

	CURL *c = f->curl;
	curl_easy_reset(c);
	char errbuf[CURL_ERROR_SIZE] = {0};
	if (curl_easy_setopt(c, CURLOPT_URL, h->target) != CURLE_OK) {
		buf_puts(&note, "invalid URL");
		ret = TH_EINVAL;
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)plen);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(timeout_ms < 10000 ? timeout_ms : 10000));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		buf_printf(&note, "%s: %s",
		           cc == CURLE_OPERATION_TIMEDOUT ? "timed out" : "request failed",
		           errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (status >= 200 && status < 300) {
		out->ok = true;
	} else if (status == 410) {
		out->gone = true;
		buf_puts(&note, "receiver answered 410 Gone; handler disabled");
	} else {
		buf_printf(&note, "receiver answered %ld", status);
		answer_note(&note, &body);
	}
	goto out;
oom:
	ret = TH_ENOMEM;
	buf_puts(&note, "out of memory");
out:
	curl_slist_free_all(hdrs);
	buf_free(&body);
	out->text = note.len ? buf_detach(&note, NULL) : NULL;
	buf_free(&note);
	return ret;
}
