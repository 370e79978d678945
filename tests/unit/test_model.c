/* SPDX-License-Identifier: MIT */
/* Unit tests of the model's payload parser and summaries: every sample
 * delivery in tests/data/payloads/, a summary for every action type, and
 * hostile bodies (truncated, non-UTF-8, deep, huge, duplicate keys, NULs,
 * wrong types everywhere). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/util.h"

#define ZOE "Zo\xC3\xAB \xC3\x85ngstr\xC3\xB6m" /* Zoë Ångström */
#define CARD "Ship the <b>webhook</b> admin"
#define ELL "\xE2\x80\xA6" /* … */

/* ---- helpers -------------------------------------------------------------------- */

/* Read tests/data/payloads/@name into a malloc'ed buffer (NUL-terminated). */
static char *read_payload(const char *name, size_t *len)
{
	char path[1024];
	const char *dir = getenv("TH_TEST_DATA");
	assert_non_null(dir);
	assert_true(str_printf(path, sizeof path, "%s/payloads/%s", dir, name));
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	buf b;
	buf_init(&b, 1 << 20);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		assert_int_equal(buf_append(&b, chunk, n), 0);
	fclose(f);
	return buf_detach(&b, len);
}

static bool all_zero(const event *ev)
{
	static const event zero;
	return memcmp(ev, &zero, sizeof zero) == 0;
}

/* Parse @body and expect failure with a message containing @want. */
static void expect_reject(const char *body, size_t len, const char *want)
{
	event ev = {0};
	th_error err = {0};
	int rc = event_parse(&ev, body, len, &err);
	if (rc != TH_EINVAL)
		fail_msg("accepted (rc %d) a body that should fail with \"%s\"", rc, want);
	assert_int_equal(err.code, TH_EINVAL);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
	assert_true(all_zero(&ev));
}

/* The summary of a JSON text (which must parse: checked with jansson, so a
 * typo in a test is not mistaken for the fallback summary). */
static char *summary_of(const char *json)
{
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		fail_msg("test JSON does not parse: %s (line %d col %d): %s", jerr.text, jerr.line,
		         jerr.column, json);
	json_decref(root);
	char *s = event_summarize_text(json, strlen(json));
	assert_non_null(s);
	return s;
}

/* Summary of an action by Zoë of @type with @data (a JSON object text). */
static void expect_summary(const char *type, const char *data, const char *want)
{
	char json[8192];
	assert_true(str_printf(json, sizeof json,
	                       "{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":\"%s\","
	                       "\"idMemberCreator\":\"5e3b1c9f8a7d6e5f4a3b2c1d\","
	                       "\"memberCreator\":{\"fullName\":\"" ZOE "\"},\"data\":%s}}",
	                       type, data));
	char *s = summary_of(json);
	if (strcmp(s, want) != 0)
		fail_msg("%s summary\n  got:  %s\n  want: %s", type, s, want);
	free(s);
}

/* A summary is one line of valid UTF-8 within the cap, never empty. */
static void assert_one_line(const char *s)
{
	size_t n = strlen(s);
	assert_true(n > 0);
	assert_true(n <= 300);
	assert_true(str_utf8_valid(s, n));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		assert_true(c >= 0x20 && c != 0x7F);
		if (c == 0xC2 && i + 1 < n) /* no C1 control (U+0080..U+009F) */
			assert_false((unsigned char)s[i + 1] >= 0x80 &&
			             (unsigned char)s[i + 1] <= 0x9F);
	}
}

/* ---- the sample deliveries -------------------------------------------------------- */

#define BOARD_ID "6123456789abcdef01234567"
#define CARD_ID "6123456789abcdef0000cc07"
#define TODO_ID "6123456789abcdef0000aa01"
#define DOING_ID "6123456789abcdef0000aa02"

static const struct sample {
	const char *file;
	const char *type;
	const char *action_id;
	const char *date;
	const char *list_id, *list_name;
	const char *card_id, *card_name;
	const char *summary;
} samples[] = {
    {"createCard.json", "createCard", "6123456789abcdef00010001", "2026-11-20T09:15:02.117Z",
     TODO_ID, "To do", CARD_ID, CARD, ZOE " created \"" CARD "\" in To do on Roadmap 2027"},
    {"updateCard-moveList.json", "updateCard", "6123456789abcdef00010002",
     "2026-11-20T10:41:34.244Z", DOING_ID, "Doing", CARD_ID, CARD,
     ZOE " moved \"" CARD "\" from To do to Doing on Roadmap 2027"},
    {"commentCard.json", "commentCard", "6123456789abcdef00010003", "2026-11-20T11:02:10.500Z",
     DOING_ID, "Doing", CARD_ID, CARD,
     ZOE " commented on \"" CARD "\": Looks good \xF0\x9F\x9A\x80 \xE2\x80\x94 na\xC3\xAFve "
         "caf\xC3\xA9 test; <script>alert(1)</script>"},
    {"addLabelToCard.json", "addLabelToCard", "6123456789abcdef00010004",
     "2026-11-20T11:30:00.000Z", NULL, NULL, CARD_ID, CARD,
     ZOE " added label blocked to \"" CARD "\""},
    {"updateCheckItemStateOnCard.json", "updateCheckItemStateOnCard", "6123456789abcdef00010005",
     "2026-11-20T12:00:00.000Z", NULL, NULL, CARD_ID, CARD,
     ZOE " completed \"Write the changelog\" on \"" CARD "\""},
    {"deleteCard.json", "deleteCard", "6123456789abcdef00010010", "2026-11-21T10:52:00.000Z",
     DOING_ID, "Doing", CARD_ID, NULL, ZOE " deleted card #42 from Doing"},
    {"updateCard-rename.json", "updateCard", "6123456789abcdef00010011", "2026-11-21T10:59:00.000Z",
     DOING_ID, "Doing", CARD_ID, CARD " & CLI", ZOE " renamed \"" CARD "\" to \"" CARD " & CLI\""},
    {"updateCard-desc.json", "updateCard", "6123456789abcdef00010012", "2026-11-21T11:06:00.000Z",
     DOING_ID, "Doing", CARD_ID, CARD, ZOE " added a description to \"" CARD "\""},
    {"updateCard-closed.json", "updateCard", "6123456789abcdef00010013", "2026-11-21T11:13:00.000Z",
     DOING_ID, "Doing", CARD_ID, CARD, ZOE " archived \"" CARD "\""},
    {"updateCard-due.json", "updateCard", "6123456789abcdef00010014", "2026-11-21T11:20:00.000Z",
     DOING_ID, "Doing", CARD_ID, CARD,
     ZOE " set the due date of \"" CARD "\" to 1 Dec 2026 17:00 UTC"},
    {"addMemberToCard.json", "addMemberToCard", "6123456789abcdef00010015",
     "2026-11-21T11:27:00.000Z", DOING_ID, "Doing", CARD_ID, CARD,
     ZOE " added Bj\xC3\xB6rn O'Brien to \"" CARD "\""},
    {"createList.json", "createList", "6123456789abcdef00010016", "2026-11-21T11:34:00.000Z",
     "6123456789abcdef0000aa03", "Done \xE2\x9C\x85", NULL, NULL,
     ZOE " created list Done \xE2\x9C\x85 on Roadmap 2027"},
    {"updateList.json", "updateList", "6123456789abcdef00010017", "2026-11-21T11:41:00.000Z",
     DOING_ID, "Doing (WIP \xE2\x89\xA4 3)", NULL, NULL,
     ZOE " renamed list Doing to Doing (WIP \xE2\x89\xA4 3) on Roadmap 2027"},
    {"moveCardToBoard.json", "moveCardToBoard", "6123456789abcdef00010018",
     "2026-11-21T12:48:00.000Z", TODO_ID, "To do", CARD_ID, CARD,
     ZOE " moved \"" CARD "\" from Backlog \xE2\x80\x94 Ideen to Roadmap 2027"},
    {"addAttachmentToCard.json", "addAttachmentToCard", "6123456789abcdef00010019",
     "2026-11-21T12:55:00.000Z", DOING_ID, "Doing", CARD_ID, CARD,
     ZOE " attached Spec v2 (final).pdf to \"" CARD "\""},
    {"addChecklistToCard.json", "addChecklistToCard", "6123456789abcdef0001001a",
     "2026-11-21T12:02:00.000Z", NULL, NULL, CARD_ID, CARD,
     ZOE " added checklist Release to \"" CARD "\""},
    {"createCheckItem.json", "createCheckItem", "6123456789abcdef0001001b",
     "2026-11-21T12:09:00.000Z", NULL, NULL, CARD_ID, CARD,
     ZOE " added \"Tag v1.0 & publish <release>\" to checklist Release on \"" CARD "\""},
    {"voteOnCard.json", "voteOnCard", "6123456789abcdef0001001c", "2026-11-21T12:16:00.000Z", NULL,
     NULL, CARD_ID, CARD, ZOE " voted for \"" CARD "\""},
    {"updateBoard.json", "updateBoard", "6123456789abcdef0001001d", "2026-11-21T12:23:00.000Z",
     NULL, NULL, NULL, NULL, ZOE " renamed board Roadmap 2027 to Roadmap 2027 \xF0\x9F\x9A\x80"},
    {"createLabel.json", "createLabel", "6123456789abcdef0001001e", "2026-11-21T13:30:00.000Z",
     NULL, NULL, NULL, NULL, ZOE " created label needs review on Roadmap 2027"},
    {"updateCustomFieldItem.json", "updateCustomFieldItem", "6123456789abcdef0001001f",
     "2026-11-21T13:37:00.000Z", NULL, NULL, CARD_ID, CARD,
     ZOE " set Estimate (days) to 3 on \"" CARD "\""},
    {"updateComment.json", "updateComment", "6123456789abcdef00010020", "2026-11-21T13:44:00.000Z",
     NULL, NULL, CARD_ID, CARD,
     ZOE " edited a comment on \"" CARD "\": Looks good \xF0\x9F\x9A\x80 \xE2\x80\x94 "
         "na\xC3\xAFve caf\xC3\xA9 test" ELL},
};

static void assert_str_or_null(const char *got, const char *want, const char *what)
{
	if (!str_eq(got, want))
		fail_msg("%s: got %s%s%s, want %s%s%s", what, got ? "\"" : "", got ? got : "NULL",
		         got ? "\"" : "", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
}

static void test_samples(void **state)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(samples); i++) {
		const struct sample *s = &samples[i];
		size_t len;
		char *body = read_payload(s->file, &len);
		event ev = {0};
		th_error err = {0};
		int rc = event_parse(&ev, body, len, &err);
		if (rc)
			fail_msg("%s: %s", s->file, err.msg);
		assert_string_equal(ev.action_type, s->type);
		assert_string_equal(ev.action_id, s->action_id);
		assert_string_equal(ev.action_date, s->date);
		assert_string_equal(ev.model_id, BOARD_ID);
		assert_string_equal(ev.board_id, BOARD_ID);
		assert_non_null(ev.board_name);
		assert_str_or_null(ev.list_id, s->list_id, s->file);
		assert_str_or_null(ev.list_name, s->list_name, s->file);
		assert_str_or_null(ev.card_id, s->card_id, s->file);
		assert_str_or_null(ev.card_name, s->card_name, s->file);
		assert_string_equal(ev.member, ZOE);
		assert_string_equal(ev.member_id, "5e3b1c9f8a7d6e5f4a3b2c1d");
		/* what the store does not keep comes back from the payload */
		free(ev.member_id);
		ev.member_id = NULL;
		assert_int_equal(event_fill_from_payload(&ev), 0);
		assert_string_equal(ev.member_id, "5e3b1c9f8a7d6e5f4a3b2c1d");
		if (strcmp(ev.summary, s->summary) != 0)
			fail_msg("%s summary\n  got:  %s\n  want: %s", s->file, ev.summary,
			         s->summary);
		assert_one_line(ev.summary);
		/* the body is kept byte for byte, with a terminator after it */
		assert_int_equal(ev.payload_len, len);
		assert_memory_equal(ev.payload, body, len);
		assert_int_equal(ev.payload[len], '\0');
		assert_null(ev.json); /* no tree is built on the receive path */
		assert_null(ev.id);
		assert_null(ev.webhook_id);
		assert_true(ev.received_at > 0);
		event_clear(&ev);
		assert_true(all_zero(&ev));
		free(body);
	}
}

/* Every sample cut short must fail cleanly (and leave the event zeroed). */
static void test_truncated_samples(void **state)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(samples); i++) {
		size_t len;
		char *body = read_payload(samples[i].file, &len);
		/* The files end in "}\n": every cut before the final brace is broken. */
		size_t last = len;
		while (last > 0 && body[last - 1] != '}')
			last--;
		assert_true(last > 0);
		for (size_t cut = 0; cut < last; cut += (cut < 64 || cut + 64 > last) ? 1 : 7) {
			event ev = {0};
			th_error err = {0};
			char *copy = malloc(cut ? cut : 1); /* exact size, so ASan sees overreads */
			assert_non_null(copy);
			memcpy(copy, body, cut);
			int rc = event_parse(&ev, copy, cut, &err);
			if (rc != TH_EINVAL)
				fail_msg("%s cut at %zu: rc %d", samples[i].file, cut, rc);
			assert_true(all_zero(&ev));
			assert_true(err.msg[0] != '\0');
			free(copy);
		}
		/* without the trailing newline it is still whole */
		event ev = {0};
		assert_int_equal(event_parse(&ev, body, last, NULL), 0);
		event_clear(&ev);
		free(body);
	}
}

/* ---- the table of every action type (docs/actions.md) --------------------------------- */

/* Does @s contain 24 hex digits in a row (a raw Trello id)? */
static bool has_raw_id(const char *s)
{
	size_t run = 0;
	for (; *s; s++) {
		run = str_hex_digit(*s) >= 0 ? run + 1 : 0;
		if (run >= 24)
			return true;
	}
	return false;
}

/* One row of docs/actions.md: `| `type` | file | `sentence` |` (or
 * `| (other: `type`) | ...` for a type the code has no sentence for). */
typedef struct doc_row {
	char type[64], file[128], sentence[512];
	bool other;
} doc_row;

/* The text between the first pair of backticks of @cell into @out. */
static bool backticked(const char *cell, size_t n, char *out, size_t outsz)
{
	const char *a = memchr(cell, '`', n);
	const char *b = a ? memchr(a + 1, '`', n - (size_t)(a + 1 - cell)) : NULL;
	if (!a || !b || (size_t)(b - a - 1) >= outsz)
		return false;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = '\0';
	return true;
}

static bool parse_doc_row(const char *line, doc_row *r)
{
	const char *cells[4];
	size_t lens[3];
	const char *p = line + 1;
	for (int i = 0; i < 3; i++) {
		const char *bar = strchr(p, '|');
		if (!bar)
			return false;
		cells[i] = p;
		lens[i] = (size_t)(bar - p);
		p = bar + 1;
	}
	memset(r, 0, sizeof *r);
	r->other = memmem(cells[0], lens[0], "(other", 6) != NULL;
	const char *f = cells[1];
	size_t fl = lens[1];
	while (fl && *f == ' ')
		f++, fl--;
	while (fl && f[fl - 1] == ' ')
		fl--;
	if (fl == 0 || fl >= sizeof r->file)
		return false;
	memcpy(r->file, f, fl);
	return backticked(cells[0], lens[0], r->type, sizeof r->type) &&
	       backticked(cells[2], lens[2], r->sentence, sizeof r->sentence);
}

/* Every row's sample gives exactly its sentence (one line, no raw id, the
 * row's type); every type the code has a sentence for has a row; the
 * "other" rows really are types without one. */
static doc_row doc_rows[256];

/* Read the rows of docs/actions.md into doc_rows; returns how many. */
static size_t load_doc_rows(void)
{
	char path[1024];
	const char *dir = getenv("TH_TEST_DATA");
	assert_non_null(dir);
	assert_true(str_printf(path, sizeof path, "%s/../../docs/actions.md", dir));
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	size_t n = 0;
	char line[2048];
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "| `", 3) != 0 && strncmp(line, "| (other", 8) != 0)
			continue;
		assert_true(n < TH_ARRAY_LEN(doc_rows));
		if (!parse_doc_row(line, &doc_rows[n]))
			fail_msg("docs/actions.md: cannot read the row %s", line);
		n++;
	}
	fclose(f);
	return n;
}

static void test_actions_table(void **state)
{
	doc_row *rows = doc_rows;
	size_t n = load_doc_rows(), others = 0;
	for (size_t i = 0; i < n; i++) {
		doc_row *r = &rows[i];
		others += r->other;
		size_t len;
		char *body = read_payload(r->file, &len);
		event ev = {0};
		th_error err = {0};
		if (event_parse(&ev, body, len, &err))
			fail_msg("%s: %s", r->file, err.msg);
		if (strcmp(ev.action_type, r->type) != 0)
			fail_msg("%s is a %s, its row says %s", r->file, ev.action_type, r->type);
		if (strcmp(ev.summary, r->sentence) != 0)
			fail_msg(
			    "docs/actions.md and the code differ for %s\n  code: %s\n  docs: %s",
			    r->file, ev.summary, r->sentence);
		assert_one_line(ev.summary);
		if (has_raw_id(ev.summary))
			fail_msg("%s: raw id in \"%s\"", r->file, ev.summary);
		if (strstr(ev.summary, " did "))
			fail_msg("%s: \"did\" in \"%s\"", r->file, ev.summary);
		event_clear(&ev);
		free(body);
	}
	assert_true(others >= 2);
	size_t ntypes = 0;
	for (const char *t; (t = event_summary_type(ntypes)); ntypes++) {
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = !rows[i].other && strcmp(rows[i].type, t) == 0;
		if (!found)
			fail_msg("docs/actions.md has no row for %s", t);
	}
	assert_true(ntypes >= 70); /* every type Trello documents */
	for (size_t i = 0; i < n; i++) {
		bool in_code = false;
		for (size_t k = 0; k < ntypes; k++)
			in_code = in_code || strcmp(event_summary_type(k), rows[i].type) == 0;
		if (in_code == rows[i].other)
			fail_msg("docs/actions.md: %s is %s a type with a sentence of its own",
			         rows[i].type, rows[i].other ? "" : "not");
	}
}

/* Samples (every one of docs/actions.md) with bytes overwritten, deleted or
 * duplicated (a fixed LCG, so runs repeat): each must parse or fail
 * cleanly, and what parses has a one-line summary. */
static void test_mutated_samples(void **state)
{
	static const char interesting[] = "{}[]\":,\\0 -eE.tfn\x80\xC3\xFF\x01\n";
	uint32_t seed = 12345;
	int parsed = 0, rejected = 0;
	size_t nrows = load_doc_rows();
	for (size_t i = 0; i < nrows; i++) {
		size_t len;
		char *body = read_payload(doc_rows[i].file, &len);
		for (int round = 0; round < 100; round++) {
			char *m = malloc(len + 8);
			assert_non_null(m);
			memcpy(m, body, len);
			size_t mlen = len;
			for (int k = 0; k < 1 + round % 4; k++) {
				seed = seed * 1103515245u + 12345u;
				size_t at = (seed >> 8) % mlen;
				seed = seed * 1103515245u + 12345u;
				char c = interesting[(seed >> 8) % (sizeof interesting - 1)];
				switch ((seed >> 20) % 3) {
				case 0: m[at] = c; break;
				case 1:
					memmove(m + at, m + at + 1, mlen - at - 1);
					mlen--;
					break;
				default:
					memmove(m + at + 1, m + at, mlen - at);
					m[at] = c;
					mlen++;
					break;
				}
				if (mlen == 0 || mlen + 1 > len + 8)
					break;
			}
			event ev = {0};
			th_error err = {0};
			int rc = event_parse(&ev, m, mlen, &err);
			if (rc == 0) {
				assert_one_line(ev.summary);
				assert_int_equal(ev.payload_len, mlen);
				assert_memory_equal(ev.payload, m, mlen);
				parsed++;
			} else {
				assert_int_equal(rc, TH_EINVAL);
				assert_true(all_zero(&ev));
				rejected++;
			}
			event_clear(&ev);
			free(m);
		}
		free(body);
	}
	/* both outcomes must have happened, or the mutations tested nothing */
	assert_true(parsed > 100);
	assert_true(rejected > 100);
}

/* Make every string or number value of the members "@key" of @b null (a
 * crude, test-only edit of the sample text; the JSON stays valid). */
static void null_member(buf *b, const char *key)
{
	char pat[64];
	assert_true(str_printf(pat, sizeof pat, "\"%s\": ", key));
	buf out;
	buf_init(&out, 1 << 20);
	const char *p = b->data, *q;
	while ((q = strstr(p, pat))) {
		const char *v = q + strlen(pat), *e = v;
		if (*e == '"') {
			for (e++; *e && *e != '"'; e++)
				if (*e == '\\' && e[1])
					e++;
			if (*e)
				e++;
		} else if (*e == '-' || (*e >= '0' && *e <= '9')) {
			while (*e && *e != ',' && *e != '\n' && *e != '}')
				e++;
		}
		assert_int_equal(buf_append(&out, p, (size_t)(v - p)), 0);
		assert_int_equal(buf_puts(&out, e == v ? "" : "null"), 0);
		p = e;
	}
	assert_int_equal(buf_puts(&out, p), 0);
	buf_free(b);
	*b = out;
}

/* Every sample with its names taken away piece by piece, with every value
 * of one kind made the wrong type, and with huge names: still one bounded
 * line, never "did TYPE", and a raw id only when the payload names nothing. */
static void test_table_samples_degraded(void **state)
{
	static const char *const drops[] = {"name", "fullName", "text", "username", "displayName"};
	static const char *const retypes[][2] = {
	    {"\"name\": \"", "\"name\": 7, \"x\": \""},
	    {"\"old\": {", "\"old\": [], \"x\": {"},
	    {"\"data\": {", "\"data\": null, \"x\": {"},
	    {"\"member\": {", "\"member\": \"m\", \"x\": {"},
	    {"\"fullName\": \"", "\"fullName\": {}, \"x\": \""}};
	size_t nrows = load_doc_rows();
	assert_true(nrows > 70);
	for (size_t t = 0; t < nrows; t++) {
		const char *file = doc_rows[t].file;
		size_t len;
		char *body = read_payload(file, &len);
		for (size_t k = 0; k <= TH_ARRAY_LEN(drops) + TH_ARRAY_LEN(retypes); k++) {
			buf b;
			buf_init(&b, 1 << 20);
			if (k < TH_ARRAY_LEN(drops)) {
				assert_int_equal(buf_append(&b, body, len), 0);
				for (size_t j = 0; j <= k; j++)
					null_member(&b, drops[j]);
			} else if (k < TH_ARRAY_LEN(drops) + TH_ARRAY_LEN(retypes)) {
				const char *const *r = retypes[k - TH_ARRAY_LEN(drops)];
				const char *at = strstr(body, r[0]);
				if (!at) {
					buf_free(&b);
					continue;
				}
				assert_int_equal(buf_append(&b, body, (size_t)(at - body)), 0);
				assert_int_equal(buf_puts(&b, r[1]), 0);
				assert_int_equal(buf_puts(&b, at + strlen(r[0])), 0);
			} else { /* every name 20000 characters, with controls in it */
				const char *p = body, *q;
				while ((q = strstr(p, "\"name\": \""))) {
					assert_int_equal(buf_append(&b, p, (size_t)(q - p) + 9), 0);
					for (int i = 0; i < 2000; i++)
						assert_int_equal(
						    buf_puts(&b, "ab\\u0007\\n\\u202e\\t  x"), 0);
					p = q + 9;
				}
				assert_int_equal(buf_puts(&b, p), 0);
			}
			event ev = {0};
			th_error err = {0};
			if (event_parse(&ev, b.data, b.len, &err))
				fail_msg("%s (edit %zu): %s", file, k, err.msg);
			assert_one_line(ev.summary);
			if (strstr(ev.summary, " did "))
				fail_msg("%s (edit %zu): \"%s\"", file, k, ev.summary);
			/* names only dropped: the ids still there must not show */
			if (k < TH_ARRAY_LEN(drops) && has_raw_id(ev.summary))
				fail_msg("%s (edit %zu): raw id in \"%s\"", file, k, ev.summary);
			event_clear(&ev);
			buf_free(&b);
		}
		free(body);
	}
}

/* ---- summaries of every action type ------------------------------------------------- */

#define D_BOARD "\"board\":{\"id\":\"" BOARD_ID "\",\"name\":\"Roadmap 2027\"}"
#define D_CARD "\"card\":{\"id\":\"" CARD_ID "\",\"name\":\"Ship it\",\"idShort\":7}"
#define D_TODO "\"list\":{\"id\":\"" TODO_ID "\",\"name\":\"To do\"}"
#define Z ZOE " "

static void test_summary_cards(void **state)
{
	expect_summary("createCard", "{" D_CARD "," D_TODO "," D_BOARD "}",
	               Z "created \"Ship it\" in To do on Roadmap 2027");
	expect_summary("createCard", "{" D_CARD "}", Z "created \"Ship it\"");
	expect_summary("updateCard",
	               "{" D_CARD "," D_BOARD ",\"listBefore\":{\"name\":\"To do\"},"
	               "\"listAfter\":{\"name\":\"Doing\"},\"old\":{\"idList\":\"x\"}}",
	               Z "moved \"Ship it\" from To do to Doing on Roadmap 2027");
	expect_summary("updateCard", "{" D_CARD ",\"listAfter\":{\"name\":\"Doing\"}}",
	               Z "moved \"Ship it\" to Doing");
	expect_summary("updateCard", "{" D_CARD ",\"old\":{\"name\":\"Old\"}}",
	               Z "renamed \"Old\" to \"Ship it\"");
	expect_summary("updateCard",
	               "{\"card\":{\"name\":\"X\",\"closed\":true},\"old\":{\"closed\":false}}",
	               Z "archived \"X\"");
	expect_summary("updateCard",
	               "{\"card\":{\"name\":\"X\",\"closed\":false},\"old\":{\"closed\":true}}",
	               Z "restored \"X\"");
	expect_summary("updateCard",
	               "{\"card\":{\"name\":\"X\",\"desc\":\"d\"},\"old\":{\"desc\":\"\"}}",
	               Z "added a description to \"X\"");
	expect_summary("updateCard",
	               "{\"card\":{\"name\":\"X\",\"due\":\"2027-01-31T09:30:00.000Z\"},"
	               "\"old\":{\"due\":null}}",
	               Z "set the due date of \"X\" to 31 Jan 2027 09:30 UTC");
	expect_summary(
	    "updateCard",
	    "{\"card\":{\"name\":\"X\",\"due\":\"next tuesday\"},\"old\":{\"due\":null}}",
	    Z "set the due date of \"X\" to next tuesday");
	expect_summary(
	    "updateCard",
	    "{\"card\":{\"name\":\"X\",\"due\":null},\"old\":{\"due\":\"2027-01-31T09:30:00.000Z\"}}",
	    Z "removed the due date of \"X\"");
	expect_summary(
	    "updateCard",
	    "{\"card\":{\"name\":\"X\",\"dueComplete\":true},\"old\":{\"dueComplete\":false}}",
	    Z "marked the due date of \"X\" complete");
	expect_summary("updateCard",
	               "{\"card\":{\"name\":\"X\",\"pos\":3},\"old\":{\"pos\":1}," D_TODO "}",
	               Z "moved \"X\" within To do");
	expect_summary("updateCard",
	               "{\"card\":{\"name\":\"X\"},\"old\":{\"idAttachmentCover\":null}}",
	               Z "changed the cover of \"X\"");
	expect_summary("updateCard", "{\"card\":{\"name\":\"X\"}}", Z "updated \"X\"");
	expect_summary("deleteCard", "{\"card\":{\"id\":\"" CARD_ID "\",\"idShort\":7}," D_TODO "}",
	               Z "deleted card #7 from To do");
	expect_summary("deleteCard", "{\"card\":{\"id\":\"" CARD_ID "\"}}", Z "deleted a card");
	expect_summary("deleteCard", "{}", Z "deleted a card");
	expect_summary("commentCard", "{" D_CARD ",\"text\":\"Looks good \xF0\x9F\x9A\x80\"}",
	               Z "commented on \"Ship it\": Looks good \xF0\x9F\x9A\x80");
	expect_summary("commentCard", "{" D_CARD "}", Z "commented on \"Ship it\"");
	expect_summary("updateComment",
	               "{" D_CARD ",\"action\":{\"text\":\"new text\"},\"old\":{\"text\":\"old\"}}",
	               Z "edited a comment on \"Ship it\": new text");
	expect_summary("deleteComment", "{" D_CARD ",\"action\":{\"id\":\"x\"}}",
	               Z "deleted a comment on \"Ship it\"");
	expect_summary("voteOnCard", "{" D_CARD ",\"voted\":true}", Z "voted for \"Ship it\"");
	expect_summary("voteOnCard", "{" D_CARD ",\"voted\":false}",
	               Z "removed their vote from \"Ship it\"");
	expect_summary("moveCardToBoard",
	               "{" D_CARD "," D_BOARD
	               ",\"boardSource\":{\"id\":\"x\",\"name\":\"Old board\"}}",
	               Z "moved \"Ship it\" from Old board to Roadmap 2027");
	expect_summary("moveCardFromBoard",
	               "{" D_CARD "," D_BOARD
	               ",\"boardTarget\":{\"id\":\"x\",\"name\":\"Archive\"}}",
	               Z "moved \"Ship it\" from Roadmap 2027 to Archive");
	expect_summary("moveCardFromBoard", "{" D_CARD "}",
	               Z "moved \"Ship it\" from this board to another board");
	expect_summary("copyCard", "{" D_CARD "," D_TODO "}",
	               Z "copied \"Ship it\" from another card in To do");
}

static void test_summary_card_parts(void **state)
{
	expect_summary("addLabelToCard",
	               "{" D_CARD ",\"label\":{\"name\":\"blocked\",\"color\":\"red\"}}",
	               Z "added label blocked to \"Ship it\"");
	expect_summary("addLabelToCard", "{" D_CARD ",\"label\":{\"name\":\"\",\"color\":\"red\"}}",
	               Z "added the red label to \"Ship it\"");
	expect_summary("removeLabelFromCard", "{" D_CARD ",\"label\":{\"color\":\"green\"}}",
	               Z "removed the green label from \"Ship it\"");
	expect_summary("removeLabelFromCard", "{" D_CARD ",\"label\":{\"color\":null}}",
	               Z "removed a label from \"Ship it\"");
	expect_summary(
	    "addMemberToCard",
	    "{" D_CARD ",\"idMember\":\"5e3b1c9f8a7d6e5f4a3b2c2e\","
	    "\"member\":{\"id\":\"5e3b1c9f8a7d6e5f4a3b2c2e\",\"name\":\"Bj\xC3\xB6rn\"}}",
	    Z "added Bj\xC3\xB6rn to \"Ship it\"");
	expect_summary("addMemberToCard",
	               "{" D_CARD ",\"idMember\":\"5e3b1c9f8a7d6e5f4a3b2c1d\","
	               "\"member\":{\"id\":\"5e3b1c9f8a7d6e5f4a3b2c1d\",\"name\":\"" ZOE "\"}}",
	               Z "joined \"Ship it\"");
	expect_summary(
	    "removeMemberFromCard",
	    "{" D_CARD ",\"idMember\":\"5e3b1c9f8a7d6e5f4a3b2c2e\","
	    "\"member\":{\"id\":\"5e3b1c9f8a7d6e5f4a3b2c2e\",\"name\":\"Bj\xC3\xB6rn\"}}",
	    Z "removed Bj\xC3\xB6rn from \"Ship it\"");
	expect_summary("removeMemberFromCard",
	               "{" D_CARD ",\"idMember\":\"5e3b1c9f8a7d6e5f4a3b2c1d\"}",
	               Z "left \"Ship it\"");
	expect_summary("removeMemberFromCard",
	               "{" D_CARD ",\"idMember\":\"5e3b1c9f8a7d6e5f4a3b2c2e\"}",
	               Z "removed a member from \"Ship it\"");
	expect_summary("addAttachmentToCard",
	               "{" D_CARD ",\"attachment\":{\"name\":\"a.png\",\"url\":\"https://x\"}}",
	               Z "attached a.png to \"Ship it\"");
	expect_summary("addAttachmentToCard", "{" D_CARD "}", Z "attached a file to \"Ship it\"");
	expect_summary("deleteAttachmentFromCard",
	               "{" D_CARD ",\"attachment\":{\"name\":\"a.png\"}}",
	               Z "removed attachment a.png from \"Ship it\"");
	expect_summary("deleteAttachmentFromCard", "{" D_CARD ",\"attachment\":{\"id\":\"x\"}}",
	               Z "removed an attachment from \"Ship it\"");
	expect_summary("addChecklistToCard", "{" D_CARD ",\"checklist\":{\"name\":\"Release\"}}",
	               Z "added checklist Release to \"Ship it\"");
	expect_summary("removeChecklistFromCard",
	               "{" D_CARD ",\"checklist\":{\"name\":\"Release\"}}",
	               Z "removed checklist Release from \"Ship it\"");
	expect_summary("createCheckItem",
	               "{" D_CARD
	               ",\"checklist\":{\"name\":\"Release\"},\"checkItem\":{\"name\":\"Docs\"}}",
	               Z "added \"Docs\" to checklist Release on \"Ship it\"");
	expect_summary("createCheckItem", "{" D_CARD "}",
	               Z "added an item to a checklist on \"Ship it\"");
	expect_summary("updateCheckItem",
	               "{" D_CARD ",\"checkItem\":{\"name\":\"New\"},\"old\":{\"name\":\"Old\"}}",
	               Z "renamed checklist item \"Old\" to \"New\" on \"Ship it\"");
	expect_summary("updateCheckItem",
	               "{" D_CARD ",\"checkItem\":{\"name\":\"New\"},\"old\":{\"pos\":1}}",
	               Z "moved checklist item \"New\" on \"Ship it\"");
	expect_summary("updateCheckItemStateOnCard",
	               "{" D_CARD
	               ",\"checkItem\":{\"name\":\"Write docs\",\"state\":\"complete\"}}",
	               Z "completed \"Write docs\" on \"Ship it\"");
	expect_summary("updateCheckItemStateOnCard",
	               "{" D_CARD
	               ",\"checkItem\":{\"name\":\"Write docs\",\"state\":\"incomplete\"}}",
	               Z "marked \"Write docs\" incomplete on \"Ship it\"");
	expect_summary("deleteCheckItem", "{" D_CARD ",\"checkItem\":{\"name\":\"Docs\"}}",
	               Z "deleted checklist item \"Docs\" from \"Ship it\"");
	expect_summary("updateCustomFieldItem",
	               "{" D_CARD ",\"customField\":{\"name\":\"Owner\"},"
	               "\"customFieldItem\":{\"value\":{\"text\":\"Ops <team>\"}}}",
	               Z "set Owner to \"Ops <team>\" on \"Ship it\"");
	expect_summary("updateCustomFieldItem",
	               "{" D_CARD ",\"customField\":{\"name\":\"Deadline\"},"
	               "\"customFieldItem\":{\"value\":{\"date\":\"2027-02-01T12:00:00.000Z\"}}}",
	               Z "set Deadline to 1 Feb 2027 12:00 UTC on \"Ship it\"");
	expect_summary("updateCustomFieldItem",
	               "{" D_CARD ",\"customField\":{\"name\":\"Done\"},"
	               "\"customFieldItem\":{\"value\":{\"checked\":\"true\"}}}",
	               Z "checked Done on \"Ship it\"");
	expect_summary(
	    "updateCustomFieldItem",
	    "{" D_CARD ",\"customField\":{\"name\":\"Prio\"},"
	    "\"customFieldItem\":{\"idValue\":\"6123456789abcdef0000cf09\",\"value\":null}}",
	    Z "changed Prio on \"Ship it\"");
	expect_summary("updateCustomFieldItem",
	               "{" D_CARD ",\"customField\":{\"name\":\"Prio\"},"
	               "\"customFieldItem\":{\"value\":null},\"old\":{\"value\":{\"text\":\"x\"}}}",
	               Z "cleared Prio on \"Ship it\"");
}

static void test_summary_board(void **state)
{
	expect_summary("createList", "{" D_TODO "," D_BOARD "}",
	               Z "created list To do on Roadmap 2027");
	expect_summary("updateList", "{" D_TODO "," D_BOARD ",\"old\":{\"name\":\"Todo\"}}",
	               Z "renamed list Todo to To do on Roadmap 2027");
	expect_summary("updateList",
	               "{\"list\":{\"name\":\"Old\",\"closed\":true}," D_BOARD
	               ",\"old\":{\"closed\":false}}",
	               Z "archived list Old on Roadmap 2027");
	expect_summary("updateList",
	               "{\"list\":{\"name\":\"Old\",\"closed\":false},\"old\":{\"closed\":true}}",
	               Z "restored list Old");
	expect_summary("updateList", "{" D_TODO ",\"old\":{\"pos\":1}}", Z "moved list To do");
	expect_summary("updateList", "{" D_TODO "}", Z "updated list To do");
	expect_summary("updateBoard", "{" D_BOARD ",\"old\":{\"name\":\"Roadmap\"}}",
	               Z "renamed board Roadmap to Roadmap 2027");
	expect_summary("updateBoard",
	               "{\"board\":{\"name\":\"B\",\"closed\":true},\"old\":{\"closed\":false}}",
	               Z "closed board B");
	expect_summary("updateBoard", "{" D_BOARD ",\"old\":{\"prefs\":{\"background\":\"red\"}}}",
	               Z "changed the background of board Roadmap 2027");
	expect_summary("updateBoard", "{" D_BOARD ",\"old\":{\"desc\":\"\"}}",
	               Z "added a description to board Roadmap 2027");
	expect_summary("updateBoard", "{}", Z "updated the board");
	expect_summary(
	    "addMemberToBoard",
	    "{" D_BOARD ",\"idMemberAdded\":\"5e3b1c9f8a7d6e5f4a3b2c2e\","
	    "\"member\":{\"id\":\"5e3b1c9f8a7d6e5f4a3b2c2e\",\"name\":\"Bj\xC3\xB6rn\"}}",
	    Z "added Bj\xC3\xB6rn to board Roadmap 2027");
	expect_summary("addMemberToBoard",
	               "{" D_BOARD ",\"idMemberAdded\":\"5e3b1c9f8a7d6e5f4a3b2c1d\"}",
	               Z "joined board Roadmap 2027");
	expect_summary("createLabel",
	               "{" D_BOARD ",\"label\":{\"name\":\"urgent\",\"color\":\"red\"}}",
	               Z "created label urgent on Roadmap 2027");
	expect_summary(
	    "updateLabel",
	    "{" D_BOARD
	    ",\"label\":{\"name\":\"urgent!\",\"color\":\"red\"},\"old\":{\"name\":\"urgent\"}}",
	    Z "renamed label urgent to urgent! on Roadmap 2027");
	expect_summary(
	    "updateLabel",
	    "{\"label\":{\"name\":\"urgent\",\"color\":\"orange\"},\"old\":{\"color\":\"red\"}}",
	    Z "changed the colour of label urgent from red to orange");
	expect_summary("updateLabel", "{\"label\":{\"name\":\"urgent\"}}",
	               Z "updated label urgent");
	expect_summary("deleteLabel", "{" D_BOARD ",\"label\":{\"id\":\"x\"}}",
	               Z "deleted a label on Roadmap 2027");
}

static void test_summary_generic(void **state)
{
	expect_summary("someNewType", "{" D_CARD "," D_BOARD "}",
	               Z "made a change (someNewType) on \"Ship it\"");
	expect_summary("someNewType", "{" D_TODO "," D_BOARD "}",
	               Z "made a change (someNewType) on list To do on Roadmap 2027");
	expect_summary("someNewType", "{" D_BOARD "}",
	               Z "made a change (someNewType) on Roadmap 2027");
	expect_summary("someNewType", "{}", Z "made a change (someNewType)");
	expect_summary("someNewType", "[1,2]", Z "made a change (someNewType)");

	/* who: fullName, username, the display entity, a name found for the id
	 * elsewhere in the payload, "Someone" (never the raw id) */
	char *s =
	    summary_of("{\"action\":{\"type\":\"voteOnCard\",\"memberCreator\":{\"fullName\":\"\","
	               "\"username\":\"zoe\"},\"data\":{\"card\":{\"name\":\"C\"}}}}");
	assert_string_equal(s, "zoe voted for \"C\"");
	free(s);
	s = summary_of(
	    "{\"action\":{\"type\":\"voteOnCard\",\"display\":{\"entities\":{\"memberCreator\":"
	    "{\"text\":\"Z\xC3\xB6\"}}},\"data\":{\"card\":{\"name\":\"C\"}}}}");
	assert_string_equal(s, "Z\xC3\xB6 voted for \"C\"");
	free(s);
	s = summary_of(
	    "{\"action\":{\"type\":\"voteOnCard\",\"idMemberCreator\":\"5e3b1c9f8a7d6e5f4a3b2c1d\","
	    "\"data\":{\"card\":{\"name\":\"C\"}}}}");
	assert_string_equal(s, "Someone voted for \"C\"");
	free(s);
	s = summary_of(
	    "{\"action\":{\"type\":\"voteOnCard\",\"idMemberCreator\":\"5e3b1c9f8a7d6e5f4a3b2c1d\","
	    "\"data\":{\"card\":{\"name\":\"C\"}}},\"model\":{\"members\":[{\"id\":"
	    "\"5e3b1c9f8a7d6e5f4a3b2c1d\",\"fullName\":\"Zo\"}]}}");
	assert_string_equal(s, "Zo voted for \"C\"");
	free(s);
	s = summary_of(
	    "{\"action\":{\"type\":\"voteOnCard\",\"memberCreator\":{\"fullName\":\"\\n\\t\"},"
	    "\"data\":{\"card\":{\"name\":\"C\"}}}}");
	assert_string_equal(s, "Someone voted for \"C\"");
	free(s);

	/* no action at all, or not even an object */
	const char *odd[] = {
	    "{}", "null", "[]", "42", "\"x\"", "{\"action\":[]}", "{\"action\":{\"type\":7}}"};
	for (size_t i = 0; i < TH_ARRAY_LEN(odd); i++) {
		s = event_summarize_text(odd[i], strlen(odd[i]));
		assert_string_equal(s, "Someone did something");
		free(s);
	}
	/* text that does not parse gets the same fallback */
	const char *bad[] = {"", "{", "{\"action\":{\"type\":\"voteOnCard\"}", "nul\0l",
	                     "{\"action\":{\"type\":\"voteOnCard\",\"type\":\"x\"}}"};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		s = event_summarize_text(bad[i], strlen(bad[i]) + (i == 3 ? 2 : 0));
		assert_string_equal(s, "Someone did something");
		free(s);
	}
	s = event_summarize_text(NULL, 0);
	assert_string_equal(s, "Someone did something");
	free(s);
}

/* Comments: first line, collapsed whitespace, 140 characters, "…" for the rest. */
static void test_summary_comment_text(void **state)
{
	expect_summary("commentCard",
	               "{\"card\":{\"name\":\"C\"},\"text\":\"  \\n\\nhello \\t  world\\n\\nbye\"}",
	               Z "commented on \"C\": hello world" ELL);
	expect_summary("commentCard", "{\"card\":{\"name\":\"C\"},\"text\":\"one line\\n   \\n\"}",
	               Z "commented on \"C\": one line");
	expect_summary("commentCard", "{\"card\":{\"name\":\"C\"},\"text\":\"a\\r\\nb\"}",
	               Z "commented on \"C\": a" ELL);
	expect_summary("commentCard", "{\"card\":{\"name\":\"C\"},\"text\":\"a\\u2028b\"}",
	               Z "commented on \"C\": a" ELL);

	/* exactly 140 characters is not cut, 141 is */
	char data[2048], want[2048], text[1024];
	memset(text, 'a', 140);
	text[140] = '\0';
	assert_true(
	    str_printf(data, sizeof data, "{\"card\":{\"name\":\"C\"},\"text\":\"%s\"}", text));
	assert_true(str_printf(want, sizeof want, Z "commented on \"C\": %s", text));
	expect_summary("commentCard", data, want);
	assert_true(
	    str_printf(data, sizeof data, "{\"card\":{\"name\":\"C\"},\"text\":\"%sb\"}", text));
	assert_true(str_printf(want, sizeof want, Z "commented on \"C\": %s" ELL, text));
	expect_summary("commentCard", data, want);

	/* counted in characters, never cut inside one: 130 × "a" then 20 × "é"
	 * keeps 130 + 10 */
	buf t;
	buf_init(&t, 4096);
	for (int i = 0; i < 130; i++)
		assert_int_equal(buf_putc(&t, 'a'), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(buf_puts(&t, "\xC3\xA9"), 0);
	assert_true(
	    str_printf(data, sizeof data, "{\"card\":{\"name\":\"C\"},\"text\":\"%s\"}", t.data));
	t.len = 150;
	t.data[150] = '\0';
	assert_true(str_printf(want, sizeof want, Z "commented on \"C\": %s" ELL, t.data));
	expect_summary("commentCard", data, want);

	/* 150 × "é" is 300 bytes: the line cap (300 bytes) cuts first, on a
	 * character boundary */
	buf_reset(&t);
	for (int i = 0; i < 150; i++)
		assert_int_equal(buf_puts(&t, "\xC3\xA9"), 0);
	assert_true(
	    str_printf(data, sizeof data,
	               "{\"action\":{\"type\":\"commentCard\",\"memberCreator\":{\"fullName\":"
	               "\"" ZOE "\"},\"data\":{\"card\":{\"name\":\"C\"},\"text\":\"%s\"}}}",
	               t.data));
	char *s = summary_of(data);
	assert_one_line(s);
	assert_true(str_starts(s, Z "commented on \"C\": \xC3\xA9\xC3\xA9"));
	assert_true(str_ends(s, "\xC3\xA9" ELL));
	assert_true(strlen(s) >= 298);
	free(s);
	buf_free(&t);
}

/* Control characters never reach a summary; it stays one line. */
static void test_summary_sanitised(void **state)
{
	expect_summary(
	    "voteOnCard",
	    "{\"card\":{\"name\":\"a\\nb\\tc\\r\\u0001d\\u0007e\\u007ff\\u0085g\\u009bh\"}}",
	    Z "voted for \"a b c def gh\"");
	/* bidi overrides are dropped: what is shown is what is there */
	expect_summary("voteOnCard", "{\"card\":{\"name\":\"x\\u202eyz\\u2066w\\u2069\"}}",
	               Z "voted for \"xyzw\"");
	/* HTML is not escaped here: that is the renderer's job */
	expect_summary("voteOnCard",
	               "{\"card\":{\"name\":\"<img src=x onerror=alert(1)> & \\\"q\\\"\"}}",
	               Z "voted for \"<img src=x onerror=alert(1)> & \"q\"\"");

	/* invalid UTF-8 never reaches a summary: the parser refuses the text */
	const char bad[] = "{\"action\":{\"type\":\"voteOnCard\",\"data\":{\"card\":{\"name\":"
	                   "\"a\xff"
	                   "b\xC0\"}}}}";
	char *s = event_summarize_text(bad, sizeof bad - 1);
	assert_string_equal(s, "Someone did something");
	assert_one_line(s);
	free(s);
}

/* Long names are capped, the line at 300 bytes on a character boundary. */
static void test_summary_bounded(void **state)
{
	buf name;
	buf_init(&name, 1 << 20);
	for (int i = 0; i < 300; i++)
		assert_int_equal(buf_puts(&name, "\xF0\x9F\x9A\x80"), 0); /* 🚀, 4 bytes */
	json_t *j =
	    json_pack("{s:{s:s, s:{s:s}, s:{s:{s:s}, s:{s:s}, s:{s:s}}}}", "action", "type",
	              "createCard", "memberCreator", "fullName", name.data, "data", "card", "name",
	              name.data, "list", "name", name.data, "board", "name", name.data);
	assert_non_null(j);
	char *text = json_dumps(j, 0);
	assert_non_null(text);
	char *s = event_summarize_text(text, strlen(text));
	assert_one_line(s);
	assert_true(strlen(s) > 280);
	assert_true(str_ends(s, ELL));
	free(s);
	free(text);
	json_decref(j);
	buf_free(&name);
}

/* ---- event_parse: fields and fallbacks ------------------------------------------------ */

#define ACTION_OK "\"id\":\"6123456789abcdef00010001\",\"type\":\"createCard\""

static void parse_ok(event *ev, const char *body)
{
	th_error err = {0};
	if (event_parse(ev, body, strlen(body), &err) != 0)
		fail_msg("rejected: %s\nbody: %s", err.msg, body);
}

static void test_parse_minimal_and_fallbacks(void **state)
{
	event ev = {0};
	parse_ok(&ev, "{\"action\":{" ACTION_OK "}}");
	assert_string_equal(ev.action_type, "createCard");
	assert_null(ev.model_id);
	assert_null(ev.board_id);
	assert_null(ev.card_id);
	assert_null(ev.member);
	assert_null(ev.action_date);
	assert_string_equal(ev.summary, "Someone created a card");
	event_clear(&ev);

	/* model.id, else webhook.idModel */
	parse_ok(&ev, "{\"action\":{" ACTION_OK "},\"webhook\":{\"idModel\":\"" BOARD_ID "\"}}");
	assert_string_equal(ev.model_id, BOARD_ID);
	event_clear(&ev);
	parse_ok(&ev, "{\"model\":{\"id\":\"" CARD_ID "\"},\"action\":{" ACTION_OK
	              "},\"webhook\":{\"idModel\":\"" BOARD_ID "\"}}");
	assert_string_equal(ev.model_id, CARD_ID);
	event_clear(&ev);

	/* member: fullName, username, display entity, idMemberCreator */
	parse_ok(&ev, "{\"action\":{" ACTION_OK ",\"memberCreator\":{\"username\":\"zoe\"}}}");
	assert_string_equal(ev.member, "zoe");
	event_clear(&ev);
	parse_ok(&ev,
	         "{\"action\":{" ACTION_OK ",\"display\":{\"entities\":{\"memberCreator\":"
	         "{\"text\":\"Zo\xC3\xAB\"}}},\"idMemberCreator\":\"5e3b1c9f8a7d6e5f4a3b2c1d\"}}");
	assert_string_equal(ev.member, "Zo\xC3\xAB");
	event_clear(&ev);
	parse_ok(&ev,
	         "{\"action\":{" ACTION_OK ",\"idMemberCreator\":\"5e3b1c9f8a7d6e5f4a3b2c1d\"}}");
	assert_string_equal(ev.member, "5e3b1c9f8a7d6e5f4a3b2c1d");
	event_clear(&ev);

	/* list: listAfter wins over list for moves */
	parse_ok(&ev, "{\"action\":{" ACTION_OK ",\"data\":{\"list\":{\"id\":\"" TODO_ID
	              "\",\"name\":\"To do\"},\"listAfter\":{\"id\":\"" DOING_ID
	              "\",\"name\":\"Doing\"}}}}");
	assert_string_equal(ev.list_id, DOING_ID);
	assert_string_equal(ev.list_name, "Doing");
	event_clear(&ev);

	/* action types: colon and underscore allowed, 64 characters allowed */
	parse_ok(
	    &ev,
	    "{\"action\":{\"id\":\"6123456789ABCDEF00010001\",\"type\":\"updateCard:idList\"}}");
	event_clear(&ev);
	char body[512], type[80];
	memset(type, 'a', 64);
	type[64] = '\0';
	assert_true(str_printf(body, sizeof body,
	                       "{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":\"%s\"}}",
	                       type));
	parse_ok(&ev, body);
	event_clear(&ev);
	type[64] = 'a';
	type[65] = '\0';
	assert_true(str_printf(body, sizeof body,
	                       "{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":\"%s\"}}",
	                       type));
	expect_reject(body, strlen(body), "action.type");

	/* brackets inside strings do not count as nesting */
	buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_puts(&b, "{\"action\":{" ACTION_OK ",\"data\":{\"text\":\""), 0);
	for (int i = 0; i < 500; i++)
		assert_int_equal(buf_puts(&b, "[{\\\""), 0);
	assert_int_equal(buf_puts(&b, "\"}}}"), 0);
	parse_ok(&ev, b.data);
	event_clear(&ev);
	buf_free(&b);

	event_clear(&ev); /* clearing twice, or a zeroed event, is fine */
	event_clear(NULL);
}

/* Wrong types everywhere except action.id/type: parses, fields degrade. */
static void test_parse_wrong_types(void **state)
{
	static const char *bodies[] = {
	    "{\"model\":[],\"webhook\":7,\"action\":{" ACTION_OK
	    ",\"data\":[],\"memberCreator\":\"x\","
	    "\"display\":null,\"date\":5,\"idMemberCreator\":{}}}",
	    "{\"model\":{\"id\":5},\"action\":{" ACTION_OK
	    ",\"data\":{\"board\":\"b\",\"list\":[1],"
	    "\"card\":{\"id\":12,\"name\":false,\"idShort\":\"7\"},\"listAfter\":null},"
	    "\"memberCreator\":{\"fullName\":null,\"username\":[]},\"display\":{\"entities\":[]}}}",
	    "{\"model\":{\"id\":\"../../etc\"},\"action\":{" ACTION_OK
	    ",\"data\":{\"board\":{\"id\":"
	    "\"not-an-id\",\"name\":\"\"},\"card\":{\"id\":\"6123456789abcdef0000cc0\",\"name\":\"\"},"
	    "\"old\":[],\"listBefore\":7,\"label\":\"x\",\"checkItem\":null,\"text\":{}}}}",
	    "{\"action\":{\"type\":\"updateCard\",\"id\":\"6123456789abcdef00010001\",\"data\":"
	    "{\"card\":{\"name\":{}},\"old\":{\"name\":7},\"listBefore\":{\"name\":1},\"listAfter\":[]}}}",
	    "{\"action\":{\"type\":\"updateCustomFieldItem\",\"id\":\"6123456789abcdef00010001\",\"data\":"
	    "{\"customFieldItem\":{\"value\":[1]},\"customField\":\"x\"}}}",
	    "{\"action\":{\"type\":\"addMemberToCard\",\"id\":\"6123456789abcdef00010001\",\"data\":"
	    "{\"member\":7,\"idMember\":null}}}",
	    "{\"action\":{\"type\":\"commentCard\",\"id\":\"6123456789abcdef00010001\",\"data\":"
	    "{\"text\":\"\",\"card\":{\"idShort\":-1}}}}",
	    "{\"action\":{\"type\":\"updateCard\",\"id\":\"6123456789abcdef00010001\",\"data\":"
	    "{\"card\":{\"due\":\"2026-99-99T99:99:99Z\"},\"old\":{\"due\":null}}}}",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bodies); i++) {
		event ev = {0};
		parse_ok(&ev, bodies[i]);
		assert_null(ev.model_id);
		assert_null(ev.board_id);
		assert_null(ev.board_name);
		assert_null(ev.card_id);
		assert_null(ev.card_name);
		assert_null(ev.list_id);
		assert_null(ev.action_date);
		assert_null(ev.member);
		assert_one_line(ev.summary);
		assert_true(str_starts(ev.summary, "Someone "));
		event_clear(&ev);
	}
}

/* ---- event_parse: hostile bodies ------------------------------------------------------- */

static void test_parse_rejects_shape(void **state)
{
	static const struct {
		const char *body;
		const char *want;
	} cases[] = {
	    {"", "body is empty"},
	    {"null", "not a JSON object"},
	    {"[]", "not a JSON object"},
	    {"\"action\"", "not a JSON object"},
	    {"{}", "action is missing"},
	    {"{\"action\":null}", "action is not an object"},
	    {"{\"action\":[]}", "action is not an object"},
	    {"{\"action\":\"createCard\"}", "action is not an object"},
	    {"{\"action\":{\"type\":\"createCard\"}}", "action.id is missing"},
	    {"{\"action\":{\"id\":6123456789,\"type\":\"createCard\"}}",
	     "action.id is not a string"},
	    {"{\"action\":{\"id\":null,\"type\":\"createCard\"}}", "action.id is not a string"},
	    {"{\"action\":{\"id\":\"6123456789abcdef0001000\",\"type\":\"createCard\"}}",
	     "action.id"},
	    {"{\"action\":{\"id\":\"6123456789abcdef000100011\",\"type\":\"createCard\"}}",
	     "action.id"},
	    {"{\"action\":{\"id\":\"6123456789abcdef0001000g\",\"type\":\"createCard\"}}",
	     "action.id"},
	    {"{\"action\":{\"id\":\"\",\"type\":\"createCard\"}}", "action.id"},
	    {"{\"action\":{\"id\":\"6123456789abcdef00010001\"}}", "action.type is missing"},
	    {"{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":1}}",
	     "action.type is not a string"},
	    {"{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":\"\"}}", "action.type"},
	    {"{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":\"update Card\"}}",
	     "action.type"},
	    {"{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":\"create\\nCard\"}}",
	     "action.type"},
	    {"{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":\"cr\xC3\xA9\x65\"}}",
	     "action.type"},
	    {"{\"action\":{\"id\":\"6123456789abcdef00010001\",\"type\":\"a1\"}}", "action.type"},
	    /* not JSON */
	    {"{", "body is not JSON"},
	    {"{\"action\":}", "body is not JSON"},
	    {"{\"action\":{" ACTION_OK "}} trailing", "body is not JSON"},
	    {"{\"action\":{" ACTION_OK "}}{}", "body is not JSON"},
	    {"{'action':1}", "body is not JSON"},
	    {"{\"action\":{" ACTION_OK ",\"x\":NaN}}", "body is not JSON"},
	    /* duplicate keys, at the top and deep down */
	    {"{\"action\":{" ACTION_OK "},\"action\":{" ACTION_OK "}}", "duplicate"},
	    {"{\"action\":{\"id\":\"6123456789abcdef00010001\",\"id\":\"6123456789abcdef00010002\","
	     "\"type\":\"createCard\"}}",
	     "duplicate"},
	    {"{\"action\":{" ACTION_OK ",\"data\":{\"card\":{\"name\":\"a\",\"name\":\"b\"}}}}",
	     "duplicate"},
	    /* an escaped NUL in a string */
	    {"{\"action\":{" ACTION_OK ",\"data\":{\"text\":\"a\\u0000b\"}}}", "body is not JSON"},
	    /* a lone surrogate escape */
	    {"{\"action\":{" ACTION_OK ",\"data\":{\"text\":\"\\ud800\"}}}", "body is not JSON"},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++)
		expect_reject(cases[i].body, strlen(cases[i].body), cases[i].want);

	/* the message locates jansson's complaint */
	expect_reject("{\n\"action\": {,}}", 16, "at line 2 column");
	/* a NULL body */
	expect_reject(NULL, 0, "body is empty");
}

static void test_parse_rejects_bytes(void **state)
{
	/* a raw NUL byte inside the body (and inside a string) */
	static const char nul_in_str[] = "{\"action\":{" ACTION_OK ",\"x\":\"a\0b\"}}";
	expect_reject(nul_in_str, sizeof nul_in_str - 1, "NUL byte (byte offset 69)");
	static const char nul_after[] = "{\"action\":{" ACTION_OK "}}\0";
	expect_reject(nul_after, sizeof nul_after - 1, "NUL byte");
	expect_reject("\0", 1, "NUL byte (byte offset 0)");

	/* not UTF-8, with the offset of the first bad byte */
	static const struct {
		const char *body;
		size_t len;
		const char *want;
	} cases[] = {
	    {"\xff", 0, "body is not valid UTF-8 (byte offset 0)"},
	    {"{\"a\":\"\xff\"}", 0, "(byte offset 6)"},
	    {"{\"a\":\"\xC0\xAF\"}", 0, "(byte offset 6)"},         /* overlong '/' */
	    {"{\"a\":\"\xE0\x80\xAF\"}", 0, "(byte offset 6)"},     /* overlong, 3 bytes */
	    {"{\"a\":\"\xED\xA0\x80\"}", 0, "(byte offset 6)"},     /* surrogate U+D800 */
	    {"{\"a\":\"\xF4\x90\x80\x80\"}", 0, "(byte offset 6)"}, /* past U+10FFFF */
	    {"{\"a\":\"\xC3\"}", 0, "(byte offset 6)"},             /* cut sequence */
	    {"{\"a\":\"\xC3\xA9\xE2\x82", 10, "(byte offset 8)"},   /* cut at the end */
	    {"{\"a\":\"\x80\"}", 0, "(byte offset 6)"},             /* lone continuation */
	    {"{\"a\":\"\xFE\"}", 0, "(byte offset 6)"},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++)
		expect_reject(cases[i].body, cases[i].len ? cases[i].len : strlen(cases[i].body),
		              cases[i].want);

	/* Latin-1 bytes (as some old systems would send) are refused too */
	expect_reject("{\"action\":{" ACTION_OK ",\"n\":\"Zo\xEB\"}}",
	              strlen("{\"action\":{" ACTION_OK ",\"n\":\"Zo\xEB\"}}"), "not valid UTF-8");
}

static void test_parse_depth(void **state)
{
	/* 64 levels in all is fine, 65 is not; 100 and 100000 neither */
	for (int depth = 60; depth <= 66; depth++) {
		buf b;
		buf_init(&b, 1 << 16);
		assert_int_equal(buf_puts(&b, "{\"action\":{" ACTION_OK "},\"deep\":"), 0);
		for (int i = 0; i < depth - 1; i++)
			assert_int_equal(buf_putc(&b, '['), 0);
		for (int i = 0; i < depth - 1; i++)
			assert_int_equal(buf_putc(&b, ']'), 0);
		assert_int_equal(buf_putc(&b, '}'), 0);
		event ev = {0};
		th_error err = {0};
		int rc = event_parse(&ev, b.data, b.len, &err);
		if (depth <= 64) {
			if (rc)
				fail_msg("depth %d rejected: %s", depth, err.msg);
			event_clear(&ev);
		} else {
			assert_int_equal(rc, TH_EINVAL);
			assert_non_null(strstr(err.msg, "deeper than 64"));
			assert_true(all_zero(&ev));
		}
		buf_free(&b);
	}
	static const size_t big[] = {100, 100000};
	for (size_t k = 0; k < TH_ARRAY_LEN(big); k++) {
		buf b;
		buf_init(&b, 1 << 20);
		for (size_t i = 0; i < big[k]; i++)
			assert_int_equal(buf_puts(&b, "{\"a\":"), 0);
		expect_reject(b.data, b.len, "deeper than 64");
		buf_reset(&b);
		for (size_t i = 0; i < big[k]; i++)
			assert_int_equal(buf_putc(&b, '['), 0);
		for (size_t i = 0; i < big[k]; i++)
			assert_int_equal(buf_putc(&b, ']'), 0);
		expect_reject(b.data, b.len, "deeper than 64");
		buf_free(&b);
	}
}

/* A 1 MiB comment and a 1 MiB card name: accepted, summary still bounded. */
static void test_parse_huge_strings(void **state)
{
	buf b;
	buf_init(&b, 4 << 20);
	assert_int_equal(buf_puts(&b, "{\"action\":{\"id\":\"6123456789abcdef00010003\","
	                              "\"type\":\"commentCard\",\"data\":{\"card\":{\"name\":\""),
	                 0);
	for (int i = 0; i < (1 << 20) / 8; i++)
		assert_int_equal(buf_puts(&b, "N\xC3\xA4me \\n "), 0);
	assert_int_equal(buf_puts(&b, "\"},\"text\":\""), 0);
	for (int i = 0; i < (1 << 20) / 4; i++)
		assert_int_equal(buf_puts(&b, "\xF0\x9F\x9A\x80"), 0);
	assert_int_equal(buf_puts(&b, "\"}}}"), 0);
	event ev = {0};
	th_error err = {0};
	if (event_parse(&ev, b.data, b.len, &err) != 0)
		fail_msg("%s", err.msg);
	assert_one_line(ev.summary);
	assert_true(str_ends(ev.summary, ELL));
	assert_true(strlen(ev.card_name) > (1 << 20) - 1000); /* the name itself is kept whole */
	assert_int_equal(ev.payload_len, b.len);
	assert_memory_equal(ev.payload, b.data, b.len);
	event_clear(&ev);
	buf_free(&b);
}

/* The kept payload is the body byte for byte: whitespace, key order, escapes
 * and all (signatures and forwards are over these bytes). */
static void test_parse_keeps_bytes(void **state)
{
	static const char body[] =
	    "\r\n { \"webhook\" :{} ,\n\t\"action\": {\"type\":\"createCard\", "
	    "\"data\":{\"card\":{\"name\":\"\\u00e9\\/\xC3\xA9\"}},"
	    "\"id\":\"6123456789abcdef00010001\"}  }\n\n";
	event ev = {0};
	assert_int_equal(event_parse(&ev, body, sizeof body - 1, NULL), 0);
	assert_int_equal(ev.payload_len, sizeof body - 1);
	assert_memory_equal(ev.payload, body, sizeof body);
	assert_string_equal(ev.card_name, "\xC3\xA9/\xC3\xA9");
	assert_string_equal(ev.summary, "Someone created \"\xC3\xA9/\xC3\xA9\"");
	event_clear(&ev);

	/* a body that is not NUL-terminated is read only up to len */
	size_t len = sizeof body - 1;
	char *exact = malloc(len);
	assert_non_null(exact);
	memcpy(exact, body, len);
	assert_int_equal(event_parse(&ev, exact, len, NULL), 0);
	assert_memory_equal(ev.payload, body, len);
	event_clear(&ev);
	free(exact);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_samples),
	    cmocka_unit_test(test_truncated_samples),
	    cmocka_unit_test(test_mutated_samples),
	    cmocka_unit_test(test_actions_table),
	    cmocka_unit_test(test_table_samples_degraded),
	    cmocka_unit_test(test_summary_cards),
	    cmocka_unit_test(test_summary_card_parts),
	    cmocka_unit_test(test_summary_board),
	    cmocka_unit_test(test_summary_generic),
	    cmocka_unit_test(test_summary_comment_text),
	    cmocka_unit_test(test_summary_sanitised),
	    cmocka_unit_test(test_summary_bounded),
	    cmocka_unit_test(test_parse_minimal_and_fallbacks),
	    cmocka_unit_test(test_parse_wrong_types),
	    cmocka_unit_test(test_parse_rejects_shape),
	    cmocka_unit_test(test_parse_rejects_bytes),
	    cmocka_unit_test(test_parse_depth),
	    cmocka_unit_test(test_parse_huge_strings),
	    cmocka_unit_test(test_parse_keeps_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
