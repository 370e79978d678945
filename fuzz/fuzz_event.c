/* SPDX-License-Identifier: MIT */
/*
 * fuzz_event — the delivery parser and the one-line summaries
 * (model/event.c, model/summary.c): a Trello delivery body as it arrives.
 * Checks beyond "no crash": a parsed event has its required fields, its
 * payload is a byte-exact copy, and both summary paths give a string.
 */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/jdoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size ? size : 1); /* exactly the wire bytes, no terminator */
	if (!body)
		return 0;
	if (size)
		memcpy(body, data, size);

	event ev;
	memset(&ev, 0, sizeof ev);
	th_error err = {0, {0}};
	if (event_parse(&ev, body, size, &err) == 0) {
		if (!ev.action_id || !ev.action_type || !ev.summary || !ev.payload ||
		    ev.payload_len != size || memcmp(ev.payload, body, size) != 0)
			abort();
		event_clear(&ev);
	} else if (!err.msg[0]) {
		abort(); /* a refusal must say what was wrong */
	}

	char *s = event_summarize_text(body, size);
	if (!s)
		abort();
	free(s);

	jdoc d;
	if (jdoc_parse(&d, body, size, EVENT_MAX_DEPTH, &err) == 0) {
		char *t = event_summarize_doc(&d, jdoc_root(&d));
		if (!t)
			abort();
		free(t);
	}
	jdoc_free(&d);
	free(body);
	return 0;
}
