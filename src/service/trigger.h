/* SPDX-License-Identifier: MIT */
/*
 * trigger — `trellohook trigger`: build a realistic, signed Trello delivery
 * of a chosen action type for one of our webhooks and POST it to the
 * webhook's registered callback URL, exactly as Trello would (layer 5).
 *
 *   trigger_templates.c  one payload template per name (from tests/data/payloads)
 *   trigger.c            filling, --set overrides, signing, sending, lookup
 *
 * Every function returns 0 or a negative TH_E* code with a message a user can
 * act on in @err: TH_EINVAL for what the user typed (unknown type, malformed
 * --set, no or several webhooks), so the CLI exits 2 on those.
 */
#ifndef TH_TRIGGER_H
#define TH_TRIGGER_H

#include <jansson.h>
#include <stddef.h>

#include "model/model.h"
#include "service/ctx.h"

/* One template: the name `trigger` takes, the action.type it produces, one
 * line for `--list`, and the {"model","action"} JSON text (static). */
typedef struct trigger_template {
	const char *name;
	const char *action_type;
	const char *description;
	const char *json;
} trigger_template;

extern const trigger_template trigger_templates[];
extern const size_t trigger_ntemplates;

/* The template called @name, or NULL. */
const trigger_template *trigger_find(const char *name);
/* 0 when @name is a template; else TH_EINVAL with a message listing them all. */
int trigger_check_name(const char *name, th_error *err);

/* A fresh Trello-style action id into @out: 8 hex digits of the current Unix
 * time then 16 random hex digits (24 lowercase hex in all). */
int trigger_action_id(char out[25], th_error *err);

/* Apply one "PATH=VALUE" assignment to @root: PATH is dotted
 * (action.data.text), a numeric segment indexes an existing array, missing
 * intermediate objects are created. VALUE is parsed as JSON when it is valid
 * JSON (numbers, true, {"a":1}, "quoted"), else taken as a string. TH_EINVAL
 * when the assignment is malformed (no '=', empty path or segment) or a
 * segment runs into something that is not an object or array. */
int trigger_set_path(json_t *root, const char *assignment, th_error *err);

/* Build the delivery body of template @name for webhook @w: the template with
 * the webhook's model (id and name; for a board webhook also
 * action.data.board, for a list or card webhook action.data.list/card), a
 * fresh action id, the date now, and the "webhook" object (id = Trello's id,
 * idModel, callbackURL, description), then the @nsets assignments of @sets
 * applied in order. *out_body (malloc'd, compact JSON; free it) is the exact
 * bytes to sign and send; @action_id gets action.id as finally set. */
int trigger_build(const char *name, const webhook *w, const char *const *sets, size_t nsets,
                  char **out_body, size_t *out_len, char action_id[64], th_error *err);

typedef struct trigger_opts {
	const char *name;        /* template name (see trigger --list) */
	const char *webhook_id;  /* ours; NULL: the only webhook there is */
	const char *const *sets; /* PATH=VALUE assignments */
	size_t nsets;
} trigger_opts;

typedef struct trigger_result {
	char webhook_id[64];
	char callback_url[600];
	char action_id[64];
	long status;       /* the HTTP answer; 0 when none came */
	char answer[256];  /* the start of the answer body (one line) */
	char event_id[64]; /* the stored event ("" when not found) */
	char *summary;     /* its summary (malloc'd; trigger_result_clear) */
} trigger_result;

void trigger_result_clear(trigger_result *r);

/* Build, sign (X-Trello-Webhook with cfg.api_secret over the body and the
 * webhook's registered callback URL) and POST the delivery, then look the
 * stored event up by its action id after a 200. Returns 0 when the POST got
 * an answer (look at out->status), TH_EUNAVAIL when it got none. */
int trigger_send(svc_ctx *sc, const trigger_opts *o, trigger_result *out, th_error *err);

#endif
