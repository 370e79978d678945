/* SPDX-License-Identifier: MIT */
/*
 * summary_types.c — one sentence per Trello action type (the actor's name
 * and a space come first, from summary.c). The shapes read here are those
 * of real deliveries (the shared API notes, "Payload shapes that real
 * deliveries have"): the member acted on is action.member, copies carry
 * data.cardSource / checklistSource / boardSource, update* actions carry the
 * previous values in data.old. docs/actions.md lists every type with the
 * sentence its sample payload gets; test_model.c checks the two agree.
 */
#include <string.h>

#include "model/summary_int.h"

/* ---- shared sentence shapes --------------------------------------------------------- */

/* `<verb><what><prep><where>`: one thing done to, or in, another (@prep may
 * be NULL when @where brings its own, as put_on_board() does; @what and
 * @where may be NULL when the verb says it all). */
static void say(sb *s, const ctx *c, const char *verb, put_fn *what, const char *prep,
                put_fn *where)
{
	sb_lit(s, verb);
	if (what)
		what(s, c);
	sb_lit(s, prep);
	if (where)
		where(s, c);
}

/* update<Thing> of a thing named at data.<key>: what changed (data.old
 * against data.<key>), else `updated <kind> <name>` (or @fallback). */
static void updated_kind(sb *s, const ctx *c, const char *kind, const char *key,
                         const char *fallback)
{
	subject subj = {.kind = kind,
	                .name = name_of(c, key),
	                .fallback = fallback,
	                .now = get_obj(c->data, key)};
	if (put_changes(s, c, &subj, c->old) == 0) {
		sb_lit(s, "updated ");
		put_kind(s, c, kind, key, fallback);
	}
}

/* move<Thing>{To,From}Board: `moved <what> from <from> to <to>`, the boards
 * named at data.<from_key> and data.<to_key> (or the fallbacks). Without a
 * @from_fallback, ` from …` is left out when data.<from_key> names none. */
static void moved_between(sb *s, const ctx *c, put_fn *what, const char *from_key,
                          const char *from_fallback, const char *to_key, const char *to_fallback)
{
	sb_lit(s, "moved ");
	what(s, c);
	if (from_fallback || name_of(c, from_key)) {
		sb_lit(s, " from ");
		put_named(s, c, from_key, from_fallback);
	}
	sb_lit(s, " to ");
	put_named(s, c, to_key, to_fallback);
}

/* `<prep><card>` when the action names a card, else put_on_board()'s ` on <board>`. */
static void put_on_card_or_board(sb *s, const ctx *c, const char *prep)
{
	if (get_obj(c->data, "card").n) {
		sb_lit(s, prep);
		put_card(s, c);
	} else {
		put_on_board(s, c);
	}
}

/* ---- cards ---------------------------------------------------------------------- */

/* ` in <list>` when the action names a list. */
static void put_in_list(sb *s, const ctx *c)
{
	const char *list = name_of(c, "list");
	if (list) {
		sb_lit(s, " in ");
		put_name(s, list);
	}
}

static void s_create_card(sb *s, const ctx *c)
{
	sb_lit(s, "created ");
	put_card(s, c);
	put_in_list(s, c);
	put_on_board(s, c);
}

/* emailCard: a card created by e-mail to the board's address. */
static void s_email_card(sb *s, const ctx *c)
{
	s_create_card(s, c);
	sb_lit(s, " by e-mail");
}

/* The card data.cardSource names: by name, or by its number when the copy
 * at data.card has the same name (a copy usually keeps it). */
static void put_source_card(sb *s, const ctx *c)
{
	jv src = get_obj(c->data, "cardSource");
	jv idshort = get(src, "idShort");
	long long n;
	char num[32];
	if (!src.n) {
		sb_lit(s, "another card");
	} else if (str_eq(name_of(c, "cardSource"), name_of(c, "card")) &&
	           jdoc_int(idshort.d, idshort.n, &n) && n >= 0 &&
	           str_printf(num, sizeof num, "card #%lld", n)) {
		sb_lit(s, num);
	} else {
		put_card_at(s, c, "cardSource");
	}
}

/* copyCard: data.card is the copy, data.cardSource the original. */
static void s_copy_card(sb *s, const ctx *c)
{
	sb_lit(s, "copied ");
	put_card(s, c);
	sb_lit(s, " from ");
	put_source_card(s, c);
	put_in_list(s, c);
	put_on_board(s, c);
}

/* convertToCardFromCheckItem: data.card is the new card, cardSource the
 * card whose checklist item it was. */
static void s_convert_check_item(sb *s, const ctx *c)
{
	sb_lit(s, "converted checklist item ");
	put_card(s, c);
	const char *cl = name_of(c, "checklist");
	if (get_obj(c->data, "cardSource").n || cl) {
		sb_lit(s, " of ");
		if (get_obj(c->data, "cardSource").n)
			put_card_at(s, c, "cardSource");
		else
			put_kind(s, c, "checklist", "checklist", "a checklist");
	}
	sb_lit(s, " into a card");
	put_in_list(s, c);
}

static void s_update_card(sb *s, const ctx *c)
{
	subject subj = {
	    .card_key = "card", .now = get_obj(c->data, "card"), .where = name_of(c, "list")};
	if (put_changes(s, c, &subj, c->old) == 0) {
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

/* `: <first line of @text>` when there is one. */
static void put_text(sb *s, const char *text)
{
	if (text) {
		sb_lit(s, ": ");
		sb_text(s, text, COMMENT_MAX_CHARS, true);
	}
}

static void s_comment_card(sb *s, const ctx *c)
{
	sb_lit(s, "commented on ");
	put_card(s, c);
	put_text(s, get_str(c->data, "text"));
}

/* copyCommentCard: a comment carried over when a card was copied. */
static void s_copy_comment(sb *s, const ctx *c)
{
	sb_lit(s, "copied a comment");
	if (get_obj(c->data, "cardSource").n) {
		sb_lit(s, " from ");
		put_source_card(s, c);
	}
	sb_lit(s, " to ");
	put_card(s, c);
	put_text(s, get_str(c->data, "text"));
}

static void s_update_comment(sb *s, const ctx *c)
{
	sb_lit(s, "edited a comment on ");
	put_card(s, c);
	put_text(s, get_str(get_obj(c->data, "action"), "text"));
}

static void s_vote_on_card(sb *s, const ctx *c)
{
	sb_lit(s,
	       jdoc_is_false(get(c->data, "voted").n) ? "removed their vote from " : "voted for ");
	put_card(s, c);
}

/* moveCardToBoard: data.board is where the card went, boardSource where
 * it came from. */
static void s_move_card_to_board(sb *s, const ctx *c)
{
	moved_between(s, c, put_card, "boardSource", NULL, "board", "this board");
}

/* moveCardFromBoard: data.board is where the card was, boardTarget where
 * it went. */
static void s_move_card_from_board(sb *s, const ctx *c)
{
	moved_between(s, c, put_card, "board", "this board", "boardTarget", "another board");
}

/* ---- members -------------------------------------------------------------------- */

/* `added M to <where>`, or `joined <where>` when the actor added themselves. */
static void member_in(sb *s, const ctx *c, const char *verb, const char *self, const char *prep,
                      put_fn *where)
{
	if (is_self(c)) {
		sb_lit(s, self);
		sb_lit(s, " ");
	} else {
		sb_lit(s, verb);
		sb_lit(s, " ");
		put_member(s, c);
		sb_lit(s, prep);
	}
	where(s, c);
}

static void put_org(sb *s, const ctx *c)
{
	put_kind(s, c, "workspace", "organization", "the workspace");
}

static void put_enterprise(sb *s, const ctx *c)
{
	put_kind(s, c, "enterprise", "enterprise", "the enterprise");
}

/* removeMemberFromBoard also says whether the member was deactivated. */
static void s_remove_member_from_board(sb *s, const ctx *c)
{
	if (!is_self(c) && jdoc_is_true(get(c->data, "deactivated").n)) {
		sb_lit(s, "deactivated ");
		put_member(s, c);
		sb_lit(s, " on ");
		put_board(s, c);
		return;
	}
	member_in(s, c, "removed", "left", " from ", put_board);
}

/* makeAdminOf*, makeNormalMemberOf*, makeObserverOf*: `made M <role> of <where>`. */
static void make_role(sb *s, const ctx *c, const char *role, put_fn *where)
{
	sb_lit(s, "made ");
	if (is_self(c))
		sb_lit(s, "themselves");
	else
		put_member(s, c);
	sb_lit(s, role);
	where(s, c);
}

/* Invitations: the invitee is action.member (or data.memberInvited / an
 * e-mail address that Trello does not always send). */
static void invite(sb *s, const ctx *c, const char *verb, const char *tail, put_fn *where)
{
	sb_lit(s, verb);
	sb_lit(s, " ");
	if (get_obj(c->action, "member").n || get_obj(c->data, "member").n ||
	    get_obj(c->entities, "member").n || get_str(c->data, "idMember"))
		put_member(s, c);
	else
		sb_lit(s, "someone");
	sb_lit(s, " to ");
	where(s, c);
	sb_lit(s, tail);
}

/* updateMember: the actor changed their own profile (data.old). */
static void s_update_member(sb *s, const ctx *c)
{
	jv member = get_obj(c->data, "member");
	subject subj = {.kind = "their profile", .fallback = "their profile", .now = member};
	const char *old = get_str(c->old, "fullName");
	const char *now = get_str(member, "fullName");
	if (old && now) {
		sb_lit(s, "changed their name from ");
		put_name(s, old);
		sb_lit(s, " to ");
		put_name(s, now);
		return;
	}
	if (put_changes(s, c, &subj, c->old) == 0)
		sb_lit(s, "updated their profile");
}

/* ---- attachments, labels, checklists ---------------------------------------------- */

static void s_add_attachment(sb *s, const ctx *c)
{
	sb_lit(s, "attached ");
	put_named(s, c, "attachment", "a file");
	sb_lit(s, " to ");
	put_card(s, c);
}

static void s_delete_attachment(sb *s, const ctx *c)
{
	sb_lit(s, "removed ");
	put_kind(s, c, "attachment", "attachment", "an attachment");
	sb_lit(s, " from ");
	put_card(s, c);
}

/* updateLabel: the label as it is now, the changed fields in data.old. */
static void s_update_label(sb *s, const ctx *c)
{
	jv label = get_obj(c->data, "label");
	const char *color = get_str(label, "color");
	char fallback[64];
	if (!color || !str_printf(fallback, sizeof fallback, "the %.20s label", color))
		str_copy(fallback, sizeof fallback, "a label");
	subject subj = {
	    .kind = "label", .name = get_str(label, "name"), .fallback = fallback, .now = label};
	if (put_changes(s, c, &subj, c->old) == 0) {
		sb_lit(s, "updated ");
		put_label(s, c);
	}
	put_on_board(s, c);
}

static void put_checklist(sb *s, const ctx *c)
{
	put_kind(s, c, "checklist", "checklist", "a checklist");
}

static void s_create_checklist(sb *s, const ctx *c)
{
	sb_lit(s, "created ");
	put_checklist(s, c);
	put_on_card_or_board(s, c, " on ");
}

/* copyChecklist: data.checklist is the copy, checklistSource the original. */
static void s_copy_checklist(sb *s, const ctx *c)
{
	sb_lit(s, "copied ");
	put_checklist(s, c);
	const char *src = name_of(c, "checklistSource");
	sb_lit(s, " from ");
	if (src && !str_eq(src, name_of(c, "checklist")))
		put_kind(s, c, "checklist", "checklistSource", "another checklist");
	else
		sb_lit(s, "another checklist");
	put_on_card_or_board(s, c, " to ");
}

/* updateChecklist: data.checklist as it is now, data.old the changes. */
static void s_update_checklist(sb *s, const ctx *c)
{
	updated_kind(s, c, "checklist", "checklist", "a checklist");
	if (get_obj(c->data, "card").n) {
		sb_lit(s, " on ");
		put_card(s, c);
	}
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

/* updateCheckItem: renamed, given a due date, assigned... (data.old). */
static void s_update_check_item(sb *s, const ctx *c)
{
	subject subj = {.kind = "checklist item",
	                .name = check_item_name(c),
	                .fallback = "a checklist item",
	                .quoted = true,
	                .now = get_obj(c->data, "checkItem")};
	if (put_changes(s, c, &subj, c->old) == 0) {
		sb_lit(s, "updated checklist item ");
		put_check_item(s, c);
	}
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

/* ---- custom fields ---------------------------------------------------------------- */

/* updateCustomFieldItem: data.customField {name, type},
 * data.customFieldItem.value {text|number|date|checked} or .idValue (a
 * dropdown option, whose text the payload does not carry). */
static void s_update_custom_field_item(sb *s, const ctx *c)
{
	jv item = get_obj(c->data, "customFieldItem");
	jv value = get_obj(item, "value");
	const char *field = name_of(c, "customField");
	const char *text = get_str(value, "text");
	const char *number = get_str(value, "number");
	const char *date = get_str(value, "date");
	const char *checked = get_str(value, "checked");
	if (!field)
		field = "a custom field";

	if (!value.n && !get_str(item, "idValue")) {
		sb_lit(s, "cleared ");
		put_name(s, field);
	} else if (checked) {
		sb_lit(s, str_eq(checked, "true") ? "checked " : "unchecked ");
		put_name(s, field);
	} else {
		sb_lit(s, text || number || date ? "set " : "changed ");
		put_name(s, field);
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

static void put_custom_field(sb *s, const ctx *c)
{
	put_kind(s, c, "custom field", "customField", "a custom field");
}

static void s_update_custom_field(sb *s, const ctx *c)
{
	updated_kind(s, c, "custom field", "customField", "a custom field");
	put_on_board(s, c);
}

/* ---- lists ---------------------------------------------------------------------- */

static void put_list(sb *s, const ctx *c)
{
	put_kind(s, c, "list", "list", "a list");
}

static void s_update_list(sb *s, const ctx *c)
{
	updated_kind(s, c, "list", "list", "a list");
	put_on_board(s, c);
}

/* moveListFromBoard: data.board is where the list was, boardTarget where
 * it went; moveListToBoard: data.board is where it went, boardSource where
 * it came from. */
static void s_move_list_from_board(sb *s, const ctx *c)
{
	moved_between(s, c, put_list, "board", "this board", "boardTarget", "another board");
}

static void s_move_list_to_board(sb *s, const ctx *c)
{
	moved_between(s, c, put_list, "boardSource", "another board", "board", "this board");
}

/* ---- boards ---------------------------------------------------------------------- */

static void s_create_board(sb *s, const ctx *c)
{
	sb_lit(s, "created ");
	put_board(s, c);
	if (name_of(c, "organization")) {
		sb_lit(s, " in ");
		put_org(s, c);
	}
}

static void s_copy_board(sb *s, const ctx *c)
{
	sb_lit(s, "copied ");
	put_board(s, c);
	sb_lit(s, " from ");
	put_kind(s, c, "board", "boardSource", "another board");
}

static void s_update_board(sb *s, const ctx *c)
{
	if (has(c->old, "idOrganization") && !has(c->old, "name") && name_of(c, "organization")) {
		say(s, c, "moved ", put_board, " to ", put_org);
		return;
	}
	updated_kind(s, c, "board", "board", "the board");
}

/* createBoardPreference: a per-board preference such as the sidebar. */
static void s_create_board_preference(sb *s, const ctx *c)
{
	char tmp[64] = "a preference";
	const char *pref = get_str(c->data, "pref");
	if (!pref)
		pref = get_str(get_obj(c->data, "pref"), "name");
	sb_lit(s, "set ");
	if (pref)
		put_name(s, pref);
	else
		sb_lit(s, tmp);
	sb_lit(s, " on ");
	put_board(s, c);
}

/* Power-Ups (plugins): data.plugin.name, else data.value (the old ids). */
static void power_up(sb *s, const ctx *c, const char *verb, const char *prep, put_fn *where)
{
	sb_lit(s, verb);
	sb_lit(s, " Power-Up ");
	const char *name = name_of(c, "plugin");
	if (!name)
		name = get_str(c->data, "value");
	put_name(s, name ? name : "(unnamed)");
	sb_lit(s, prep);
	where(s, c);
}

/* ---- workspaces (organizations) and enterprises --------------------------------------- */

static void s_update_org(sb *s, const ctx *c)
{
	jv org = get_obj(c->data, "organization");
	const char *old = get_str(c->old, "displayName");
	const char *now = get_str(org, "displayName");
	if (!now)
		now = get_str(org, "name");
	if (old && now) {
		sb_lit(s, "renamed workspace ");
		put_name(s, old);
		sb_lit(s, " to ");
		put_name(s, now);
		return;
	}
	updated_kind(s, c, "workspace", "organization", "the workspace");
}

/* ---- the table --------------------------------------------------------------------- */

/* See summary_int.h. */
void summarizer_run(sb *s, const ctx *c, const summarizer *e)
{
	switch (e->shape) {
	case SHAPE_OWN: e->fn(s, c); break;
	case SHAPE_SAY: say(s, c, e->verb, e->what, e->prep, e->where); break;
	case SHAPE_MEMBER_IN: member_in(s, c, e->verb, e->self, e->prep, e->where); break;
	case SHAPE_ROLE: make_role(s, c, e->prep, e->where); break;
	case SHAPE_INVITE: invite(s, c, e->verb, e->tail, e->where); break;
	case SHAPE_POWER_UP: power_up(s, c, e->verb, e->prep, e->where); break;
	}
}

/* A table entry of each shape, with its words in the order they are said. */
#define OWN(type_, fn_)                      \
	{                                    \
		.type = (type_), .fn = (fn_) \
	}
#define SAY(type_, verb_, what_, prep_, where_)                                        \
	{                                                                              \
		.type = (type_), .shape = SHAPE_SAY, .verb = (verb_), .what = (what_), \
		.prep = (prep_), .where = (where_)                                     \
	}
#define MEMBER_IN(type_, verb_, self_, prep_, where_)                                        \
	{                                                                                    \
		.type = (type_), .shape = SHAPE_MEMBER_IN, .verb = (verb_), .self = (self_), \
		.prep = (prep_), .where = (where_)                                           \
	}
#define ROLE(type_, role, where_)                                                       \
	{                                                                               \
		.type = (type_), .shape = SHAPE_ROLE, .prep = (role), .where = (where_) \
	}
#define INVITE(type_, verb_, tail_, where_)                                               \
	{                                                                                 \
		.type = (type_), .shape = SHAPE_INVITE, .verb = (verb_), .tail = (tail_), \
		.where = (where_)                                                         \
	}
#define POWER_UP(type_, verb_, prep_, where_)                                               \
	{                                                                                   \
		.type = (type_), .shape = SHAPE_POWER_UP, .verb = (verb_), .prep = (prep_), \
		.where = (where_)                                                           \
	}

/* Every action type Trello documents, in the order of docs/actions.md. */
const summarizer summarizers[] = {
    /* cards */
    OWN("createCard", s_create_card),
    OWN("copyCard", s_copy_card),
    OWN("emailCard", s_email_card),
    OWN("convertToCardFromCheckItem", s_convert_check_item),
    OWN("updateCard", s_update_card),
    OWN("deleteCard", s_delete_card),
    OWN("moveCardToBoard", s_move_card_to_board),
    OWN("moveCardFromBoard", s_move_card_from_board),
    OWN("commentCard", s_comment_card),
    OWN("copyCommentCard", s_copy_comment),
    OWN("updateComment", s_update_comment),
    SAY("deleteComment", "deleted a comment on ", put_card, NULL, NULL),
    OWN("voteOnCard", s_vote_on_card),
    MEMBER_IN("addMemberToCard", "added", "joined", " to ", put_card),
    MEMBER_IN("removeMemberFromCard", "removed", "left", " from ", put_card),
    SAY("addLabelToCard", "added ", put_label, " to ", put_card),
    SAY("removeLabelFromCard", "removed ", put_label, " from ", put_card),
    OWN("addAttachmentToCard", s_add_attachment),
    OWN("deleteAttachmentFromCard", s_delete_attachment),
    /* checklists */
    SAY("addChecklistToCard", "added ", put_checklist, " to ", put_card),
    OWN("createChecklist", s_create_checklist),
    SAY("removeChecklistFromCard", "removed ", put_checklist, " from ", put_card),
    OWN("copyChecklist", s_copy_checklist),
    OWN("updateChecklist", s_update_checklist),
    OWN("createCheckItem", s_create_check_item),
    OWN("updateCheckItem", s_update_check_item),
    OWN("updateCheckItemStateOnCard", s_check_item_state),
    SAY("deleteCheckItem", "deleted checklist item ", put_check_item, " from ", put_card),
    /* custom fields */
    SAY("createCustomField", "created ", put_custom_field, NULL, put_on_board),
    OWN("updateCustomField", s_update_custom_field),
    SAY("deleteCustomField", "deleted ", put_custom_field, NULL, put_on_board),
    OWN("updateCustomFieldItem", s_update_custom_field_item),
    /* lists */
    SAY("createList", "created ", put_list, NULL, put_on_board),
    OWN("updateList", s_update_list),
    OWN("moveListFromBoard", s_move_list_from_board),
    OWN("moveListToBoard", s_move_list_to_board),
    /* labels */
    SAY("createLabel", "created ", put_label, NULL, put_on_board),
    OWN("updateLabel", s_update_label),
    SAY("deleteLabel", "deleted ", put_label, NULL, put_on_board),
    /* boards */
    OWN("createBoard", s_create_board),
    OWN("copyBoard", s_copy_board),
    OWN("updateBoard", s_update_board),
    MEMBER_IN("addMemberToBoard", "added", "joined", " to ", put_board),
    OWN("removeMemberFromBoard", s_remove_member_from_board),
    ROLE("makeAdminOfBoard", " an admin of ", put_board),
    ROLE("makeNormalMemberOfBoard", " a normal member of ", put_board),
    ROLE("makeObserverOfBoard", " an observer of ", put_board),
    INVITE("createBoardInvitation", "invited", "", put_board),
    INVITE("deleteBoardInvitation", "withdrew the invitation of", "", put_board),
    INVITE("unconfirmedBoardInvitation", "invited", " (not yet confirmed)", put_board),
    OWN("createBoardPreference", s_create_board_preference),
    SAY("addToOrganizationBoard", "added ", put_board, " to ", put_org),
    SAY("removeFromOrganizationBoard", "removed ", put_board, " from ", put_org),
    POWER_UP("enablePlugin", "enabled", " on ", put_board),
    POWER_UP("disablePlugin", "disabled", " on ", put_board),
    POWER_UP("enablePowerUp", "enabled", " on ", put_board),
    POWER_UP("disablePowerUp", "disabled", " on ", put_board),
    /* members */
    SAY("memberJoinedTrello", "joined Trello", NULL, NULL, NULL),
    OWN("updateMember", s_update_member),
    /* workspaces and enterprises */
    SAY("createOrganization", "created ", put_org, NULL, NULL),
    OWN("updateOrganization", s_update_org),
    MEMBER_IN("addMemberToOrganization", "added", "joined", " to ", put_org),
    MEMBER_IN("removeMemberFromOrganization", "removed", "left", " from ", put_org),
    ROLE("makeAdminOfOrganization", " an admin of ", put_org),
    ROLE("makeNormalMemberOfOrganization", " a normal member of ", put_org),
    INVITE("createOrganizationInvitation", "invited", "", put_org),
    INVITE("deleteOrganizationInvitation", "withdrew the invitation of", "", put_org),
    INVITE("unconfirmedOrganizationInvitation", "invited", " (not yet confirmed)", put_org),
    SAY("addOrganizationToEnterprise", "added ", put_org, " to ", put_enterprise),
    SAY("removeOrganizationFromEnterprise", "removed ", put_org, " from ", put_enterprise),
    SAY("acceptEnterpriseJoinRequest", "accepted ", put_org, " into ", put_enterprise),
    POWER_UP("addToEnterprisePluginWhitelist", "allowed", " in the allow list of ", put_enterprise),
    POWER_UP("removeFromEnterprisePluginWhitelist", "disallowed", " in the allow list of ",
             put_enterprise),
    SAY("enableEnterprisePluginWhitelist", "turned on the Power-Up allow list of ", put_enterprise,
        NULL, NULL),
    SAY("disableEnterprisePluginWhitelist", "turned off the Power-Up allow list of ",
        put_enterprise, NULL, NULL),
};

const size_t summarizers_len = TH_ARRAY_LEN(summarizers);
