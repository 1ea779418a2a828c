/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "go-json.h"
#include "macro.h"
#include "se-status.h"
#include "se-util.h"

_public_ void se_status_done(se_status *s) {
        if (!s)
                return;
        free(s->stage);
        free(s->hash_error);
        free(s->active_key);
        for (size_t i = 0; i < s->n_inactive_keys; i++)
                free(s->inactive_keys[i]);
        free(s->inactive_keys);
        free(s->config_hash);
        free(s->state_dir);
        free(s->datastore);
        for (size_t i = 0; i < s->n_nodes; i++) {
                free(s->nodes[i].name);
                free(s->nodes[i].annotation);
                free(s->nodes[i].version);
        }
        free(s->nodes);
        free(s->next_action);
        free(s->note);
        *s = (se_status){};
}

/* Go's text/tabwriter with minwidth 0, padding 2, pad ' ': every cell but the last of a line is
 * padded to its column's widest cell + 2. */
static int tabwrite(se_buf *out, const char *const rows[][3], size_t n) {
        size_t w[2] = {};
        int r = 0;

        for (size_t i = 0; i < n; i++)
                for (size_t c = 0; c < 2; c++)
                        w[c] = MAX(w[c], strlen(rows[i][c]));
        for (size_t i = 0; i < n && r >= 0; i++) {
                for (size_t c = 0; c < 2 && r >= 0; c++) {
                        size_t len = strlen(rows[i][c]);

                        r = se_buf_append_str(out, rows[i][c]);
                        for (size_t k = len; k < w[c] + 2 && r >= 0; k++)
                                r = se_buf_append(out, " ", 1);
                }
                if (r >= 0)
                        r = se_buf_append_str(out, rows[i][2]);
                if (r >= 0)
                        r = se_buf_append(out, "\n", 1);
        }
        return r;
}

static int split_key(const char *k, char **ret_type, const char **ret_name) {
        const char *sp = strrchr(k, ' ');

        if (!sp)
                return -EINVAL;
        *ret_type = strndup(k, (size_t) (sp - k));
        *ret_name = sp + 1;
        return *ret_type ? 0 : -ENOMEM;
}

_public_ int se_status_format_text(const se_status *s, char **ret) {
        se_buf b = {.max = 1024 * 1024};
        int r;

        if (!s->has_config) {
                r = se_buf_append_str(&b, "Encryption Status: Disabled, no configuration file found\n");
                goto done;
        }

        r = se_buf_append_str(&b, s->enable == 1 ? "Encryption Status: Enabled\n" : "Encryption Status: Disabled\n");
        if (r >= 0)
                r = se_buf_append_str(&b, "Current Rotation Stage: ");
        if (r >= 0)
                r = se_buf_append_str(&b, s->stage ? s->stage : "");
        if (r >= 0)
                r = se_buf_append_str(&b, "\nServer Encryption Hashes: ");
        if (r >= 0)
                r = se_buf_append_str(&b, s->hash_match ? "All hashes match" : s->hash_error ? s->hash_error : "");
        if (r >= 0)
                r = se_buf_append_str(&b, "\n");

        if (r >= 0 && (s->active_key || s->n_inactive_keys > 0)) {
                size_t n = 0, total = 2 + (s->active_key ? 1 : 0) + s->n_inactive_keys;
                const char *(*rows)[3] = calloc(total, sizeof(*rows));
                char **types = calloc(total, sizeof(char *));

                if (!rows || !types)
                        r = -ENOMEM;
                if (r >= 0) {
                        rows[n][0] = "Active", rows[n][1] = "Key Type", rows[n][2] = "Name", n++;
                        rows[n][0] = "------", rows[n][1] = "--------", rows[n][2] = "----", n++;
                }
                if (r >= 0 && s->active_key) {
                        r = split_key(s->active_key, &types[n], &rows[n][2]);
                        rows[n][0] = " *", rows[n][1] = types[n], n++;
                }
                for (size_t i = 0; r >= 0 && i < s->n_inactive_keys; i++) {
                        r = split_key(s->inactive_keys[i], &types[n], &rows[n][2]);
                        rows[n][0] = "", rows[n][1] = types[n], n++;
                }
                if (r >= 0)
                        r = se_buf_append(&b, "\n", 1);
                if (r >= 0)
                        r = tabwrite(&b, (const char *const(*)[3]) rows, n);
                for (size_t i = 0; types && i < total; i++)
                        free(types[i]);
                free(types);
                free(rows);
        }
        if (r >= 0)
                r = se_buf_append(&b, "\n", 1); /* fmt.Println of the whole output */
        if (r >= 0 && s->note)                  /* ours, after all of k3s's output */
                r = se_buf_printf(&b, "%s\n", s->note);
done:
        if (r < 0) {
                se_buf_free(&b);
                return r;
        }
        *ret = (char *) b.data;
        return 0;
}

static int field(se_buf *b, const char *indent, const char *name) {
        int r = se_buf_printf(b, ",\n%s\"%s\": ", indent, name);
        return r;
}

_public_ int se_status_format_json(const se_status *s, char **ret) {
        se_buf b = {.max = 4 * 1024 * 1024};
        int r;

        r = se_buf_append_str(&b, "{\n\t\"stage\": ");
        if (r >= 0)
                r = se_go_json_append_string(&b, s->stage ? s->stage : "");
        if (r >= 0)
                r = field(&b, "\t", "activekey");
        if (r >= 0)
                r = se_go_json_append_string(&b, s->active_key ? s->active_key : "");
        if (r >= 0 && s->has_config && s->enable >= 0) {
                r = field(&b, "\t", "enable");
                if (r >= 0)
                        r = se_buf_append_str(&b, s->enable ? "true" : "false");
        }
        if (r >= 0 && s->has_config && s->hash_match) {
                r = field(&b, "\t", "hashmatch");
                if (r >= 0)
                        r = se_buf_append_str(&b, "true");
        }
        if (r >= 0 && s->hash_error) {
                r = field(&b, "\t", "hasherror");
                if (r >= 0)
                        r = se_go_json_append_string(&b, s->hash_error);
        }
        if (r >= 0 && s->n_inactive_keys > 0) {
                r = field(&b, "\t", "inactivekeys");
                if (r >= 0)
                        r = se_buf_append_str(&b, "[");
                for (size_t i = 0; r >= 0 && i < s->n_inactive_keys; i++) {
                        r = se_buf_append_str(&b, i == 0 ? "\n\t\t" : ",\n\t\t");
                        if (r >= 0)
                                r = se_go_json_append_string(&b, s->inactive_keys[i]);
                }
                if (r >= 0)
                        r = se_buf_append_str(&b, "\n\t]");
        }

        /* Our additions, after k3s's fields so k3s parsers keep working. */
        if (r >= 0 && s->config_hash) {
                r = field(&b, "\t", "config_hash");
                if (r >= 0)
                        r = se_go_json_append_string(&b, s->config_hash);
        }
        if (r >= 0) {
                r = field(&b, "\t", "nodes");
                if (r >= 0)
                        r = se_buf_append_str(&b, s->n_nodes > 0 ? "[" : "[]");
                for (size_t i = 0; r >= 0 && i < s->n_nodes; i++) {
                        const se_node_status *n = &s->nodes[i];

                        r = se_buf_printf(&b, "%s\n\t\t{\n\t\t\t\"name\": ", i == 0 ? "" : ",");
                        if (r >= 0)
                                r = se_go_json_append_string(&b, n->name);
                        if (r >= 0)
                                r = field(&b, "\t\t\t", "annotation");
                        if (r >= 0)
                                r = n->annotation ? se_go_json_append_string(&b, n->annotation)
                                                  : se_buf_append_str(&b, "null");
                        if (r >= 0)
                                r = se_buf_printf(&b,
                                                  ",\n\t\t\t\"generation\": %" PRIi64 ",\n\t\t\t\"time\": %" PRIi64,
                                                  n->generation, n->time);
                        if (r >= 0)
                                r = field(&b, "\t\t\t", "version");
                        if (r >= 0)
                                r = se_go_json_append_string(&b, n->version ? n->version : "");
                        if (r >= 0)
                                r = se_buf_append_str(&b, "\n\t\t}");
                }
                if (r >= 0 && s->n_nodes > 0)
                        r = se_buf_append_str(&b, "\n\t]");
        }
        if (r >= 0)
                r = se_buf_printf(&b,
                                  ",\n\t\"progress\": {\n\t\t\"reencrypt_pending\": %s,\n\t\t\"running\": %s,\n\t\t"
                                  "\"done\": %" PRIu64 ",\n\t\t\"total\": %" PRIu64 "\n\t}",
                                  s->reencrypt_pending ? "true" : "false", s->reencrypt_running ? "true" : "false",
                                  s->progress_done, s->progress_total);
        if (r >= 0)
                r = field(&b, "\t", "next_action");
        if (r >= 0)
                r = se_go_json_append_string(&b, s->next_action ? s->next_action : "");
        if (r >= 0)
                r = se_buf_printf(&b, ",\n\t\"safe_to_proceed\": %s", s->safe_to_proceed ? "true" : "false");
        if (r >= 0 && s->state_dir) {
                r = field(&b, "\t", "state_dir");
                if (r >= 0)
                        r = se_go_json_append_string(&b, s->state_dir);
        }
        if (r >= 0 && s->datastore) {
                r = field(&b, "\t", "datastore");
                if (r >= 0)
                        r = se_go_json_append_string(&b, s->datastore);
        }
        if (r >= 0)
                r = se_buf_append_str(&b, "\n}\n");

        if (r < 0) {
                se_buf_free(&b);
                return r;
        }
        *ret = (char *) b.data;
        return 0;
}
