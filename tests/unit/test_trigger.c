/* SPDX-License-Identifier: MIT */
/* trigger without sockets: every template parses and summarises as its type,
 * trigger_build fills the webhook's model per model type, action ids are
 * fresh, and trigger_set_path handles good, malformed, hostile, deep and
 * non-UTF-8 assignments. */
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
#include "service/trigger.h"
#include "util/util.h"

static webhook board_hook(void)
{
	webhook w;
	memset(&w, 0, sizeof w);
	w.id = (char *)"AbCdEfGhIjKlMnOpQrSt";
	w.trello_id = (char *)"6b0a00000000000000000001";
	w.id_model = (char *)"6b0a000000000000000000b0";
	w.model_type = (char *)"board";
	w.model_name = (char *)"Zoë's board";
	w.description = (char *)"desc";
	w.callback_url = (char *)"http://127.0.0.1:8000/callbacks/AbCdEfGhIjKlMnOpQrSt";
	return w;
}

/* Every template: valid JSON, builds, parses as a delivery of its action
 * type and gets a summary naming the board or a card. */
static void test_templates(void **state)
{
	assert_true(trigger_ntemplates >= 20);
	webhook w = board_hook();
	for (size_t i = 0; i < trigger_ntemplates; i++) {
		const trigger_template *t = &trigger_templates[i];
		assert_ptr_equal(trigger_find(t->name), t);
		char *body = NULL, aid[64];
		size_t len = 0;
		th_error err = {0, {0}};
		if (trigger_build(t->name, &w, NULL, 0, &body, &len, aid, &err))
			fail_msg("%s: %s", t->name, err.msg);
		assert_int_equal(strlen(body), len);
		event ev;
		memset(&ev, 0, sizeof ev);
		if (event_parse(&ev, body, len, &err))
			fail_msg("%s: %s", t->name, err.msg);
		assert_string_equal(ev.action_type, t->action_type);
		assert_string_equal(ev.action_id, aid);
		assert_string_equal(ev.model_id, w.id_model);
		assert_non_null(ev.summary);
		assert_true(strlen(ev.summary) > 10);
		/* the payload as sent, read back independently of the model's parser */
		json_t *root = json_loadb(ev.payload, ev.payload_len, 0, NULL);
		assert_non_null(root);
		json_t *hook = json_object_get(root, "webhook");
		assert_string_equal(json_string_value(json_object_get(hook, "id")), w.trello_id);
		assert_string_equal(json_string_value(json_object_get(hook, "callbackURL")),
		                    w.callback_url);
		json_t *board = json_object_get(
		    json_object_get(json_object_get(root, "action"), "data"), "board");
		if (board)
			assert_string_equal(json_string_value(json_object_get(board, "name")),
			                    w.model_name);
		json_decref(root);
		event_clear(&ev);
		free(body);
	}
}

static void test_card_model(void **state)
{
	webhook w = board_hook();
	w.model_type = (char *)"card";
	w.id_model = (char *)"6b0a000000000000000000c0";
	w.model_name = (char *)"My card";
	w.trello_id = NULL; /* never registered: a plausible id is made up */
	char *body = NULL, aid[64];
	size_t len;
	th_error err = {0, {0}};
	assert_int_equal(trigger_build("commentCard", &w, NULL, 0, &body, &len, aid, &err), 0);
	json_t *root = json_loads(body, 0, NULL);
	assert_non_null(root);
	json_t *model = json_object_get(root, "model");
	assert_string_equal(json_string_value(json_object_get(model, "id")), w.id_model);
	assert_string_equal(json_string_value(json_object_get(model, "name")), "My card");
	json_t *card =
	    json_object_get(json_object_get(json_object_get(root, "action"), "data"), "card");
	assert_string_equal(json_string_value(json_object_get(card, "id")), w.id_model);
	const char *hid =
	    json_string_value(json_object_get(json_object_get(root, "webhook"), "id"));
	assert_non_null(hid);
	assert_true(str_is_trello_id(hid));
	json_decref(root);
	free(body);
}

static void test_action_ids(void **state)
{
	char a[25], b[25];
	th_error err = {0, {0}};
	assert_int_equal(trigger_action_id(a, &err), 0);
	assert_int_equal(trigger_action_id(b, &err), 0);
	assert_true(str_is_trello_id(a));
	assert_true(str_is_trello_id(b));
	assert_string_not_equal(a, b);
}

static void test_unknown(void **state)
{
	webhook w = board_hook();
	char *body = (char *)"x", aid[64];
	size_t len = 1;
	th_error err = {0, {0}};
	assert_int_equal(trigger_build("nope", &w, NULL, 0, &body, &len, aid, &err), TH_EINVAL);
	assert_null(body);
	assert_non_null(strstr(err.msg, "unknown action type 'nope'"));
	assert_int_equal(trigger_check_name("a\x1b[31m\xff", &err), TH_EINVAL);
	assert_null(strchr(err.msg, '\x1b'));
	assert_null(trigger_find(NULL));
}

/* Apply @set to {"a":{"s":"x","arr":[1,2]}} and compare the compact result. */
static void expect_set(const char *set, int want_rc, const char *want_json)
{
	json_t *root = json_loads("{\"a\":{\"s\":\"x\",\"arr\":[1,2]}}", 0, NULL);
	assert_non_null(root);
	th_error err = {0, {0}};
	int rc = trigger_set_path(root, set, &err);
	if (rc != want_rc)
		fail_msg("%s: rc %d (%s), want %d", set, rc, err.msg, want_rc);
	if (want_json) {
		char *got = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (strcmp(got, want_json) != 0)
			fail_msg("%s\n  got:  %s\n  want: %s", set, got, want_json);
		free(got);
	} else {
		assert_true(err.msg[0] != '\0');
	}
	json_decref(root);
}

static void test_set_path(void **state)
{
	expect_set("a.s=hi", 0, "{\"a\":{\"s\":\"hi\",\"arr\":[1,2]}}");
	expect_set("a.s=\"quoted\"", 0, "{\"a\":{\"s\":\"quoted\",\"arr\":[1,2]}}");
	expect_set("a.s=5", 0, "{\"a\":{\"s\":5,\"arr\":[1,2]}}");
	expect_set("a.s=", 0, "{\"a\":{\"s\":\"\",\"arr\":[1,2]}}");
	expect_set("a.s=a=b", 0, "{\"a\":{\"s\":\"a=b\",\"arr\":[1,2]}}");
	expect_set("a.s=null", 0, "{\"a\":{\"s\":null,\"arr\":[1,2]}}");
	expect_set("a.s={\"k\":[true]}", 0, "{\"a\":{\"s\":{\"k\":[true]},\"arr\":[1,2]}}");
	expect_set("a.s={broken", 0, "{\"a\":{\"s\":\"{broken\",\"arr\":[1,2]}}");
	expect_set("b.c.d=1", 0, "{\"a\":{\"s\":\"x\",\"arr\":[1,2]},\"b\":{\"c\":{\"d\":1}}}");
	expect_set("a.arr.0=9", 0, "{\"a\":{\"s\":\"x\",\"arr\":[9,2]}}");
	expect_set("a.arr.2=3", 0, "{\"a\":{\"s\":\"x\",\"arr\":[1,2,3]}}");
	expect_set("a.arr.3=3", TH_EINVAL, NULL);
	expect_set("a.arr.01=3", TH_EINVAL, NULL);
	expect_set("a.arr.-1=3", TH_EINVAL, NULL);
	expect_set("a.arr.x=3", TH_EINVAL, NULL);
	expect_set("a.arr.2.k=3", TH_EINVAL, NULL);
	expect_set("a.s.k=1", TH_EINVAL, NULL);
	expect_set("noequals", TH_EINVAL, NULL);
	expect_set("=1", TH_EINVAL, NULL);
	expect_set(".a=1", TH_EINVAL, NULL);
	expect_set("a.=1", TH_EINVAL, NULL);
	expect_set("a..b=1", TH_EINVAL, NULL);
	expect_set("a.s=\xff\xfe", TH_EINVAL, NULL);
	expect_set("a.\xc3=1", TH_EINVAL, NULL);
	/* a lone surrogate is not JSON: the text is kept as a string */
	expect_set("a.s=\"\\ud800\"", 0, "{\"a\":{\"s\":\"\\\"\\\\ud800\\\"\",\"arr\":[1,2]}}");
	/* deep and long paths are refused, not recursed into */
	char deep[200];
	size_t k = 0;
	for (int i = 0; i < 40; i++) {
		deep[k++] = 'a';
		deep[k++] = '.';
	}
	str_copy(deep + k, sizeof deep - k, "z=1");
	expect_set(deep, TH_EINVAL, NULL);
	char *long_path = malloc(2000);
	assert_non_null(long_path);
	memset(long_path, 'p', 1990);
	str_copy(long_path + 1990, 10, "=1");
	expect_set(long_path, TH_EINVAL, NULL);
	free(long_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_templates),  cmocka_unit_test(test_card_model),
	    cmocka_unit_test(test_action_ids), cmocka_unit_test(test_unknown),
	    cmocka_unit_test(test_set_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
