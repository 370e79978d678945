/* SPDX-License-Identifier: MIT */
/*
 * summary.c — one line for people describing a Trello action, in the spirit
 * of the original Django app's per-type templates:
 *
 *   Zoë Ångström moved "Ship it" from To do to Doing on Roadmap 2027
 *
 * This file holds the machinery: the line builder, reading the payload,
 * finding a name for every object it mentions (never a raw id when the
 * payload names the object anywhere), and the "what changed" clauses built
 * from action.data.old. summary_types.c has one sentence per action type;
 * docs/actions.md lists them (a unit test keeps the two in step).
 *
 * Summaries are plain text: nothing is HTML-escaped here (the renderer does
 * that), but they are always one line: control characters are removed or
 * turned into spaces, runs of spaces collapse, each inserted name is capped,
 * and the whole line is capped at SUMMARY_MAX bytes on a UTF-8 boundary.
 *
 * The document may come from anywhere (event_parse() checks only `action.id`
 * and `action.type`), so every field is looked up with its type checked and
 * anything missing degrades to ids, "a card", "Someone" and the like.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/summary_int.h"

#define SUMMARY_MAX 300                    /* bytes, including a final "…" when cut */
#define SUMMARY_BUF_MAX ((size_t)16 << 10) /* working buffer bound */
#define NAME_SEARCH_DEPTH 8                /* how deep name_for_id() looks */
#define NAME_SEARCH_NODES 4096             /* how many values it visits at most */

static const char ELLIPSIS[] = "\xE2\x80\xA6"; /* U+2026 */

/* ---- the bounded, sanitising line builder ------------------------------------- */

void sb_lit(sb *s, const char *lit)
{
	if (lit && !s->failed && buf_puts(&s->b, lit) != 0)
		s->failed = true;
}

static void sb_bytes(sb *s, const char *p, size_t n)
{
	if (!s->failed && buf_append(&s->b, p, n) != 0)
		s->failed = true;
}

/* Decode one UTF-8 sequence at @p (@n bytes left). Returns its length and
 * stores the code point, or returns 1 with *cp = 0xFFFD for a byte that does
 * not start a valid sequence. */
static size_t utf8_next(const unsigned char *p, size_t n, unsigned *cp)
{
	size_t len = str_utf8_seq((const char *)p, n);
	unsigned c = p[0];
	if (len == 1) {
		*cp = c;
		return 1;
	}
	if (len == 0) {
		*cp = 0xFFFD;
		return 1;
	}
	unsigned v = c & (0x7Fu >> len);
	for (size_t k = 1; k < len; k++)
		v = (v << 6) | (p[k] & 0x3Fu);
	*cp = v;
	return len;
}

static bool is_line_break(unsigned cp)
{
	return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x85 || cp == 0x2028 ||
	       cp == 0x2029;
}

/* Characters dropped outright: C0 and C1 controls (other than the ones that
 * become spaces), DEL, and the bidi embedding/override/isolate controls that
 * could make a line display differently from its text. */
static bool is_dropped(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

static bool is_blank(unsigned cp)
{
	return cp == ' ' || cp == '\t' || is_line_break(cp);
}

/* Is there anything that would be shown in the @n bytes at @p? */
static bool has_visible(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned cp;
		i += utf8_next(p + i, n - i, &cp);
		if (!is_blank(cp) && !is_dropped(cp))
			return true;
	}
	return false;
}

/* Append @text sanitised: tabs and line breaks become spaces, other controls
 * disappear, invalid UTF-8 becomes U+FFFD, runs of blanks collapse into one
 * space and both ends are trimmed. With @first_line, stop at the first line
 * break after some text. At most @max_chars code points (the spaces count);
 * "…" marks anything visible that was left out. */
void sb_text(sb *s, const char *text, size_t max_chars, bool first_line)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t n = strlen(text), i = 0, chars = 0;
	bool pending_space = false, more = false;
	while (i < n) {
		unsigned cp;
		size_t len = utf8_next(p + i, n - i, &cp);
		const char *src = (const char *)p + i;
		if (cp == 0xFFFD && len == 1)
			src = "\xEF\xBF\xBD"; /* the replacement character, 3 bytes */
		size_t out_len = (cp == 0xFFFD && len == 1) ? 3 : len;
		if (first_line && chars > 0 && is_line_break(cp)) {
			more = has_visible(p + i, n - i);
			break;
		}
		i += len;
		if (is_blank(cp)) {
			pending_space = chars > 0;
			continue;
		}
		if (is_dropped(cp))
			continue;
		if (chars + (pending_space ? 2 : 1) > max_chars) {
			more = true;
			break;
		}
		if (pending_space) {
			sb_lit(s, " ");
			chars++;
			pending_space = false;
		}
		sb_bytes(s, src, out_len);
		chars++;
	}
	if (more)
		sb_lit(s, ELLIPSIS);
}

/* ---- reading the tree ------------------------------------------------------- */

/* Member @key of object @obj; absent when @obj is not an object. */
jv get(jv obj, const char *key)
{
	jv v = {obj.d, jdoc_get(obj.d, obj.n, key)};
	return v;
}

/* Non-empty string at @key, else NULL. Owned by the document. */
const char *get_str(jv obj, const char *key)
{
	const char *s = jdoc_str(obj.d, get(obj, key).n);
	return s && *s ? s : NULL;
}

/* The object at @key, else absent. */
jv get_obj(jv obj, const char *key)
{
	jv v = get(obj, key);
	if (!jdoc_is_object(v.n))
		v.n = NULL;
	return v;
}

/* Is member @key present, whatever its type (null included)? */
bool has(jv obj, const char *key)
{
	return get(obj, key).n != NULL;
}

/* ---- names ---------------------------------------------------------------------- */

/* The name an object carries itself: name, fullName, displayName, text
 * (display entities), username. */
static const char *own_name(jv o)
{
	static const char *const keys[] = {"name", "fullName", "displayName", "text", "username"};
	for (size_t i = 0; i < TH_ARRAY_LEN(keys); i++) {
		const char *s = get_str(o, keys[i]);
		if (s)
			return s;
	}
	return NULL;
}

/* Depth-first search under @v for an object whose "id" is @id and that
 * carries a name. @budget bounds the values visited. */
static const char *find_named(jv v, const char *id, int depth, int *budget)
{
	if (!v.n || depth > NAME_SEARCH_DEPTH || --*budget < 0)
		return NULL;
	if (!jdoc_is_object(v.n) && !jdoc_is_array(v.n))
		return NULL;
	if (jdoc_is_object(v.n) && str_eq(get_str(v, "id"), id)) {
		const char *s = own_name(v);
		if (s)
			return s;
	}
	jdoc_iter it;
	const jnode *key, *val;
	jdoc_iter_init(&it, v.d, v.n);
	while (jdoc_iter_next(&it, &key, &val)) {
		jv child = {v.d, val};
		const char *s = find_named(child, id, depth + 1, budget);
		if (s)
			return s;
		if (*budget < 0)
			break;
	}
	return NULL;
}

/* See summary_int.h. Only well-formed ids are looked up. */
const char *name_for_id(const ctx *c, const char *id)
{
	if (!str_is_trello_id(id))
		return NULL;
	int budget = NAME_SEARCH_NODES;
	return find_named(c->root, id, 0, &budget);
}

/* See summary_int.h. */
const char *name_of(const ctx *c, const char *key)
{
	jv o = get_obj(c->data, key);
	const char *s = own_name(o);
	if (!s)
		s = get_str(get_obj(c->entities, key), "text");
	if (!s)
		s = name_for_id(c, get_str(o, "id"));
	return s;
}

/* ---- the pieces of a line --------------------------------------------------- */

void put_name(sb *s, const char *name)
{
	sb_text(s, name, NAME_MAX_CHARS, false);
}

void put_quoted(sb *s, const char *name)
{
	sb_lit(s, "\"");
	put_name(s, name);
	sb_lit(s, "\"");
}

/* See summary_int.h. Never the 24-hex id: a short number or link reads
 * better and is what Trello's own UI shows. */
void put_card_at(sb *s, const ctx *c, const char *key)
{
	jv card = get_obj(c->data, key);
	const char *name = name_of(c, key);
	jv idshort = get(card, "idShort");
	long long idn = -1;
	const char *link = get_str(card, "shortLink");
	char num[32];
	if (name) {
		put_quoted(s, name);
	} else if (jdoc_int(idshort.d, idshort.n, &idn) && idn >= 0) {
		str_printf(num, sizeof num, "card #%lld", idn);
		sb_lit(s, num);
	} else if (link) {
		sb_lit(s, "card ");
		sb_text(s, link, 16, false);
	} else {
		sb_lit(s, "a card");
	}
}

void put_card(sb *s, const ctx *c)
{
	put_card_at(s, c, "card");
}

void put_named(sb *s, const ctx *c, const char *key, const char *fallback)
{
	const char *name = name_of(c, key);
	put_name(s, name ? name : fallback);
}

void put_kind(sb *s, const ctx *c, const char *kind, const char *key, const char *fallback)
{
	const char *name = name_of(c, key);
	if (!name) {
		sb_lit(s, fallback);
		return;
	}
	sb_lit(s, kind);
	sb_lit(s, " ");
	put_name(s, name);
}

void put_on_board(sb *s, const ctx *c)
{
	const char *name = name_of(c, "board");
	if (name) {
		sb_lit(s, " on ");
		put_name(s, name);
	}
}

void put_board(sb *s, const ctx *c)
{
	put_kind(s, c, "board", "board", "the board");
}

/* See summary_int.h. Trello's UI calls a label without a name by its
 * colour; an empty name is sent as "". */
void put_label(sb *s, const ctx *c)
{
	jv label = get_obj(c->data, "label");
	const char *name = get_str(label, "name");
	if (!name && !has(label, "name") && !get_str(label, "color"))
		name = get_str(get_obj(c->entities, "label"), "text");
	if (!name && !get_str(label, "color"))
		name = name_for_id(c, get_str(label, "id"));
	const char *color = get_str(label, "color");
	if (!color)
		color = get_str(get_obj(c->entities, "label"), "color");
	if (name) {
		sb_lit(s, "label ");
		put_name(s, name);
	} else if (color) {
		sb_lit(s, "the ");
		sb_text(s, color, 20, false);
		sb_lit(s, " label");
	} else {
		sb_lit(s, "a label");
	}
}

/* The id of the member acted on. */
static const char *other_member_id(const ctx *c)
{
	const char *id = get_str(c->data, "idMember");
	if (!id)
		id = get_str(c->data, "idMemberAdded");
	if (!id)
		id = get_str(get_obj(c->action, "member"), "id");
	if (!id)
		id = get_str(get_obj(c->data, "member"), "id");
	return id;
}

/* See summary_int.h. Real deliveries put the member in action.member;
 * data.member (older or hand-made payloads) is read too. */
void put_member(sb *s, const ctx *c)
{
	jv m = get_obj(c->action, "member");
	const char *name = get_str(m, "fullName");
	if (!name)
		name = get_str(m, "username");
	if (!name)
		name = own_name(get_obj(c->data, "member"));
	if (!name)
		name = get_str(get_obj(c->entities, "member"), "text");
	if (!name)
		name = name_for_id(c, other_member_id(c));
	put_name(s, name ? name : "a member");
}

bool is_self(const ctx *c)
{
	const char *who = get_str(c->action, "idMemberCreator");
	const char *id = other_member_id(c);
	return who && id && strcmp(who, id) == 0;
}

/* See summary_int.h. */
void put_date(sb *s, const char *iso)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int64_t ms;
	char out[64];
	struct tm tm;
	if (time_parse_iso(iso, &ms) == 0) {
		time_t t = (time_t)(ms / 1000);
		if (gmtime_r(&t, &tm) && tm.tm_mon >= 0 && tm.tm_mon < 12 &&
		    str_printf(out, sizeof out, "%d %s %d %02d:%02d UTC", tm.tm_mday,
		               months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min)) {
			sb_lit(s, out);
			return;
		}
	}
	sb_text(s, iso, 40, false);
}

/* ---- the line ----------------------------------------------------------------------- */

/* The actor: memberCreator.fullName, .username, the display entity, any
 * name the payload has for idMemberCreator. */
static const char *actor_of(const ctx *c)
{
	jv mc = get_obj(c->action, "memberCreator");
	const char *s = get_str(mc, "fullName");
	if (!s)
		s = get_str(mc, "username");
	if (!s)
		s = get_str(get_obj(c->entities, "memberCreator"), "text");
	if (!s)
		s = name_for_id(c, get_str(c->action, "idMemberCreator"));
	return s;
}

/* Cut @b to at most SUMMARY_MAX bytes on a UTF-8 boundary, ending in "…". */
static void cap_line(buf *b)
{
	if (b->len <= SUMMARY_MAX)
		return;
	size_t cut = SUMMARY_MAX - (sizeof ELLIPSIS - 1);
	while (cut > 0 && ((unsigned char)b->data[cut] & 0xC0) == 0x80)
		cut--; /* data[cut] is the first byte dropped: not a continuation */
	while (cut > 0 && b->data[cut - 1] == ' ')
		cut--;
	memcpy(b->data + cut, ELLIPSIS, sizeof ELLIPSIS); /* includes the NUL */
	b->len = cut + sizeof ELLIPSIS - 1;
}

/* See model.h. Static storage; NULL past the end. */
const char *event_summary_type(size_t i)
{
	return i < summarizers_len ? summarizers[i].type : NULL;
}

/* See model.h. @root (of document @d) is borrowed: any value, or NULL;
 * anything not shaped like a delivery still yields "Someone did something".
 * Decodes the strings it reads into @d's arena. Returns a malloc'ed
 * NUL-terminated line of at most SUMMARY_MAX bytes; NULL only when out of
 * memory. Thread-safe for different documents. */
char *event_summarize_doc(jdoc *d, const jnode *root)
{
	sb s = {.failed = false};
	buf_init(&s.b, SUMMARY_BUF_MAX);

	jv payload = {d, root};
	jv action = get_obj(payload, "action");
	ctx c = {.root = payload,
	         .action = action,
	         .data = get_obj(action, "data"),
	         .entities = get_obj(get_obj(action, "display"), "entities"),
	         .type = get_str(action, "type")};
	c.old = get_obj(c.data, "old");

	const char *actor = actor_of(&c);
	size_t before = s.b.len;
	if (actor)
		put_name(&s, actor);
	if (s.b.len == before) /* absent, or nothing printable in it */
		sb_lit(&s, "Someone");
	sb_lit(&s, " ");

	if (!c.type) {
		sb_lit(&s, "did something");
		put_on_board(&s, &c);
	} else {
		const summarizer *e = NULL;
		for (size_t i = 0; i < summarizers_len && !e; i++)
			if (strcmp(summarizers[i].type, c.type) == 0)
				e = &summarizers[i];
		if (e)
			summarizer_run(&s, &c, e);
		else
			s_generic(&s, &c);
	}

	char *out = NULL;
	if (!s.failed) {
		cap_line(&s.b);
		out = buf_detach(&s.b, NULL);
	}
	buf_free(&s.b);
	return out;
}

/* See model.h. @json (@len bytes) is borrowed; text that does not parse
 * gets the generic "Someone did something". Returns a malloc'ed line; NULL
 * only when out of memory. Thread-safe. */
char *event_summarize_text(const char *json, size_t len)
{
	jdoc d;
	char *out = NULL;
	int rc = jdoc_parse(&d, json, len, EVENT_MAX_DEPTH, NULL);
	if (rc == TH_ENOMEM)
		goto out;
	out = event_summarize_doc(&d, rc == 0 ? jdoc_root(&d) : NULL);
out:
	jdoc_free(&d);
	return out;
}
