/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ensure: one idempotent verb for fleet tools. Decides from the facts what the wanted state needs
 * (enable, disable, a rotation), does it through the same operations as the k3s commands, and
 * answers with one JSON object for Ansible (changed, failed, msg, rc, plus the state) and, with
 * --salt, a last line in Salt's stateful format. --rotate-due takes the age from the rotate-after
 * setting (the rotation timer's service); --restart then restarts a single server's API server when
 * the rotation left its re-encryption to the hook.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"
#include "macro.h"
#include "se-facts.h"
#include "se-rotation.h"

typedef enum action {
        ACTION_NONE,
        ACTION_ENABLE,
        ACTION_DISABLE,
        ACTION_ROTATE,
} action;

static const char *const action_names[] = {
        [ACTION_NONE] = "none",
        [ACTION_ENABLE] = "enable",
        [ACTION_DISABLE] = "disable",
        [ACTION_ROTATE] = "rotate-keys",
};

typedef struct want {
        uint64_t max_age_usec; /* 0 = not asked */
        const char *max_age;
        char max_age_buf[32]; /* --rotate-due: rotate-after as text */
        bool enabled, disabled;
        const char *provider;
} want;

#define MAX_STEPS 4

typedef struct outcome {
        action done[MAX_STEPS];
        char *reasons[MAX_STEPS];
        size_t n;
        size_t applied; /* steps that completed (not in check mode) */
} outcome;

static void outcome_done(outcome *o) {
        for (size_t i = 0; i < o->n; i++)
                free(o->reasons[i]);
        *o = (outcome){};
}

/* The next step towards w from f, with the reason; ACTION_NONE when there is nothing to do. A
 * wanted state that cannot be reached from here: -ESTALE with the message. */
static int decide(const want *w, const se_facts *f, bool rotated, action *ret, char **ret_reason, se_error *e) {
        int64_t age = se_facts_active_key_age(f);
        char *reason = NULL;
        int k = 0;

        *ret = ACTION_NONE;
        if (w->disabled && f->configured && f->enabled != 0) {
                *ret = ACTION_DISABLE;
                k = asprintf(&reason, "secrets encryption is enabled, wanted disabled");
        } else if (w->enabled && (!f->configured || f->enabled != 1)) {
                *ret = ACTION_ENABLE;
                k = asprintf(&reason, "secrets encryption is %s, wanted enabled",
                             f->configured ? "disabled" : "not configured");
        } else if (!rotated && (w->provider || w->max_age_usec > 0)) {
                if (!f->configured)
                        return se_error_set(e, -ESTALE,
                                            "no encryption configuration on %s: start the server once or use "
                                            "--enabled first",
                                            f->node);
                if (!f->provider && w->provider && !w->disabled) {
                        *ret = ACTION_ROTATE;
                        k = asprintf(&reason, "no %s key, wanted provider %s", w->provider, w->provider);
                } else if (f->provider && w->provider && !streq(f->provider, w->provider)) {
                        *ret = ACTION_ROTATE;
                        k = asprintf(&reason, "provider is %s, wanted %s", f->provider, w->provider);
                } else if (f->provider && w->max_age_usec > 0 &&
                           (age < 0 || (uint64_t) age > w->max_age_usec / 1000000ULL)) {
                        *ret = ACTION_ROTATE;
                        if (age < 0)
                                k = asprintf(&reason, "age of active key %s unknown, wanted rotated within %s",
                                             f->active_key, w->max_age);
                        else {
                                char old[64];

                                if (age >= 86400)
                                        snprintf(old, sizeof(old), "%" PRIi64 "d%" PRIi64 "h", age / 86400,
                                                 age % 86400 / 3600);
                                else
                                        (void) se_format_go_duration(age * 1000000000LL, old, sizeof(old));
                                k = asprintf(&reason, "active key %s is %s old, wanted rotated within %s",
                                             f->active_key, old, w->max_age);
                        }
                }
        }
        if (k < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        *ret_reason = reason;
        return 0;
}

/* *changed: the step changed the state, even if a later part of it failed. */
static int apply(se_ctx *ctx, action a, bool *changed, se_error *e) {
        uint64_t gen = ctx->state.generation;
        int r;

        *changed = false;
        switch (a) {
        case ACTION_ENABLE:
        case ACTION_DISABLE:
                return se_op_set_enabled(ctx, a == ACTION_ENABLE, changed, e);
        case ACTION_ROTATE:
                /* In HA a rotation is a rolling one: the restarts of every server drive it (prepare
                 * and rotate are aescbc-only in k3s, so a move to secretbox stays rotate-keys). */
                if (se_ha_enabled(ctx) && !streq(ctx->settings->provider, "secretbox")) {
                        bool rolling = false;

                        r = se_ha_get_rolling(ctx, &rolling, e);
                        if (r < 0 || rolling)
                                return r; /* already under way */
                        r = se_op_start_rolling(ctx, e);
                } else
                        r = se_op_rotate_keys(ctx, e);
                *changed = ctx->state.generation != gen;
                return r;
        default:
                return 0;
        }
}

static int count(const outcome *o, action a) {
        int n = 0;

        for (size_t i = 0; i < o->n; i++)
                n += o->done[i] == a;
        return n;
}

static int record(outcome *o, action a, char *reason) {
        if (o->n >= MAX_STEPS) {
                free(reason);
                return -E2BIG;
        }
        o->done[o->n] = a;
        o->reasons[o->n++] = reason;
        return 0;
}

/* Plans (check) or performs the steps. An identity-only enable takes two (k3s first writes an
 * identity config); a rotation is done at most once per run. */
static int converge(const want *w, se_ctx *ctx, se_settings *settings, bool check, se_facts *facts, outcome *o,
                    se_error *e) {
        se_facts cur = *facts;
        bool owned = false;
        int r = 0;

        for (;;) {
                action a;
                char *reason = NULL;
                bool step_changed;

                r = decide(w, &cur, count(o, ACTION_ROTATE) > 0, &a, &reason, e);
                if (r < 0 || a == ACTION_NONE)
                        break;
                if (count(o, a) >= (a == ACTION_ENABLE ? 2 : 1) || (check && count(o, a) > 0)) {
                        free(reason);
                        if (!check)
                                r = se_error_set(e, -EIO, "%s did not reach the wanted state", action_names[a]);
                        break;
                }
                r = record(o, a, reason);
                if (r < 0) {
                        r = se_error_set(e, r, "too many steps");
                        break;
                }
                if (check) {
                        /* what the step would leave, for the next decision */
                        if (a == ACTION_ENABLE)
                                cur.configured = true, cur.enabled = 1;
                        else if (a == ACTION_DISABLE)
                                cur.enabled = 0;
                        continue;
                }
                /* rotating for age or enabling keeps the key type; only --provider changes it */
                if (a != ACTION_DISABLE && !w->provider && cur.provider) {
                        r = se_settings_set(settings, "secrets-encryption-provider", cur.provider, e);
                        if (r < 0)
                                break;
                }
                r = apply(ctx, a, &step_changed, e);
                if (step_changed)
                        o->applied++;
                if (r < 0)
                        break;
                if (owned)
                        se_facts_done(&cur);
                r = se_facts_collect(ctx, (int64_t) time(NULL), &cur, e);
                if (r < 0) {
                        owned = false;
                        break;
                }
                owned = true;
        }
        if (owned) {
                se_facts_done(facts);
                *facts = cur;
        }
        return r;
}

static void add(json_object *o, const char *k, json_object *v) {
        (void) json_object_object_add(o, k, v);
}

static json_object *str_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static char *key_lines(const se_facts *f) {
        se_buf b = {};

        for (size_t i = 0; i < f->n_keys; i++)
                if (se_buf_append_str(&b, f->keys[i]) < 0 || se_buf_append(&b, "\n", 1) < 0) {
                        se_buf_free(&b);
                        return NULL;
                }
        if (se_buf_append(&b, "", 1) < 0) {
                se_buf_free(&b);
                return NULL;
        }
        return (char *) b.data;
}

/* Salt's shlex-split last line: no double quotes, backslashes or newlines in the comment. */
static void print_salt(bool changed, const char *msg) {
        printf("changed=%s comment=\"", changed ? "yes" : "no");
        for (const char *p = msg; *p; p++)
                putchar(*p == '"' ? '\'' : (*p == '\\' || *p == '\n' || *p == '\r') ? ' ' : *p);
        printf("\"\n");
}

static void print_result(const cli *c, const se_facts *before, const se_facts *after, const outcome *o, int r,
                         const char *msg) {
        json_object *j = json_object_new_object(), *actions = json_object_new_array();
        bool changed = c->check ? r >= 0 && o->n > 0 : o->applied > 0;
        int rc = r < 0 ? se_exit_code_from_errno(r) : 0;
        int64_t age = after ? se_facts_active_key_age(after) : -1;
        const char *text;

        if (!j || !actions) {
                json_object_put(j);
                json_object_put(actions);
                return;
        }
        for (size_t i = 0; i < o->n; i++)
                (void) json_object_array_add(actions, json_object_new_string(action_names[o->done[i]]));
        add(j, "changed", json_object_new_boolean(changed));
        add(j, "failed", json_object_new_boolean(r < 0));
        add(j, "msg", json_object_new_string(msg));
        add(j, "rc", json_object_new_int(rc));
        add(j, "check_mode", json_object_new_boolean(c->check));
        add(j, "actions", actions);
        if (after) {
                json_object *keys = json_object_new_array();

                for (size_t i = 0; keys && i < after->n_keys; i++)
                        (void) json_object_array_add(keys, json_object_new_string(after->keys[i]));
                add(j, "node", str_or_null(after->node));
                add(j, "stage", str_or_null(after->stage));
                add(j, "enabled", after->enabled < 0 ? NULL : json_object_new_boolean(after->enabled));
                add(j, "provider", str_or_null(after->provider));
                add(j, "active_key", str_or_null(after->active_key));
                add(j, "active_key_age_seconds", age < 0 ? NULL : json_object_new_int64(age));
                add(j, "keys", keys);
                add(j, "config_hash", str_or_null(after->config_hash));
                add(j, "hashes_match", json_object_new_boolean(after->hashes_match));
                add(j, "reencrypt_pending", json_object_new_boolean(after->reencrypt_pending));
        }
        if (changed && before && after && !c->check) {
                /* Ansible's diff mode: key names only */
                json_object *d = json_object_new_object();
                _cleanup_free_ char *b = key_lines(before), *a = key_lines(after);

                if (d && b && a) {
                        add(d, "before", json_object_new_string(b));
                        add(d, "after", json_object_new_string(a));
                        add(j, "diff", d);
                } else
                        json_object_put(d);
        }
        text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text)
                printf("%s\n", text);
        json_object_put(j);
        if (c->salt)
                print_salt(changed, msg);
        fflush(stdout);
}

static int parse_want(cli *c, want *w, se_error *e) {
        int r;

        *w = (want){.enabled = c->want_enabled, .disabled = c->want_disabled, .provider = c->want_provider};
        if (!c->rotated_within && !c->rotate_due && !w->enabled && !w->disabled && !w->provider)
                return se_error_set(e, -EINVAL,
                                    "ensure needs --rotated-within DURATION, --rotate-due, --enabled, --disabled or "
                                    "--provider P");
        if (c->rotated_within && c->rotate_due)
                return se_error_set(e, -EINVAL,
                                    "--rotated-within and --rotate-due exclude each other (--rotate-due uses the "
                                    "rotate-after setting)");
        if (w->enabled && w->disabled)
                return se_error_set(e, -EINVAL, "--enabled and --disabled exclude each other");
        if (w->provider && !streq(w->provider, "aescbc") && !streq(w->provider, "secretbox"))
                return se_error_set(e, -EINVAL, "invalid --provider %s: expected aescbc or secretbox", w->provider);
        if (c->rotated_within) {
                r = se_parse_duration(c->rotated_within, &w->max_age_usec);
                if (r < 0 || w->max_age_usec < 1000000ULL)
                        return se_error_set(e, -EINVAL, "invalid --rotated-within %s: expected a duration such as 90d",
                                            c->rotated_within);
                w->max_age = c->rotated_within;
        }
        if (c->rotate_due) {
                uint64_t sec = c->settings.rotate_after_usec / 1000000ULL;

                w->max_age_usec = c->settings.rotate_after_usec;
                if (sec % 86400 == 0)
                        snprintf(w->max_age_buf, sizeof(w->max_age_buf), "%" PRIu64 "d", sec / 86400);
                else
                        (void) se_format_go_duration((int64_t) sec * 1000000000LL, w->max_age_buf,
                                                     sizeof(w->max_age_buf));
                w->max_age = w->max_age_buf;
        }
        /* the new key's type follows the wanted provider (rotate-keys is k3s's provider migration) */
        if (w->provider) {
                r = se_settings_set(&c->settings, "secrets-encryption-provider", w->provider, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --restart on a single server: the rotation left the re-encryption to the hook, so restart the
 * API server (its hook re-encrypts while it is down) and answer with the state after it. In HA
 * the rolling rotation is driven by each server's own restarts, one at a time; a timer on every
 * server restarting its own must not take them down together, so nothing is restarted there. */
static int restart_server(cli *c, se_facts *after, bool *have_after, se_error *e) {
        se_facts cur = {};
        se_ctx ctx;
        int r;

        r = se_unit_restart(c->settings.unit, c->user, c->settings.timeout_usec, e);
        if (r < 0)
                return r;
        r = se_ctx_open(&ctx, &c->settings, MAX(SE_LOCK_WAIT_USEC, c->settings.timeout_usec), e);
        if (r < 0)
                return r;
        if (ctx.state.pending_reencrypt)
                r = se_error_set(e, -EIO,
                                 "%s restarted but the re-encryption is still pending; see `journalctl -u %s "
                                 "SYSLOG_IDENTIFIER=secrets-encrypt`",
                                 c->settings.unit, c->settings.unit);
        if (r >= 0)
                r = se_facts_collect(&ctx, (int64_t) time(NULL), &cur, e);
        se_ctx_close(&ctx);
        if (r < 0)
                return r;
        if (*have_after)
                se_facts_done(after);
        *after = cur;
        *have_after = true;
        return 0;
}

static char *summary(const outcome *o, const se_facts *f, bool check, int r, const se_error *e) {
        se_buf b = {};

        if (r < 0)
                return strdup(se_error_message(e));
        for (size_t i = 0; i < o->n; i++) {
                if (i > 0 && se_buf_append_str(&b, "; ") < 0)
                        goto oom;
                if (se_buf_append_str(&b, check ? "would " : "") < 0 ||
                    se_buf_append_str(&b, action_names[o->done[i]]) < 0 || se_buf_append_str(&b, ": ") < 0 ||
                    se_buf_append_str(&b, o->reasons[i] ? o->reasons[i] : "") < 0)
                        goto oom;
        }
        if (o->n == 0) {
                _cleanup_free_ char *s = NULL;

                if (asprintf(&s, "nothing to do: %s%s%s%s", f->configured ? "stage " : "not configured",
                             f->stage ?: "", f->active_key ? ", active key " : "", f->active_key ?: "") < 0 ||
                    se_buf_append_str(&b, s) < 0)
                        goto oom;
        }
        if (se_buf_append(&b, "", 1) < 0)
                goto oom;
        return (char *) b.data;
oom:
        se_buf_free(&b);
        return NULL;
}

int cmd_ensure(cli *c, se_error *e) {
        se_facts before = {}, after = {};
        bool have_before = false, have_after = false;
        _cleanup_free_ char *msg = NULL, *deferred = NULL;
        outcome o = {};
        se_ctx ctx;
        bool opened = false, ha = false;
        want w;
        int r;

        r = parse_want(c, &w, e);
        if (r >= 0)
                r = cli_check_host(c, "ensure", e);
        if (r >= 0 && c->check)
                r = se_facts_read(&c->settings, (int64_t) time(NULL), &before, e);
        else if (r >= 0) {
                /* every server may run this at once: wait for the one that acts, then see its result */
                r = se_ctx_open(&ctx, &c->settings, MAX(SE_LOCK_WAIT_USEC, c->settings.timeout_usec), e);
                opened = r >= 0;
                if (opened) {
                        ctx.progress = cli_progress;
                        r = se_facts_collect(&ctx, (int64_t) time(NULL), &before, e);
                }
        }
        have_before = r >= 0;
        if (have_before) {
                se_facts cur = {};

                /* converge() replaces its facts as it goes; before stays for the diff */
                r = opened ? se_facts_collect(&ctx, (int64_t) time(NULL), &cur, e)
                           : se_facts_read(&c->settings, (int64_t) time(NULL), &cur, e);
                if (r >= 0) {
                        r = converge(&w, opened ? &ctx : NULL, &c->settings, c->check, &cur, &o, e);
                        after = cur;
                        have_after = true;
                }
        }
        if (opened) {
                deferred = TAKE_PTR(ctx.deferred);
                ha = se_ha_enabled(&ctx);
                se_ctx_close(&ctx); /* the hook needs the lock */
        }
        if (r >= 0 && deferred && c->restart && !ha) {
                r = restart_server(c, &after, &have_after, e);
                if (r >= 0)
                        free(TAKE_PTR(deferred));
        }

        msg = summary(&o, have_after ? &after : &before, c->check, r, e);
        if (msg && deferred) { /* the safe part was done: say which restart completes it */
                char *m = NULL;

                if (asprintf(&m, "%s; re-encryption pending: %s", msg, deferred) >= 0)
                        free(msg), msg = m;
        }
        print_result(c, have_before ? &before : NULL, have_after ? &after : (have_before ? &before : NULL), &o, r,
                     msg ? msg : "out of memory");
        outcome_done(&o);
        if (have_after)
                se_facts_done(&after);
        if (have_before)
                se_facts_done(&before);
        return r;
}
