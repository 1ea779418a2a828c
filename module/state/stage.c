/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "macro.h"
#include "se-state.h"

static const char *const stage_names[_SE_STAGE_MAX] = {
        [SE_STAGE_START] = "start",
        [SE_STAGE_PREPARE] = "prepare",
        [SE_STAGE_ROTATE] = "rotate",
        [SE_STAGE_REENCRYPT_REQUEST] = "reencrypt_request",
        [SE_STAGE_REENCRYPT_ACTIVE] = "reencrypt_active",
        [SE_STAGE_REENCRYPT_FINISHED] = "reencrypt_finished",
};

static const char *const command_names[_SE_COMMAND_MAX] = {
        [SE_COMMAND_PREPARE] = "prepare",
        [SE_COMMAND_ROTATE] = "rotate",
        [SE_COMMAND_REENCRYPT] = "reencrypt",
        [SE_COMMAND_ROTATE_KEYS] = "rotate-keys",
};

/* k3s's transitions (reference §1.6). SE_STAGE_INVALID = refused. reencrypt_request is the
 * legacy controller trigger: treated like rotate for reencrypt, since it means "rotate done,
 * re-encryption wanted". */
static const se_stage transitions[_SE_STAGE_MAX][_SE_COMMAND_MAX] = {
        [SE_STAGE_START] = {SE_STAGE_PREPARE, SE_STAGE_INVALID, SE_STAGE_INVALID, SE_STAGE_REENCRYPT_ACTIVE},
        [SE_STAGE_PREPARE] = {SE_STAGE_INVALID, SE_STAGE_ROTATE, SE_STAGE_INVALID, SE_STAGE_INVALID},
        [SE_STAGE_ROTATE] = {SE_STAGE_INVALID, SE_STAGE_INVALID, SE_STAGE_REENCRYPT_ACTIVE, SE_STAGE_INVALID},
        [SE_STAGE_REENCRYPT_REQUEST] = {SE_STAGE_INVALID, SE_STAGE_INVALID, SE_STAGE_REENCRYPT_ACTIVE,
                                        SE_STAGE_INVALID},
        [SE_STAGE_REENCRYPT_ACTIVE] = {SE_STAGE_INVALID, SE_STAGE_INVALID, SE_STAGE_INVALID, SE_STAGE_INVALID},
        [SE_STAGE_REENCRYPT_FINISHED] = {SE_STAGE_PREPARE, SE_STAGE_INVALID, SE_STAGE_INVALID,
                                         SE_STAGE_REENCRYPT_ACTIVE},
};

/* What k3s passes as prevStage, printed in refusals. */
static const char *const required[_SE_COMMAND_MAX] = {
        [SE_COMMAND_PREPARE] = "start-reencrypt_finished",
        [SE_COMMAND_ROTATE] = "prepare",
        [SE_COMMAND_REENCRYPT] = "rotate",
        [SE_COMMAND_ROTATE_KEYS] = "start-reencrypt_finished",
};

_public_ const char *se_stage_to_string(se_stage s) {
        return s >= 0 && s < _SE_STAGE_MAX ? stage_names[s] : NULL;
}

_public_ se_stage se_stage_from_string(const char *s) {
        for (int i = 0; s && i < _SE_STAGE_MAX; i++)
                if (streq(s, stage_names[i]))
                        return (se_stage) i;
        return SE_STAGE_INVALID;
}

_public_ const char *se_command_to_string(se_command c) {
        return c >= 0 && c < _SE_COMMAND_MAX ? command_names[c] : NULL;
}

_public_ int se_stage_next(se_stage from, se_command cmd, se_stage *ret_next, const char **ret_required) {
        if (cmd < 0 || cmd >= _SE_COMMAND_MAX)
                return -EINVAL;
        if (from < 0 || from >= _SE_STAGE_MAX || transitions[from][cmd] == SE_STAGE_INVALID) {
                if (ret_required)
                        *ret_required = required[cmd];
                return -ESTALE;
        }
        if (ret_next)
                *ret_next = transitions[from][cmd];
        return 0;
}

_public_ int se_annotation_parse(const char *s, se_stage *ret_stage, char ret_hash[static 65]) {
        const char *dash;
        _cleanup_free_ char *stage = NULL;
        se_stage st;

        if (!s)
                return -EINVAL;
        dash = strchr(s, '-');
        if (!dash || strchr(dash + 1, '-'))
                return -EINVAL;
        stage = strndup(s, (size_t) (dash - s));
        if (!stage)
                return -ENOMEM;
        st = se_stage_from_string(stage);
        if (st == SE_STAGE_INVALID || strlen(dash + 1) != 64 || strspn(dash + 1, "0123456789abcdef") != 64)
                return -EINVAL;
        *ret_stage = st;
        memcpy(ret_hash, dash + 1, 65);
        return 0;
}
