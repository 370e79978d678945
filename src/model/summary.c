/*
 * summary.c — one line for people describing a Trello action, in the spirit
 * of the original Django app's per-type templates:
 *
 *   Zoë Ångström moved "Ship it" from To do to Doing on Roadmap 2027
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

#include "model/model.h"

#define SUMMARY_MAX 300                    /* bytes, including a final "…" when cut */
#define NAME_MAX_CHARS 100                 /* code points of one inserted name */
#define COMMENT_MAX_CHARS 140              /* code points of the quoted comment line */
#define SUMMARY_BUF_MAX ((size_t)16 << 10) /* working buffer bound */

static const char ELLIPSIS[] = "\xE2\x80\xA6"; /* U+2026 */

/* ---- the bounded, sanitising line builder ------------------------------------- */

typedef struct sb {
	buf b;
	bool failed; /* an append failed (out of memory or over SUMMARY_BUF_MAX) */
} sb;

static void sb_lit(sb *s, const char *lit)
{
	if (!s->failed && buf_puts(&s->b, lit) != 0)
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
static void sb_text(sb *s, const char *text, size_t max_chars, bool first_line)
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

/* A value in the parsed document: the handle and the document it belongs to
 * (jdoc_str() decodes into the document). n == NULL: absent. */
typedef struct jv {
	jdoc *d;
	const jnode *n;
} jv;

/* Member @key of object @obj; absent when @obj is not an object. */
static jv get(jv obj, const char *key)
{
	jv v = {obj.d, jdoc_get(obj.d, obj.n, key)};
	return v;
}

/* Non-empty string at @key, else NULL. Owned by the document. */
static const char *get_str(jv obj, const char *key)
{
	const char *s = jdoc_str(obj.d, get(obj, key).n);
	return s && *s ? s : NULL;
}

static jv get_obj(jv obj, const char *key)
{
	jv v = get(obj, key);
	if (!jdoc_is_object(v.n))
		v.n = NULL;
	return v;
}

/* What a summarizer needs at hand. Everything is borrowed from the document. */
typedef struct ctx {
	jv action;
	jv data;          /* action.data (absent: n == NULL) */
	jv old;           /* action.data.old: the previous values */
	jv entities;      /* action.display.entities */
	const char *type; /* action.type, never NULL */
} ctx;

/* The name of an entity: data.<key>.name, else the display entity's text. */
static const char *name_of(const ctx *c, const char *key)
{
	const char *s = get_str(get_obj(c->data, key), "name");
	return s ? s : get_str(get_obj(c->entities, key), "text");
}

/* ---- the pieces of a line --------------------------------------------------- */

static void put_name(sb *s, const char *name)
{
	sb_text(s, name, NAME_MAX_CHARS, false);
}

static void put_quoted(sb *s, const char *name)
{
	sb_lit(s, "\"");
	put_name(s, name);
	sb_lit(s, "\"");
}

/* `"Card name"`, else `card #42`, else `card <id>`, else `a card`. */
static void put_card(sb *s, const ctx *c)
{
	jv card = get_obj(c->data, "card");
	const char *name = name_of(c, "card");
	jv idshort = get(card, "idShort");
	long long idn = -1;
	const char *id = get_str(card, "id");
	char num[32];
	if (name) {
		put_quoted(s, name);
	} else if (jdoc_int(idshort.d, idshort.n, &idn) && idn >= 0) {
		str_printf(num, sizeof num, "card #%lld", idn);
		sb_lit(s, num);
	} else if (id) {
		sb_lit(s, "card ");
		sb_text(s, id, 32, false);
	} else {
		sb_lit(s, "a card");
	}
}

/* A list's name at data.<key>, else "a list". */
static void put_list(sb *s, const ctx *c, const char *key)
{
	const char *name = name_of(c, key);
	put_name(s, name ? name : "a list");
}

/* ` on <board>` when the board has a name. */
static void put_on_board(sb *s, const ctx *c)
{
	const char *name = get_str(get_obj(c->data, "board"), "name");
	if (name) {
		sb_lit(s, " on ");
		put_name(s, name);
	}
}

/* The board by name for board-level actions, else "the board". */
static void put_board(sb *s, const ctx *c)
{
	const char *name = get_str(get_obj(c->data, "board"), "name");
	put_name(s, name ? name : "the board");
}

/* Does data.old carry @key (the field that changed)? */
static bool changed(const ctx *c, const char *key)
{
	return get(c->old, key).n != NULL;
}

/* `label <name>`, else `label <colour>`, else `a label`. */
static void put_label(sb *s, const ctx *c)
{
	jv label = get_obj(c->data, "label");
	const char *name = get_str(label, "name");
	if (!name)
		name = get_str(get_obj(c->entities, "label"), "text");
	if (!name)
		name = get_str(label, "color");
	if (name) {
		sb_lit(s, "label ");
		put_name(s, name);
	} else {
		sb_lit(s, "a label");
	}
}

/* The other member of addMemberTo*, removeMemberFrom*: data.member.name,
 * else the display entity, else the id. */
static const char *other_member(const ctx *c)
{
	const char *s = get_str(get_obj(c->data, "member"), "name");
	if (!s)
		s = get_str(get_obj(c->entities, "member"), "text");
	if (!s)
		s = get_str(get_obj(c->data, "member"), "id");
	if (!s)
		s = get_str(c->data, "idMember");
	if (!s)
		s = get_str(c->data, "idMemberAdded");
	return s;
}

/* Did the actor act on themselves (joined/left)? */
static bool is_self(const ctx *c)
{
	const char *who = get_str(c->action, "idMemberCreator");
	const char *id = get_str(c->data, "idMember");
	if (!id)
		id = get_str(c->data, "idMemberAdded");
	if (!id)
		id = get_str(get_obj(c->data, "member"), "id");
	return who && id && strcmp(who, id) == 0;
}

/* A due date as "2026-12-01 17:00 UTC" when it parses, else as sent. */
static void put_date(sb *s, const char *iso)
{
	int64_t ms;
	char out[64];
	struct tm tm;
	if (time_parse_iso(iso, &ms) == 0) {
		time_t t = (time_t)(ms / 1000);
		if (gmtime_r(&t, &tm) && strftime(out, sizeof out, "%Y-%m-%d %H:%M UTC", &tm) > 0) {
			sb_lit(s, out);
			return;
		}
	}
	sb_text(s, iso, 40, false);
}

/* ---- one function per action type ----------------------------------------------- */

static void s_create_card(sb *s, const ctx *c)
{
	sb_lit(s, "created ");
	put_card(s, c);
	const char *list = name_of(c, "list");
	if (list) {
		sb_lit(s, " in ");
		put_name(s, list);
	}
	put_on_board(s, c);
}

static void s_update_card(sb *s, const ctx *c)
{
	jv card = get_obj(c->data, "card");
	if (get_obj(c->data, "listBefore").n || get_obj(c->data, "listAfter").n) {
		sb_lit(s, "moved ");
		put_card(s, c);
		sb_lit(s, " from ");
		put_list(s, c, "listBefore");
		sb_lit(s, " to ");
		put_list(s, c, "listAfter");
		put_on_board(s, c);
	} else if (changed(c, "name")) {
		const char *old = get_str(c->old, "name");
		sb_lit(s, "renamed ");
		if (old)
			put_quoted(s, old);
		else
			sb_lit(s, "a card");
		sb_lit(s, " to ");
		put_card(s, c);
	} else if (changed(c, "closed")) {
		sb_lit(s, jdoc_is_false(get(card, "closed").n) ? "reopened " : "archived ");
		put_card(s, c);
	} else if (changed(c, "desc")) {
		sb_lit(s, "changed the description of ");
		put_card(s, c);
	} else if (changed(c, "due")) {
		const char *due = get_str(card, "due");
		sb_lit(s, due ? "set the due date of " : "removed the due date of ");
		put_card(s, c);
		if (due) {
			sb_lit(s, " to ");
			put_date(s, due);
		}
	} else if (changed(c, "dueComplete")) {
		sb_lit(s, "marked the due date of ");
		put_card(s, c);
		sb_lit(s, jdoc_is_true(get(card, "dueComplete").n) ? " complete" : " incomplete");
	} else if (changed(c, "pos")) {
		sb_lit(s, "moved ");
		put_card(s, c);
		const char *list = name_of(c, "list");
		if (list) {
			sb_lit(s, " within ");
			put_name(s, list);
		}
	} else {
		sb_lit(s, "updated ");
		put_card(s, c);
	}
}

static void s_delete_card(sb *s, const ctx *c)
{
	sb_lit(s, "deleted ");
	put_card(s, c);
	const char *list = name_of(c, "list");
	if (list) {
		sb_lit(s, " from ");
		put_name(s, list);
	}
}

static void s_comment_card(sb *s, const ctx *c)
{
	sb_lit(s, "commented on ");
	put_card(s, c);
	const char *text = get_str(c->data, "text");
	if (text) {
		sb_lit(s, ": ");
		sb_text(s, text, COMMENT_MAX_CHARS, true);
	}
}

static void s_update_comment(sb *s, const ctx *c)
{
	sb_lit(s, "edited a comment on ");
	put_card(s, c);
	const char *text = get_str(get_obj(c->data, "action"), "text");
	if (text) {
		sb_lit(s, ": ");
		sb_text(s, text, COMMENT_MAX_CHARS, true);
	}
}

static void s_delete_comment(sb *s, const ctx *c)
{
	sb_lit(s, "deleted a comment on ");
	put_card(s, c);
}

static void s_add_member_to_card(sb *s, const ctx *c)
{
	const char *who = other_member(c);
	if (is_self(c)) {
		sb_lit(s, "joined ");
	} else {
		sb_lit(s, "added ");
		put_name(s, who ? who : "a member");
		sb_lit(s, " to ");
	}
	put_card(s, c);
}

static void s_remove_member_from_card(sb *s, const ctx *c)
{
	const char *who = other_member(c);
	if (is_self(c)) {
		sb_lit(s, "left ");
	} else {
		sb_lit(s, "removed ");
		put_name(s, who ? who : "a member");
		sb_lit(s, " from ");
	}
	put_card(s, c);
}

static void s_add_label(sb *s, const ctx *c)
{
	sb_lit(s, "added ");
	put_label(s, c);
	sb_lit(s, " to ");
	put_card(s, c);
}

static void s_remove_label(sb *s, const ctx *c)
{
	sb_lit(s, "removed ");
	put_label(s, c);
	sb_lit(s, " from ");
	put_card(s, c);
}

static void s_add_attachment(sb *s, const ctx *c)
{
	const char *name = name_of(c, "attachment");
	sb_lit(s, "attached ");
	put_name(s, name ? name : "a file");
	sb_lit(s, " to ");
	put_card(s, c);
}

static void s_delete_attachment(sb *s, const ctx *c)
{
	const char *name = name_of(c, "attachment");
	sb_lit(s, "removed ");
	if (name) {
		sb_lit(s, "attachment ");
		put_name(s, name);
	} else {
		sb_lit(s, "an attachment");
	}
	sb_lit(s, " from ");
	put_card(s, c);
}

static void put_checklist(sb *s, const ctx *c)
{
	const char *name = name_of(c, "checklist");
	if (name) {
		sb_lit(s, "checklist ");
		put_name(s, name);
	} else {
		sb_lit(s, "a checklist");
	}
}

static void s_add_checklist(sb *s, const ctx *c)
{
	sb_lit(s, "added ");
	put_checklist(s, c);
	sb_lit(s, " to ");
	put_card(s, c);
}

static void s_remove_checklist(sb *s, const ctx *c)
{
	sb_lit(s, "removed ");
	put_checklist(s, c);
	sb_lit(s, " from ");
	put_card(s, c);
}

/* A checklist item: data.checkItem.name, else the display entity "checkitem". */
static const char *check_item_name(const ctx *c)
{
	const char *s = get_str(get_obj(c->data, "checkItem"), "name");
	return s ? s : get_str(get_obj(c->entities, "checkitem"), "text");
}

static void put_check_item(sb *s, const ctx *c)
{
	const char *name = check_item_name(c);
	if (name)
		put_quoted(s, name);
	else
		sb_lit(s, "an item");
}

static void s_create_check_item(sb *s, const ctx *c)
{
	sb_lit(s, "added ");
	put_check_item(s, c);
	sb_lit(s, " to ");
	put_checklist(s, c);
	sb_lit(s, " on ");
	put_card(s, c);
}

static void s_update_check_item(sb *s, const ctx *c)
{
	const char *old = get_str(c->old, "name");
	if (old) {
		sb_lit(s, "renamed checklist item ");
		put_quoted(s, old);
		sb_lit(s, " to ");
	} else {
		sb_lit(s, "updated checklist item ");
	}
	put_check_item(s, c);
	sb_lit(s, " on ");
	put_card(s, c);
}

static void s_check_item_state(sb *s, const ctx *c)
{
	const char *state = get_str(get_obj(c->data, "checkItem"), "state");
	if (!state)
		state = get_str(get_obj(c->entities, "checkitem"), "state");
	if (str_eq(state, "complete")) {
		sb_lit(s, "completed ");
		put_check_item(s, c);
	} else {
		sb_lit(s, "marked ");
		put_check_item(s, c);
		sb_lit(s, " incomplete");
	}
	sb_lit(s, " on ");
	put_card(s, c);
}

static void s_delete_check_item(sb *s, const ctx *c)
{
	sb_lit(s, "deleted checklist item ");
	put_check_item(s, c);
	sb_lit(s, " from ");
	put_card(s, c);
}

static void s_create_list(sb *s, const ctx *c)
{
	sb_lit(s, "created list ");
	put_list(s, c, "list");
	put_on_board(s, c);
}

static void s_update_list(sb *s, const ctx *c)
{
	jv list = get_obj(c->data, "list");
	const char *old = get_str(c->old, "name");
	if (old) {
		sb_lit(s, "renamed list ");
		put_name(s, old);
		sb_lit(s, " to ");
		put_list(s, c, "list");
	} else if (changed(c, "closed")) {
		sb_lit(s,
		       jdoc_is_false(get(list, "closed").n) ? "reopened list " : "archived list ");
		put_list(s, c, "list");
	} else if (changed(c, "pos")) {
		sb_lit(s, "moved list ");
		put_list(s, c, "list");
	} else {
		sb_lit(s, "updated list ");
		put_list(s, c, "list");
	}
	put_on_board(s, c);
}

/* moveCardToBoard: data.board is where the card went, data.boardSource
 * where it came from. */
static void s_move_card_to_board(sb *s, const ctx *c)
{
	const char *from = get_str(get_obj(c->data, "boardSource"), "name");
	sb_lit(s, "moved ");
	put_card(s, c);
	if (from) {
		sb_lit(s, " from ");
		put_name(s, from);
	}
	sb_lit(s, " to ");
	put_board(s, c);
}

/* moveCardFromBoard: data.board is where the card was, data.boardTarget
 * where it went. */
static void s_move_card_from_board(sb *s, const ctx *c)
{
	const char *to = get_str(get_obj(c->data, "boardTarget"), "name");
	sb_lit(s, "moved ");
	put_card(s, c);
	sb_lit(s, " from ");
	put_board(s, c);
	sb_lit(s, " to ");
	put_name(s, to ? to : "another board");
}

static void s_update_board(sb *s, const ctx *c)
{
	jv board = get_obj(c->data, "board");
	const char *name = get_str(board, "name");
	const char *old = get_str(c->old, "name");
	if (old) {
		sb_lit(s, "renamed board ");
		put_name(s, old);
		sb_lit(s, " to ");
		put_name(s, name ? name : "(no name)");
		return;
	}
	if (changed(c, "closed"))
		sb_lit(s, jdoc_is_false(get(board, "closed").n) ? "reopened " : "closed ");
	else if (changed(c, "desc"))
		sb_lit(s, "changed the description of ");
	else if (changed(c, "prefs"))
		sb_lit(s, "changed the settings of ");
	else
		sb_lit(s, "updated ");
	if (name) {
		sb_lit(s, "board ");
		put_name(s, name);
	} else {
		sb_lit(s, "the board");
	}
}

static void s_add_member_to_board(sb *s, const ctx *c)
{
	const char *who = other_member(c);
	if (is_self(c)) {
		sb_lit(s, "joined ");
	} else {
		sb_lit(s, "added ");
		put_name(s, who ? who : "a member");
		sb_lit(s, " to ");
	}
	put_board(s, c);
}

static void s_create_label(sb *s, const ctx *c)
{
	sb_lit(s, "created ");
	put_label(s, c);
	put_on_board(s, c);
}

static void s_update_label(sb *s, const ctx *c)
{
	const char *old = get_str(c->old, "name");
	const char *color = get_str(get_obj(c->data, "label"), "color");
	if (old) {
		sb_lit(s, "renamed label ");
		put_name(s, old);
		sb_lit(s, " to ");
		const char *name = get_str(get_obj(c->data, "label"), "name");
		put_name(s, name ? name : "(no name)");
	} else if (changed(c, "color")) {
		sb_lit(s, "changed the colour of ");
		put_label(s, c);
		sb_lit(s, " to ");
		put_name(s, color ? color : "none");
	} else {
		sb_lit(s, "updated ");
		put_label(s, c);
	}
	put_on_board(s, c);
}

static void s_delete_label(sb *s, const ctx *c)
{
	sb_lit(s, "deleted ");
	put_label(s, c);
	put_on_board(s, c);
}

/* updateCustomFieldItem: data.customField {name, type},
 * data.customFieldItem.value {text|number|date|checked} or .idValue (a
 * dropdown option, whose text the payload does not carry). */
static void s_update_custom_field(sb *s, const ctx *c)
{
	jv item = get_obj(c->data, "customFieldItem");
	jv value = get_obj(item, "value");
	const char *field = name_of(c, "customField");
	const char *text = get_str(value, "text");
	const char *number = get_str(value, "number");
	const char *date = get_str(value, "date");
	const char *checked = get_str(value, "checked");

	if (!value.n && !get_str(item, "idValue")) {
		sb_lit(s, "cleared ");
		put_name(s, field ? field : "a custom field");
	} else if (checked) {
		sb_lit(s, str_eq(checked, "true") ? "checked " : "unchecked ");
		put_name(s, field ? field : "a custom field");
	} else {
		sb_lit(s, text || number || date ? "set " : "changed ");
		put_name(s, field ? field : "a custom field");
		if (text) {
			sb_lit(s, " to ");
			put_quoted(s, text);
		} else if (number) {
			sb_lit(s, " to ");
			put_name(s, number);
		} else if (date) {
			sb_lit(s, " to ");
			put_date(s, date);
		}
	}
	sb_lit(s, " on ");
	put_card(s, c);
}

static void s_vote_on_card(sb *s, const ctx *c)
{
	sb_lit(s,
	       jdoc_is_false(get(c->data, "voted").n) ? "removed their vote from " : "voted for ");
	put_card(s, c);
}

/* Unknown types: `did someNewType on "Card"`, on a list, on the board, or
 * nothing more. */
static void s_generic(sb *s, const ctx *c)
{
	sb_lit(s, "did ");
	sb_text(s, c->type, 64, false);
	if (get_obj(c->data, "card").n || get_obj(c->entities, "card").n) {
		sb_lit(s, " on ");
		put_card(s, c);
	} else if (name_of(c, "list")) {
		sb_lit(s, " on list ");
		put_list(s, c, "list");
		put_on_board(s, c);
	} else {
		put_on_board(s, c);
	}
}

static const struct {
	const char *type;
	void (*fn)(sb *, const ctx *);
} summarizers[] = {
    {"createCard", s_create_card},
    {"copyCard", s_create_card},
    {"updateCard", s_update_card},
    {"deleteCard", s_delete_card},
    {"commentCard", s_comment_card},
    {"updateComment", s_update_comment},
    {"deleteComment", s_delete_comment},
    {"addMemberToCard", s_add_member_to_card},
    {"removeMemberFromCard", s_remove_member_from_card},
    {"addLabelToCard", s_add_label},
    {"removeLabelFromCard", s_remove_label},
    {"addAttachmentToCard", s_add_attachment},
    {"deleteAttachmentFromCard", s_delete_attachment},
    {"addChecklistToCard", s_add_checklist},
    {"removeChecklistFromCard", s_remove_checklist},
    {"createCheckItem", s_create_check_item},
    {"updateCheckItem", s_update_check_item},
    {"updateCheckItemStateOnCard", s_check_item_state},
    {"deleteCheckItem", s_delete_check_item},
    {"createList", s_create_list},
    {"updateList", s_update_list},
    {"moveCardToBoard", s_move_card_to_board},
    {"moveCardFromBoard", s_move_card_from_board},
    {"updateBoard", s_update_board},
    {"addMemberToBoard", s_add_member_to_board},
    {"createLabel", s_create_label},
    {"updateLabel", s_update_label},
    {"deleteLabel", s_delete_label},
    {"updateCustomFieldItem", s_update_custom_field},
    {"voteOnCard", s_vote_on_card},
};

/* The actor: memberCreator.fullName, .username, the display entity, the id. */
static const char *actor_of(jv action)
{
	jv mc = get_obj(action, "memberCreator");
	const char *s = get_str(mc, "fullName");
	if (!s)
		s = get_str(mc, "username");
	if (!s)
		s = get_str(
		    get_obj(get_obj(get_obj(action, "display"), "entities"), "memberCreator"),
		    "text");
	if (!s)
		s = get_str(action, "idMemberCreator");
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
	ctx c = {.action = action,
	         .data = get_obj(action, "data"),
	         .entities = get_obj(get_obj(action, "display"), "entities"),
	         .type = get_str(action, "type")};
	c.old = get_obj(c.data, "old");

	const char *actor = actor_of(action);
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
		void (*fn)(sb *, const ctx *) = s_generic;
		for (size_t i = 0; i < TH_ARRAY_LEN(summarizers); i++) {
			if (strcmp(summarizers[i].type, c.type) == 0) {
				fn = summarizers[i].fn;
				break;
			}
		}
		fn(&s, &c);
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
