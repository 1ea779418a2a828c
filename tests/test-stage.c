/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-state.h"
#include "se-status.h"
#include "testlib.h"

/* The full table against k3s's reference §1.6: every (stage, command) pair. */
START_TEST(test_transition_table) {
        static const struct {
                se_stage from;
                se_command cmd;
                se_stage to; /* SE_STAGE_INVALID = refused */
        } cases[] = {
                { SE_STAGE_START, SE_COMMAND_PREPARE, SE_STAGE_PREPARE },
                { SE_STAGE_REENCRYPT_FINISHED, SE_COMMAND_PREPARE, SE_STAGE_PREPARE },
                { SE_STAGE_PREPARE, SE_COMMAND_ROTATE, SE_STAGE_ROTATE },
                { SE_STAGE_ROTATE, SE_COMMAND_REENCRYPT, SE_STAGE_REENCRYPT_ACTIVE },
                { SE_STAGE_START, SE_COMMAND_ROTATE_KEYS, SE_STAGE_REENCRYPT_ACTIVE },
                { SE_STAGE_REENCRYPT_FINISHED, SE_COMMAND_ROTATE_KEYS, SE_STAGE_REENCRYPT_ACTIVE },
                { SE_STAGE_PREPARE, SE_COMMAND_PREPARE, SE_STAGE_INVALID },
                { SE_STAGE_ROTATE, SE_COMMAND_PREPARE, SE_STAGE_INVALID },
                { SE_STAGE_START, SE_COMMAND_ROTATE, SE_STAGE_INVALID },
                { SE_STAGE_ROTATE, SE_COMMAND_ROTATE, SE_STAGE_INVALID },
                { SE_STAGE_START, SE_COMMAND_REENCRYPT, SE_STAGE_INVALID },
                { SE_STAGE_PREPARE, SE_COMMAND_REENCRYPT, SE_STAGE_INVALID },
                { SE_STAGE_REENCRYPT_ACTIVE, SE_COMMAND_REENCRYPT, SE_STAGE_INVALID },
                { SE_STAGE_PREPARE, SE_COMMAND_ROTATE_KEYS, SE_STAGE_INVALID },
                { SE_STAGE_ROTATE, SE_COMMAND_ROTATE_KEYS, SE_STAGE_INVALID },
                { SE_STAGE_REENCRYPT_ACTIVE, SE_COMMAND_ROTATE_KEYS, SE_STAGE_INVALID },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                se_stage next = SE_STAGE_INVALID;
                const char *req = NULL;
                int r = se_stage_next(cases[i].from, cases[i].cmd, &next, &req);

                if (cases[i].to == SE_STAGE_INVALID) {
                        ck_assert_int_eq(r, -ESTALE);
                        ck_assert_ptr_nonnull(req);
                } else {
                        ck_assert_int_eq(r, 0);
                        ck_assert_int_eq(next, cases[i].to);
                }
        }
}
END_TEST

START_TEST(test_stage_names) {
        for (int s = 0; s < _SE_STAGE_MAX; s++) {
                ck_assert_int_eq(se_stage_from_string(se_stage_to_string((se_stage) s)), s);
                /* k3s splits annotations at '-': stage names must not contain one */
                ck_assert_ptr_null(strchr(se_stage_to_string((se_stage) s), '-'));
        }
        ck_assert_int_eq(se_stage_from_string("rotate_keys"), SE_STAGE_INVALID);
        ck_assert_int_eq(se_stage_from_string("bogus"), SE_STAGE_INVALID);
}
END_TEST

START_TEST(test_annotation_parse) {
        static const char h[] = "3f1c000000000000000000000000000000000000000000000000000000000abc";
        char hash[65], buf[128];
        se_stage s;

        snprintf(buf, sizeof(buf), "prepare-%s", h);
        ck_assert_int_eq(se_annotation_parse(buf, &s, hash), 0);
        ck_assert_int_eq(s, SE_STAGE_PREPARE);
        ck_assert_str_eq(hash, h);
        snprintf(buf, sizeof(buf), "prepare-%s-x", h);
        ck_assert_int_eq(se_annotation_parse(buf, &s, hash), -EINVAL);
        ck_assert_int_eq(se_annotation_parse("prepare", &s, hash), -EINVAL);
        ck_assert_int_eq(se_annotation_parse("prepare-abc", &s, hash), -EINVAL);
        snprintf(buf, sizeof(buf), "nostage-%s", h);
        ck_assert_int_eq(se_annotation_parse(buf, &s, hash), -EINVAL);
}
END_TEST

/* k3s's text status, byte for byte (reference §3.5). */
START_TEST(test_status_text_k3s) {
        char *inactive[] = { (char *) "AES-CBC aescbckey" };
        se_status s = {
                .has_config = true,
                .enable = 1,
                .stage = (char *) "rotate",
                .hash_match = true,
                .active_key = (char *) "AES-CBC aescbckey-2021-12-10T22:54:38Z",
                .inactive_keys = inactive,
                .n_inactive_keys = 1,
        };
        _cleanup_free_ char *out = NULL;

        ck_assert_int_eq(se_status_format_text(&s, &out), 0);
        ck_assert_str_eq(out, "Encryption Status: Enabled\n"
                              "Current Rotation Stage: rotate\n"
                              "Server Encryption Hashes: All hashes match\n"
                              "\n"
                              "Active  Key Type  Name\n"
                              "------  --------  ----\n"
                              " *      AES-CBC   aescbckey-2021-12-10T22:54:38Z\n"
                              "        AES-CBC   aescbckey\n"
                              "\n");
}
END_TEST

START_TEST(test_status_text_variants) {
        char *inactive[] = { (char *) "XSalsa20-POLY1305 secretboxkey", (char *) "AES-CBC aescbckey" };
        se_status s = {
                .has_config = true,
                .enable = 0,
                .stage = (char *) "reencrypt_finished",
                .hash_error = (char *) "hash does not match between node-1 and node-2",
                .inactive_keys = inactive,
                .n_inactive_keys = 2,
        };
        se_status none = { .has_config = false };
        _cleanup_free_ char *out = NULL, *out2 = NULL;

        ck_assert_int_eq(se_status_format_text(&s, &out), 0);
        ck_assert_str_eq(out, "Encryption Status: Disabled\n"
                              "Current Rotation Stage: reencrypt_finished\n"
                              "Server Encryption Hashes: hash does not match between node-1 and node-2\n"
                              "\n"
                              "Active  Key Type           Name\n"
                              "------  --------           ----\n"
                              "        XSalsa20-POLY1305  secretboxkey\n"
                              "        AES-CBC            aescbckey\n"
                              "\n");
        ck_assert_int_eq(se_status_format_text(&none, &out2), 0);
        ck_assert_str_eq(out2, "Encryption Status: Disabled, no configuration file found\n");
}
END_TEST

/* After an interruption: k3s's output unchanged, then one line of ours; JSON's progress block. */
START_TEST(test_status_note_and_progress) {
        se_status s = {
                .has_config = true,
                .enable = 1,
                .stage = (char *) "reencrypt_active",
                .hash_match = true,
                .active_key = (char *) "AES-CBC aescbckey",
                .reencrypt_pending = true,
                .progress_done = 500,
                .progress_total = 2000,
                .note = (char *) "Re-encryption interrupted at 500/2000 secrets (25%): run `secrets-encrypt "
                                 "reencrypt` to resume it (or restart k3s.service)",
        };
        _cleanup_free_ char *out = NULL, *json = NULL;

        ck_assert_int_eq(se_status_format_text(&s, &out), 0);
        ck_assert_str_eq(out, "Encryption Status: Enabled\n"
                              "Current Rotation Stage: reencrypt_active\n"
                              "Server Encryption Hashes: All hashes match\n"
                              "\n"
                              "Active  Key Type  Name\n"
                              "------  --------  ----\n"
                              " *      AES-CBC   aescbckey\n"
                              "\n"
                              "Re-encryption interrupted at 500/2000 secrets (25%): run `secrets-encrypt reencrypt` to "
                              "resume it (or restart k3s.service)\n");
        ck_assert_int_eq(se_status_format_json(&s, &json), 0);
        ck_assert_ptr_nonnull(strstr(json, "\t\"progress\": {\n\t\t\"reencrypt_pending\": true,\n\t\t\"running\": "
                                           "false,\n\t\t\"done\": 500,\n\t\t\"total\": 2000\n\t}"));
}
END_TEST

START_TEST(test_status_json_k3s_fields) {
        char *inactive[] = { (char *) "AES-CBC aescbckey-2021-12-10T22:54:38Z" };
        se_status s = {
                .has_config = true,
                .enable = 1,
                .stage = (char *) "prepare",
                .hash_match = false,
                .hash_error = (char *) "hash does not match between node-1 and node-2",
                .active_key = (char *) "AES-CBC aescbckey",
                .inactive_keys = inactive,
                .n_inactive_keys = 1,
                .next_action = (char *) "restart k3s.service on node-2",
        };
        _cleanup_free_ char *out = NULL;

        ck_assert_int_eq(se_status_format_json(&s, &out), 0);
        /* k3s's part: its field order, tab indentation, hashmatch omitted when false */
        ck_assert_msg(startswith(out, "{\n"
                                      "\t\"stage\": \"prepare\",\n"
                                      "\t\"activekey\": \"AES-CBC aescbckey\",\n"
                                      "\t\"enable\": true,\n"
                                      "\t\"hasherror\": \"hash does not match between node-1 and node-2\",\n"
                                      "\t\"inactivekeys\": [\n"
                                      "\t\t\"AES-CBC aescbckey-2021-12-10T22:54:38Z\"\n"
                                      "\t],\n"),
                      "got: %s", out);
        ck_assert_ptr_nonnull(strstr(out, "\t\"next_action\": \"restart k3s.service on node-2\",\n"));
        ck_assert_ptr_nonnull(strstr(out, "\t\"safe_to_proceed\": false\n}\n"));
        ck_assert_ptr_null(strstr(out, "hashmatch"));
}
END_TEST

static Suite *stage_suite(void) {
        Suite *s = suite_create("stage");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_transition_table);
        tcase_add_test(tc, test_stage_names);
        tcase_add_test(tc, test_annotation_parse);
        tcase_add_test(tc, test_status_text_k3s);
        tcase_add_test(tc, test_status_note_and_progress);
        tcase_add_test(tc, test_status_text_variants);
        tcase_add_test(tc, test_status_json_k3s_fields);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(stage_suite)
