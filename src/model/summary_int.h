/* SPDX-License-Identifier: MIT */
/*
 * summary_int.h — what summary.c (the line builder, reading the payload,
 * naming objects, "what changed" clauses) shares with summary_types.c (one
 * sentence per action type). Private to src/model.
 *
 * Everything a summarizer reads is borrowed from the parsed document; every
 * string it writes goes through the sanitising builder, so a summarizer
 * cannot put a control character or an unbounded name into a line.
 */
#ifndef TH_SUMMARY_INT_H
#define TH_SUMMARY_INT_H

#include "model/model.h"

#define NAME_MAX_CHARS 100    /* code points of one inserted name */
#define COMMENT_MAX_CHARS 140 /* code points of the quoted comment line */

/* The bounded, sanitising line builder. */
typedef struct sb {
	buf b;
	bool failed; /* an append failed (out of memory or over the working bound) */
} sb;

void sb_lit(sb *s, const char *lit);
/* Append @text sanitised (see summary.c), at most @max_chars code points;
 * with @first_line stop at its first line break. */
void sb_text(sb *s, const char *text, size_t max_chars, bool first_line);

/* A value in the parsed document: the handle and its document (n == NULL: absent). */
typedef struct jv {
	jdoc *d;
	const jnode *n;
} jv;

jv get(jv obj, const char *key);
jv get_obj(jv obj, const char *key);
const char *get_str(jv obj, const char *key); /* non-empty string, else NULL */
bool has(jv obj, const char *key);            /* member present (any type) */

/* What a summarizer needs at hand. */
typedef struct ctx {
	jv root;          /* the whole payload (model, action, webhook) */
	jv action;        /* action */
	jv data;          /* action.data */
	jv old;           /* action.data.old: previous values of changed fields */
	jv entities;      /* action.display.entities */
	const char *type; /* action.type, never NULL inside a summarizer */
} ctx;

/* The name of the object at data.<key>: its name (fullName, displayName),
 * else the display entity <key>'s text, else any name the payload has for
 * its id. NULL when none. */
const char *name_of(const ctx *c, const char *key);
/* Any name the payload carries for the object with 24-hex id @id (data,
 * display entities, model, action.member...). NULL when none. */
const char *name_for_id(const ctx *c, const char *id);

void put_name(sb *s, const char *name);
void put_quoted(sb *s, const char *name);
/* The card at data.<key> ("card", "cardSource"): `"Name"`, else `card #42`,
 * else `card SHORTLINK`, else `a card`. */
void put_card_at(sb *s, const ctx *c, const char *key);
void put_card(sb *s, const ctx *c);
/* The name at data.<key> or @fallback. */
void put_named(sb *s, const ctx *c, const char *key, const char *fallback);
/* `<kind> <name>` for the object at data.<key>, else @fallback. */
void put_kind(sb *s, const ctx *c, const char *kind, const char *key, const char *fallback);
/* ` on <board>` when data.board has a name. */
void put_on_board(sb *s, const ctx *c);
/* `board <name>`, else "the board". */
void put_board(sb *s, const ctx *c);
/* `label <name>`, else `the <colour> label`, else `a label`. */
void put_label(sb *s, const ctx *c);
/* The member acted on (action.member, data.member, the display entity, a
 * name found for data.idMember), else "a member". */
void put_member(sb *s, const ctx *c);
/* Did the actor act on themselves (joined / left)? */
bool is_self(const ctx *c);
/* A date as "1 Dec 2026 17:00 UTC" when it parses, else as sent. */
void put_date(sb *s, const char *iso);

/* ---- what changed --------------------------------------------------------------- */

/* The object an update is about, for change clauses. */
typedef struct subject {
	const char *kind;     /* "list", "board"... NULL: a card (quoted, see put_card_at) */
	const char *card_key; /* for cards: data.<card_key> */
	const char *name;     /* the current name, or NULL */
	const char *fallback; /* when there is no name: "the board" */
	bool quoted;          /* names in quotes (cards, items) */
	jv now;               /* the object carrying the new values (data.card...) */
	const char *where;    /* list name for card moves within a list, or NULL */
} subject;

/* Write one clause per changed field of @old (its keys, "name" first) about
 * @subj, joined with ", " and " and "; the first clause names the subject,
 * later ones say "it"/"its". Returns the number of clauses written (0: none). */
int put_changes(sb *s, const ctx *c, const subject *subj, jv old);

/* The fallback for a type without a sentence of its own: what changed
 * (data.old) of the object it names, else the type's verb and object in
 * words, and where. Never "did TYPE". */
void s_generic(sb *s, const ctx *c);

/* ---- the per-type table (summary_types.c) ---------------------------------------- */

typedef void (*summarizer_fn)(sb *s, const ctx *c);
typedef void put_fn(sb *s, const ctx *c);

/* The sentence shapes that several types share; the table entry brings the
 * words (summary_types.c, where each shape says how it places them). */
typedef enum summary_shape {
	SHAPE_OWN,       /* the entry's @fn writes the sentence */
	SHAPE_SAY,       /* `<verb><what><prep><where>` */
	SHAPE_MEMBER_IN, /* `<verb> M<prep><where>`, or `<self> <where>` */
	SHAPE_ROLE,      /* `made M<prep><where>` */
	SHAPE_INVITE,    /* `<verb> M to <where><tail>` */
	SHAPE_POWER_UP,  /* `<verb> Power-Up P<prep><where>` */
} summary_shape;

typedef struct summarizer {
	const char *type;
	summarizer_fn fn; /* SHAPE_OWN only */
	summary_shape shape;
	const char *verb, *self, *prep, *tail; /* NULL: nothing */
	put_fn *what, *where;                  /* NULL: nothing */
} summarizer;

extern const summarizer summarizers[];
extern const size_t summarizers_len;

/* Write the sentence of table entry @e. */
void summarizer_run(sb *s, const ctx *c, const summarizer *e);

#endif
