/* SPDX-License-Identifier: MIT */
/*
 * fuzz_trello — trellohook's reading of Trello's answers (trello/parse.c):
 * every answer parser, the error-answer decoder, the rate-limit header
 * reader and the --model reference parser. Trello (or whoever answers in
 * its place: a proxy, a captive portal) is outside data.
 *
 * Input: one selector byte, then the answer body. Checks: a failed parse
 * leaves its output cleared and says why; an error answer's message is
 * valid UTF-8 without control bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "trello/trello.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need_msg(int rc, const th_error *err)
{
	if (rc && !err->msg[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	uint8_t sel = fz_byte(&in);
	size_t len = in.n;
	char *body = fz_dup(in.p ? in.p : data, in.p ? len : 0);
	if (!in.p)
		len = 0;
	th_error err = {0, {0}};
	int rc;
	switch (sel % 9) {
	case 0: {
		trello_webhook w;
		rc = trello_parse_webhook(body, len, &w, &err);
		need_msg(rc, &err);
		if (rc && (w.id || w.callback_url))
			abort();
		trello_webhook_clear(&w);
		break;
	}
	case 1: {
		trello_webhook_list l;
		rc = trello_parse_webhook_list(body, len, &l, &err);
		need_msg(rc, &err);
		if (rc && (l.items || l.len))
			abort();
		for (size_t i = 0; i < l.len; i++)
			if (!l.items[i].id)
				abort();
		trello_webhook_list_clear(&l);
		break;
	}
	case 2: {
		trello_token_info t;
		rc = trello_parse_token_info(body, len, &t, &err);
		need_msg(rc, &err);
		trello_token_info_clear(&t);
		break;
	}
	case 3: {
		trello_member m;
		rc = trello_parse_member(body, len, &m, &err);
		need_msg(rc, &err);
		trello_member_clear(&m);
		break;
	}
	case 4: {
		trello_board_list l;
		rc = trello_parse_board_list(body, len, &l, &err);
		need_msg(rc, &err);
		trello_board_list_clear(&l);
		break;
	}
	case 5: {
		trello_model m;
		enum trello_model_type t = (enum trello_model_type)((sel / 9) % 3);
		rc = trello_parse_model(body, len, t, &m, &err);
		need_msg(rc, &err);
		if (!rc && (!m.id || !str_is_trello_id(m.id)))
			abort();
		trello_model_clear(&m);
		break;
	}
	case 6: {
		trello_error te;
		memset(&te, 0, sizeof te);
		int status = 400 + (sel / 9) * 5; /* 400 .. 535 */
		trello_error_from_answer(status, body, len, &te);
		size_t ml = strlen(te.th.msg);
		if (!str_utf8_valid(te.th.msg, ml))
			abort();
		for (size_t i = 0; i < ml; i++)
			if ((unsigned char)te.th.msg[i] < 0x20 || te.th.msg[i] == 0x7f)
				abort();
		break;
	}
	case 7: {
		trello_rate_info r;
		trello_rate_info_init(&r);
		fz_in lines = {(const uint8_t *)body, len};
		size_t ll;
		const uint8_t *l;
		while ((l = fz_cut(&lines, '\n', &ll)) != NULL) {
			char *line = fz_dup(l, ll); /* each header line in its own block */
			(void)trello_rate_parse_header(&r, line, ll);
			free(line);
		}
		break;
	}
	default: {
		trello_model_ref ref;
		rc = trello_parse_model_ref(body, &ref, &err);
		need_msg(rc, &err);
		if (!rc && strlen(ref.value) >= sizeof ref.value)
			abort();
		break;
	}
	}
	free(body);
	return 0;
}
