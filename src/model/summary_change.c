/* SPDX-License-Identifier: MIT */
/*
 * summary_change.c — the "what changed" half of summaries: one clause per
 * field of action.data.old ("renamed "A" to "B"", "changed the due date of
 * "X" from 3 Jun 2026 09:00 UTC to 10 Jun 2026 09:00 UTC", "made board B
 * private"), joined into one sentence, and the fallback sentence for action
 * types nobody wrote a template for. Values come from the payload and go
 * through the sanitising builder like every other name.
 */
#include <string.h>

#include "model/summary_int.h"

#define MAX_CLAUSES 8 /* change clauses in one line */

/* ---- what changed ------------------------------------------------------------------ */

/* One changed field: data.old.<key> (or data.old.prefs.<key> when @pref). */
typedef struct change {
	const char *key;
	jv oldv;
	bool pref;
} change;

/* The subject of a clause: named in the first clause, "it" afterwards. */
static void put_subj(sb *s, const ctx *c, const subject *subj, bool first)
{
	if (!first) {
		sb_lit(s, "it");
	} else if (!subj->kind) {
		put_card_at(s, c, subj->card_key ? subj->card_key : "card");
	} else if (!subj->name) {
		sb_lit(s, subj->fallback ? subj->fallback : "something");
	} else {
		sb_lit(s, subj->kind);
		sb_lit(s, " ");
		if (subj->quoted)
			put_quoted(s, subj->name);
		else
			put_name(s, subj->name);
	}
}

/* ` from OLD` when both values are known, then ` to NOW` when @now is; each
 * value written by @put. */
static void put_from_to(sb *s, const char *old, const char *now,
                        void (*put)(sb *s, const char *value))
{
	if (now && old) {
		sb_lit(s, " from ");
		put(s, old);
	}
	if (now) {
		sb_lit(s, " to ");
		put(s, now);
	}
}

/* A colour name as Trello sends it, at most 20 characters. */
static void put_colour(sb *s, const char *colour)
{
	sb_text(s, colour, 20, false);
}

/* `the ATTR of SUBJECT`, or `its ATTR` after the first clause. */
static void put_attr(sb *s, const ctx *c, const subject *subj, bool first, const char *attr)
{
	sb_lit(s, first ? "the " : "its ");
	sb_lit(s, attr);
	if (first) {
		sb_lit(s, " of ");
		put_subj(s, c, subj, true);
	}
}

/* A name as the subject would show it (quoted for cards and items). */
static void put_subj_name(sb *s, const subject *subj, const char *name)
{
	if (subj->quoted || !subj->kind)
		put_quoted(s, name);
	else
		put_name(s, name);
}

/* A scalar value in words: a string (an id becomes the name the payload
 * has for it, or nothing), an integer, yes/no. NULL for null, objects,
 * arrays and ids without a name. @tmp holds numbers. */
static const char *value_text(const ctx *c, jv v, char *tmp, size_t tmpsz)
{
	long long n;
	if (jdoc_is_string(v.n)) {
		const char *s = jdoc_str(v.d, v.n);
		if (!s || !*s)
			return NULL;
		return str_is_trello_id(s) ? name_for_id(c, s) : s;
	}
	if (jdoc_int(v.d, v.n, &n) && str_printf(tmp, tmpsz, "%lld", n))
		return tmp;
	if (jdoc_is_true(v.n))
		return "yes";
	if (jdoc_is_false(v.n))
		return "no";
	return NULL;
}

/* "dueDate" -> "due date", "idLabels" -> "labels", "prefs_x" -> "prefs x",
 * into @out (ASCII letters and digits only, bounded). */
static void humanize(const char *key, char *out, size_t outsz)
{
	size_t o = 0;
	const char *p = key;
	if (p[0] == 'i' && p[1] == 'd' && p[2] >= 'A' && p[2] <= 'Z')
		p += 2;
	for (; *p && o + 2 < outsz; p++) {
		char ch = *p;
		if (ch >= 'A' && ch <= 'Z') {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			out[o++] = (char)(ch - 'A' + 'a');
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			out[o++] = ch;
		} else if (o > 0 && out[o - 1] != ' ') {
			out[o++] = ' ';
		}
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	if (o == 0)
		str_copy(out, outsz, "details");
}

static void clause_name(sb *s, const ctx *c, const subject *subj, bool first, jv oldv)
{
	const char *old = jdoc_str(oldv.d, oldv.n);
	const char *now = subj->name ? subj->name : get_str(subj->now, "name");
	if (!now) {
		/* Trello sends "" for a label whose name was removed */
		sb_lit(s, "removed the name ");
		if (old && *old) {
			put_quoted(s, old);
			sb_lit(s, " from ");
		} else {
			sb_lit(s, "of ");
		}
		put_subj(s, c, subj, first);
		return;
	}
	sb_lit(s, "renamed ");
	if (first && old && *old) {
		if (subj->kind) {
			sb_lit(s, subj->kind);
			sb_lit(s, " ");
		}
		put_subj_name(s, subj, old);
	} else {
		sb_lit(s, first ? (subj->kind ? subj->kind : "a card") : "it");
	}
	sb_lit(s, " to ");
	put_subj_name(s, subj, now);
}

static void clause_desc(sb *s, const ctx *c, const subject *subj, bool first, jv oldv)
{
	const char *old = jdoc_str(oldv.d, oldv.n);
	const char *now = get_str(subj->now, "desc");
	if (!old || !*old) {
		sb_lit(s, "added a description to ");
		put_subj(s, c, subj, first);
	} else if (!now && has(subj->now, "desc")) {
		sb_lit(s, "removed ");
		put_attr(s, c, subj, first, "description");
	} else {
		sb_lit(s, "changed ");
		put_attr(s, c, subj, first, "description");
	}
}

static void clause_closed(sb *s, const ctx *c, const subject *subj, bool first)
{
	bool board = str_eq(subj->kind, "board");
	bool reopened = jdoc_is_false(get(subj->now, "closed").n);
	sb_lit(s,
	       reopened ? (board ? "reopened " : "restored ") : (board ? "closed " : "archived "));
	put_subj(s, c, subj, first);
}

/* due, start: set, changed from -> to, removed. */
static void clause_date(sb *s, const ctx *c, const subject *subj, bool first, const char *key,
                        jv oldv)
{
	const char *attr = str_eq(key, "start") ? "start date" : "due date";
	const char *old = jdoc_str(oldv.d, oldv.n);
	const char *now = get_str(subj->now, key);
	if (old && !*old)
		old = NULL;
	sb_lit(s, now ? (old ? "changed " : "set ") : (old ? "removed " : "changed "));
	put_attr(s, c, subj, first, attr);
	put_from_to(s, old, now, put_date);
}

/* dueReminder: minutes before the due date; -1 or null is none. */
static void clause_reminder(sb *s, const ctx *c, const subject *subj, bool first)
{
	jv v = get(subj->now, "dueReminder");
	long long n = -1;
	char num[64];
	if (!jdoc_int(v.d, v.n, &n) || n < 0) {
		sb_lit(s, "removed ");
		put_attr(s, c, subj, first, "due reminder");
		return;
	}
	sb_lit(s, "set ");
	put_attr(s, c, subj, first, "due reminder");
	if (n == 0)
		str_copy(num, sizeof num, " to the due time");
	else if (n % 1440 == 0)
		str_printf(num, sizeof num, " to %lld day%s before", n / 1440,
		           n == 1440 ? "" : "s");
	else if (n % 60 == 0)
		str_printf(num, sizeof num, " to %lld hour%s before", n / 60, n == 60 ? "" : "s");
	else
		str_printf(num, sizeof num, " to %lld minute%s before", n, n == 1 ? "" : "s");
	sb_lit(s, num);
}

/* A card moving between lists: listBefore/listAfter, else the list ids. */
static void clause_move(sb *s, const ctx *c, const subject *subj, bool first, jv oldv)
{
	const char *from = name_of(c, "listBefore");
	const char *to = name_of(c, "listAfter");
	if (!from)
		from = name_for_id(c, jdoc_str(oldv.d, oldv.n));
	if (!to)
		to = name_for_id(c, get_str(subj->now, "idList"));
	sb_lit(s, "moved ");
	put_subj(s, c, subj, first);
	if (from) {
		sb_lit(s, " from ");
		put_name(s, from);
	}
	sb_lit(s, " to ");
	put_name(s, to ? to : "another list");
	if (first)
		put_on_board(s, c);
}

static void clause_cover(sb *s, const ctx *c, const subject *subj, bool first, const char *key)
{
	jv now = get(subj->now, key);
	if (str_eq(key, "idAttachmentCover") && now.n) {
		const char *id = jdoc_str(now.d, now.n);
		sb_lit(s, id && *id ? "set " : "removed ");
		put_attr(s, c, subj, first, "cover");
		const char *name = id && *id ? name_for_id(c, id) : NULL;
		if (name) {
			sb_lit(s, " to ");
			put_name(s, name);
		}
		return;
	}
	if (!jdoc_is_object(now.n)) { /* the new value is not in the payload */
		sb_lit(s, "changed ");
		put_attr(s, c, subj, first, "cover");
		return;
	}
	const char *color = get_str(now, "color");
	bool image = get_str(now, "idAttachment") || get_str(now, "idUploadedBackground") ||
	             get_str(now, "idPlugin");
	sb_lit(s, color || image ? "set " : "removed ");
	put_attr(s, c, subj, first, "cover");
	if (color) {
		sb_lit(s, " to ");
		sb_text(s, color, 20, false);
	}
}

static void clause_color(sb *s, const ctx *c, const subject *subj, bool first, jv oldv)
{
	const char *old = jdoc_str(oldv.d, oldv.n);
	const char *now = get_str(subj->now, "color");
	sb_lit(s, now ? "changed " : "removed ");
	put_attr(s, c, subj, first, "colour");
	put_from_to(s, old && *old ? old : NULL, now, put_colour);
}

/* One of a board's prefs: background, visibility, or any other setting. */
static void clause_pref(sb *s, const ctx *c, const subject *subj, bool first, const char *key)
{
	jv now = get(get_obj(subj->now, "prefs"), key);
	char tmp[32], words[64];
	const char *v = value_text(c, now, tmp, sizeof tmp);
	if (str_eq(key, "permissionLevel") && v) {
		static const char *const levels[][2] = {
		    {"private", "private"},
		    {"public", "public"},
		    {"org", "visible to its workspace"},
		    {"enterprise", "visible to its enterprise"}};
		for (size_t i = 0; i < TH_ARRAY_LEN(levels); i++) {
			if (str_eq(v, levels[i][0])) {
				sb_lit(s, "made ");
				put_subj(s, c, subj, first);
				sb_lit(s, " ");
				sb_lit(s, levels[i][1]);
				return;
			}
		}
	}
	if (str_eq(key, "background")) {
		str_copy(words, sizeof words, "background");
	} else {
		humanize(key, words, sizeof words);
		if (strlen(words) + sizeof " setting" <= sizeof words)
			memcpy(words + strlen(words), " setting", sizeof " setting");
	}
	sb_lit(s, "changed ");
	put_attr(s, c, subj, first, words);
	if (v) {
		sb_lit(s, " to ");
		put_name(s, str_eq(v, "yes") ? "on" : str_eq(v, "no") ? "off" : v);
	}
}

/* Any other field: `changed the FIELD of SUBJECT [from OLD] [to NEW]`. */
static void clause_other(sb *s, const ctx *c, const subject *subj, bool first, const char *key,
                         jv oldv)
{
	char words[64], t1[32], t2[32];
	humanize(key, words, sizeof words);
	const char *old = value_text(c, oldv, t1, sizeof t1);
	const char *now = value_text(c, get(subj->now, key), t2, sizeof t2);
	sb_lit(s, "changed ");
	put_attr(s, c, subj, first, words);
	put_from_to(s, old, now, put_name);
}

static void put_clause(sb *s, const ctx *c, const subject *subj, bool first, const change *ch)
{
	const char *k = ch->key;
	if (ch->pref)
		clause_pref(s, c, subj, first, k);
	else if (str_eq(k, "name"))
		clause_name(s, c, subj, first, ch->oldv);
	else if (str_eq(k, "desc"))
		clause_desc(s, c, subj, first, ch->oldv);
	else if (str_eq(k, "closed"))
		clause_closed(s, c, subj, first);
	else if (str_eq(k, "due") || str_eq(k, "start"))
		clause_date(s, c, subj, first, k, ch->oldv);
	else if (str_eq(k, "dueReminder"))
		clause_reminder(s, c, subj, first);
	else if (str_eq(k, "dueComplete")) {
		sb_lit(s, "marked ");
		put_attr(s, c, subj, first, "due date");
		sb_lit(s,
		       jdoc_is_true(get(subj->now, "dueComplete").n) ? " complete" : " incomplete");
	} else if (str_eq(k, "idList") && !subj->kind)
		clause_move(s, c, subj, first, ch->oldv);
	else if (str_eq(k, "pos")) {
		sb_lit(s, "moved ");
		put_subj(s, c, subj, first);
		if (subj->where) {
			sb_lit(s, " within ");
			put_name(s, subj->where);
		}
	} else if (str_eq(k, "idAttachmentCover") || str_eq(k, "cover"))
		clause_cover(s, c, subj, first, k);
	else if (str_eq(k, "color"))
		clause_color(s, c, subj, first, ch->oldv);
	else
		clause_other(s, c, subj, first, k, ch->oldv);
}

/* Collect the changes of @old into @out (name first, prefs expanded, a
 * list move without old.idList added). Returns how many, at most @max;
 * *more is set when some were left out. */
static size_t collect_changes(const ctx *c, const subject *subj, jv old, change *out, size_t max,
                              bool *more)
{
	size_t n = 0;
	*more = false;
	if (has(old, "name") && n < max)
		out[n++] = (change){"name", get(old, "name"), false};
	jdoc_iter it;
	const jnode *key, *val;
	bool saw_list = false;
	jdoc_iter_init(&it, old.d, old.n);
	while (old.n && jdoc_is_object(old.n) && jdoc_iter_next(&it, &key, &val)) {
		const char *k = jdoc_str(old.d, key);
		jv v = {old.d, val};
		if (!k || str_eq(k, "name"))
			continue;
		saw_list = saw_list || str_eq(k, "idList");
		if (str_eq(k, "prefs") && jdoc_is_object(val)) {
			jdoc_iter pit;
			const jnode *pk, *pv;
			jdoc_iter_init(&pit, old.d, val);
			while (jdoc_iter_next(&pit, &pk, &pv)) {
				const char *p = jdoc_str(old.d, pk);
				if (!p)
					continue;
				if (n == max) {
					*more = true;
					break;
				}
				out[n++] = (change){p, (jv){old.d, pv}, true};
			}
			continue;
		}
		if (n == max) {
			*more = true;
			break;
		}
		out[n++] = (change){k, v, false};
	}
	if (!subj->kind && !saw_list && get_obj(c->data, "listAfter").n) {
		if (n < max)
			out[n++] = (change){"idList", (jv){c->data.d, NULL}, false};
		else
			*more = true;
	}
	return n;
}

/* See summary_int.h. */
int put_changes(sb *s, const ctx *c, const subject *subj, jv old)
{
	change ch[MAX_CLAUSES];
	bool more;
	size_t n = collect_changes(c, subj, old, ch, MAX_CLAUSES, &more);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			sb_lit(s, i + 1 == n && !more ? " and " : ", ");
		put_clause(s, c, subj, i == 0, &ch[i]);
	}
	if (more && n > 0)
		sb_lit(s, " and more");
	return (int)n;
}

/* ---- types without a sentence of their own ---------------------------------------- */

/* The object an unknown action is most likely about, for its changes: the
 * one its type names (updateSticker: data.sticker), else the card, else
 * the first named kind of object in data. */
static subject generic_subject(const ctx *c, const char *noun, char *kind, size_t kindsz)
{
	static const struct {
		const char *key, *kind, *fallback;
	} kinds[] = {{"checkItem", "checklist item", "a checklist item"},
	             {"checklist", "checklist", "a checklist"},
	             {"label", "label", "a label"},
	             {"customField", "custom field", "a custom field"},
	             {"list", "list", "a list"},
	             {"board", "board", "the board"},
	             {"organization", "workspace", "the workspace"},
	             {"member", "member", "a member"}};
	subject subj = {.kind = NULL, .card_key = "card", .now = get_obj(c->data, "card")};
	jv named = noun ? get_obj(c->data, noun) : (jv){c->data.d, NULL};
	if (named.n && !str_eq(noun, "card")) {
		/* "the sticker" in @kind; the kind alone is its tail */
		str_copy(kind, kindsz, "the ");
		humanize(noun, kind + 4, kindsz - 4);
		subj.kind = kind + 4;
		subj.name = name_of(c, noun);
		subj.fallback = kind;
		subj.now = named;
		return subj;
	}
	if (subj.now.n)
		return subj;
	for (size_t i = 0; i < TH_ARRAY_LEN(kinds); i++) {
		jv o = get_obj(c->data, kinds[i].key);
		if (o.n) {
			subj.kind = kinds[i].kind;
			subj.fallback = kinds[i].fallback;
			subj.name = name_of(c, kinds[i].key);
			subj.now = o;
			return subj;
		}
	}
	subj.kind = "board";
	subj.fallback = "something";
	return subj;
}

/* The noun of an action type, as a data key: "updateSticker" -> "sticker",
 * "addStickerToCard" -> "sticker". Into @out; NULL when there is none. */
static const char *type_noun(const char *t, char *out, size_t outsz)
{
	size_t i = 0, o = 0;
	while (t[i] >= 'a' && t[i] <= 'z')
		i++;
	if (!(t[i] >= 'A' && t[i] <= 'Z'))
		return NULL;
	out[o++] = (char)(t[i++] - 'A' + 'a');
	while (o + 1 < outsz && ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z'))) {
		if (t[i] >= 'A' && t[i] <= 'Z' && str_starts(t + i, "To") == false &&
		    str_starts(t + i, "From") == false && str_starts(t + i, "On") == false)
			out[o++] = t[i++];
		else if (t[i] >= 'a' && t[i] <= 'z')
			out[o++] = t[i++];
		else
			break;
	}
	out[o] = '\0';
	return out;
}

/* The past tense of an action type's first word, or NULL. */
static const char *past_tense(const char *verb, size_t len)
{
	static const char *const verbs[][2] = {
	    {"accept", "accepted"},   {"add", "added"},       {"archive", "archived"},
	    {"attach", "attached"},   {"change", "changed"},  {"close", "closed"},
	    {"convert", "converted"}, {"copy", "copied"},     {"create", "created"},
	    {"decline", "declined"},  {"delete", "deleted"},  {"disable", "disabled"},
	    {"email", "e-mailed"},    {"enable", "enabled"},  {"invite", "invited"},
	    {"join", "joined"},       {"leave", "left"},      {"make", "made"},
	    {"mark", "marked"},       {"move", "moved"},      {"remove", "removed"},
	    {"rename", "renamed"},    {"reopen", "reopened"}, {"restore", "restored"},
	    {"set", "set"},           {"update", "updated"},  {"upload", "uploaded"},
	    {"vote", "voted"}};
	for (size_t i = 0; i < TH_ARRAY_LEN(verbs); i++)
		if (strlen(verbs[i][0]) == len && memcmp(verbs[i][0], verb, len) == 0)
			return verbs[i][1];
	return NULL;
}

/* Where an unknown action happened: on the card, the list, the board. */
static void put_generic_where(sb *s, const ctx *c)
{
	if (get_obj(c->data, "card").n || get_obj(c->entities, "card").n) {
		sb_lit(s, " on ");
		put_card(s, c);
	} else if (name_of(c, "list")) {
		sb_lit(s, " on list ");
		put_named(s, c, "list", "a list");
		put_on_board(s, c);
	} else {
		put_on_board(s, c);
	}
}

/* See summary_int.h: `changed the top of sticker from 40 to 10 on "Y"`,
 * else `added sticker to "Y"` (the type in words, its last word replaced
 * by the object it names), else `made a change (someType) on "Y"`. */
void s_generic(sb *s, const ctx *c)
{
	char noun[48], kind[64], rest[64];
	const char *t = c->type;
	subject subj = generic_subject(c, type_noun(t, noun, sizeof noun), kind, sizeof kind);
	if (jdoc_is_object(c->old.n) && put_changes(s, c, &subj, c->old) > 0) {
		if (subj.kind)
			put_generic_where(s, c);
		return;
	}
	size_t vlen = 0;
	while (t[vlen] >= 'a' && t[vlen] <= 'z')
		vlen++;
	const char *past = past_tense(t, vlen);
	if (!past || !t[vlen]) {
		sb_lit(s, "made a change (");
		sb_text(s, t, 64, false);
		sb_lit(s, ")");
		put_generic_where(s, c);
		return;
	}
	humanize(t + vlen, rest, sizeof rest);
	sb_lit(s, past);
	sb_lit(s, " ");
	/* "sticker to card" + a card the payload names: "sticker to "Ship it"" */
	size_t n = strlen(rest);
	if (n > 5 && str_ends(rest, " card") && get_obj(c->data, "card").n) {
		rest[n - 4] = '\0';
		sb_lit(s, rest);
		put_card(s, c);
		return;
	}
	sb_lit(s, rest);
	put_generic_where(s, c);
}
