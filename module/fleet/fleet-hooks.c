/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "se-event.h"
#include "se-facts.h"
#include "se-fleet-hooks.h"
#include "se-metrics.h"
#include "se-redact.h"
#include "se-trust.h"
#include "se-util.h"

#define MAX_HOOKS 256u

extern char **environ;

static const char *const env_names[] = {
        "SECRETS_ENCRYPT_EVENT",          "SECRETS_ENCRYPT_MESSAGE_ID", "SECRETS_ENCRYPT_STAGE",
        "SECRETS_ENCRYPT_PREVIOUS_STAGE", "SECRETS_ENCRYPT_HASH",       "SECRETS_ENCRYPT_NODE",
        "SECRETS_ENCRYPT_ERROR",
};

static bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);

        return a >= b && streq(s + a - b, suffix);
}

_public_ bool se_fleet_hook_name_is_valid(const char *name) {
        static const char *const suffixes[] = {
                "~",       ".bak",      ".swp",      ".swo",       ".orig",     ".rej",
                ".tmp",    ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".dpkg-bak",
                ".rpmnew", ".rpmsave",  ".rpmorig",  ".ucf-old",   ".ucf-new",  ".ucf-dist",
        };

        if (isempty(name) || name[0] == '.' || name[0] == '#')
                return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (endswith(name, suffixes[i]))
                        return false;
        return true;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void hook_failed(const char *path, const se_fleet_event *ev, const char *why);

/* Executable regular files (symlinks followed), sorted by name. The directory and every hook must
 * be root's alone (se-trust.h): one others can change is refused, logged, and not run. */
static int list_hooks(const char *dir, const se_fleet_event *ev, char ***ret, size_t *ret_n) {
        se_error e = SE_ERROR_NULL;
        DIR *d = opendir(dir);
        char **v = NULL;
        size_t n = 0;
        struct dirent *de;
        int r;

        if (!d)
                return -errno;
        r = se_trust_check_fd(dirfd(d), dir, "hooks-dir", &e);
        if (r < 0) {
                hook_failed(dir, ev, se_error_message(&e));
                se_error_done(&e);
                closedir(d);
                return r;
        }
        while ((de = readdir(d))) {
                struct stat st;
                char **nv;

                if (!se_fleet_hook_name_is_valid(de->d_name))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (faccessat(dirfd(d), de->d_name, X_OK, AT_EACCESS) < 0)
                        continue;
                if (n >= MAX_HOOKS)
                        break;
                nv = realloc(v, (n + 1) * sizeof(char *));
                if (!nv)
                        goto oom;
                v = nv;
                if (asprintf(&v[n], "%s/%s", dir, de->d_name) < 0)
                        goto oom;
                if (se_trust_check_at(dirfd(d), de->d_name, v[n], "fleet hook", &e) < 0) {
                        hook_failed(v[n], ev, se_error_message(&e));
                        se_error_done(&e);
                        free(v[n]);
                        continue;
                }
                n++;
        }
        closedir(d);
        if (n > 0)
                qsort(v, n, sizeof(char *), cmp_str);
        *ret = v;
        *ret_n = n;
        return 0;
oom:
        closedir(d);
        strv_free(v, n);
        return -ENOMEM;
}

static bool is_ours(const char *entry) {
        for (size_t i = 0; i < ELEMENTSOF(env_names); i++) {
                size_t l = strlen(env_names[i]);

                if (strneq(entry, env_names[i], l) && entry[l] == '=')
                        return true;
        }
        return false;
}

/* The inherited environment without our variables, then ours. Built before fork(). */
static int build_env(const se_fleet_event *ev, char ***ret, size_t *ret_n) {
        const char *values[ELEMENTSOF(env_names)] = {
                ev->event, ev->message_id, ev->stage, ev->previous_stage, ev->hash, ev->node, ev->error,
        };
        size_t n_env = 0, n = 0;
        char **v;

        while (environ && environ[n_env])
                n_env++;
        v = calloc(n_env + ELEMENTSOF(env_names) + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n_env; i++) {
                if (is_ours(environ[i]))
                        continue;
                if (!(v[n] = strdup(environ[i])))
                        goto oom;
                n++;
        }
        for (size_t i = 0; i < ELEMENTSOF(env_names); i++) {
                if (!values[i] && i == ELEMENTSOF(env_names) - 1)
                        continue; /* ERROR only for failures */
                if (asprintf(&v[n], "%s=%s", env_names[i], values[i] ? values[i] : "") < 0) {
                        v[n] = NULL;
                        goto oom;
                }
                /* the error may echo input: a secret in it is masked by field (se-redact.h) */
                if (i == ELEMENTSOF(env_names) - 1)
                        (void) se_redact_fields(v[n] + strlen(env_names[i]) + 1);
                n++;
        }
        *ret = v;
        *ret_n = n;
        return 0;
oom:
        strv_free(v, n);
        return -ENOMEM;
}

_noreturn_ static void child(const char *path, char **envp) {
        char *argv[] = {(char *) path, NULL};
        sigset_t all;
        int fd;

        (void) setpgid(0, 0);
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                _exit(126);
        /* stdout may be a command's JSON answer: the hook's output goes with our messages */
        if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
                _exit(126);
        (void) close_range(3, ~0U, 0);
        execve(path, argv, envp);
        _exit(127);
}

static void hook_failed(const char *path, const se_fleet_event *ev, const char *why) {
        (void) se_event(SE_EVENT_FLEET_HOOK_FAILED,
                        SE_MESSAGE("Fleet hook %s failed on %s event: %s", path, ev->event ? ev->event : "", why),
                        SE_FIELD("SECRETS_ENCRYPT_ERROR=%s: %s", path, why),
                        SE_FIELD("SECRETS_ENCRYPT_STAGE=%s", ev->stage ? ev->stage : ""),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", ev->node ? ev->node : ""));
}

/* 0 = success, else a logged failure. */
static int run_one(const char *path, char **envp, const se_fleet_event *ev, uint64_t timeout_usec) {
        uint64_t deadline = se_now_usec(CLOCK_MONOTONIC) + timeout_usec;
        char why[128];
        int status = 0;
        pid_t pid, k;

        pid = fork();
        if (pid < 0) {
                snprintf(why, sizeof(why), "cannot fork: %s", strerror(errno));
                hook_failed(path, ev, why);
                return -errno;
        }
        if (pid == 0)
                child(path, envp);
        (void) setpgid(pid, pid);

        for (;;) {
                k = waitpid(pid, &status, WNOHANG);
                if (k == pid)
                        break;
                if (k < 0 && errno != EINTR) {
                        snprintf(why, sizeof(why), "waitpid: %s", strerror(errno));
                        hook_failed(path, ev, why);
                        return -ECHILD;
                }
                if (se_now_usec(CLOCK_MONOTONIC) >= deadline) {
                        (void) kill(-pid, SIGKILL);
                        (void) kill(pid, SIGKILL);
                        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                                ;
                        snprintf(why, sizeof(why), "timed out after %llu ms, killed",
                                 (unsigned long long) (timeout_usec / 1000));
                        hook_failed(path, ev, why);
                        return -ETIME;
                }
                (void) nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                se_log_debug("fleet hook %s: ok", path);
                return 0;
        }
        if (WIFEXITED(status))
                snprintf(why, sizeof(why),
                         WEXITSTATUS(status) == 127 ? "cannot execute (exit status 127)" : "exit status %d",
                         WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(why, sizeof(why), "killed by signal %s", sigabbrev_np(WTERMSIG(status)) ?: "?");
        else
                snprintf(why, sizeof(why), "ended abnormally");
        hook_failed(path, ev, why);
        return -EPROTO;
}

/* budget (NULL: none): the time left for hooks in this process, used up by each hook's run. */
static int hooks_run(const char *dir, const se_fleet_event *ev, uint64_t timeout_usec, uint64_t *budget,
                     unsigned *ret_ran) {
        char **hooks = NULL, **envp = NULL;
        size_t n_hooks = 0, n_env = 0;
        unsigned failed = 0;
        int r;

        if (ret_ran)
                *ret_ran = 0;
        if (isempty(dir))
                return 0;
        if (timeout_usec == 0)
                timeout_usec = SE_FLEET_HOOK_TIMEOUT_USEC;
        r = list_hooks(dir, ev, &hooks, &n_hooks);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (n_hooks == 0) {
                free(hooks);
                return 0;
        }
        r = build_env(ev, &envp, &n_env);
        if (r < 0) {
                strv_free(hooks, n_hooks);
                return r;
        }
        for (size_t i = 0; i < n_hooks; i++) {
                uint64_t start = se_now_usec(CLOCK_MONOTONIC), used;

                if (budget && *budget == 0) {
                        hook_failed(hooks[i], ev,
                                    "not run: the fleet hooks of this run used up their time (a quarter of the "
                                    "timeout setting), so they cannot hold up the start");
                        failed++;
                        continue;
                }
                if (run_one(hooks[i], envp, ev, budget ? MIN(timeout_usec, *budget) : timeout_usec) < 0)
                        failed++;
                if (budget) {
                        used = se_now_usec(CLOCK_MONOTONIC) - start;
                        *budget = used >= *budget ? 0 : *budget - used;
                }
        }
        if (ret_ran)
                *ret_ran = (unsigned) n_hooks;
        strv_free(hooks, n_hooks);
        strv_free(envp, n_env);
        return (int) failed;
}

_public_ int se_fleet_hooks_run(const char *dir, const se_fleet_event *ev, uint64_t timeout_usec, unsigned *ret_ran) {
        return hooks_run(dir, ev, timeout_usec, NULL, ret_ran);
}

/* ---- the observer ------------------------------------------------------------------------- */

static struct {
        const se_settings *settings;
        bool have_progress;
        uint64_t done, total;
        uint64_t hooks_budget; /* time left for fleet hooks in this process */
} observer;

static bool runs_hooks(int type) {
        const se_event_info *info = se_event_get_info(type);

        if (type == SE_EVENT_STAGE_CHANGED)
                return true;
        /* every failure event but our own */
        return info && type != SE_EVENT_FLEET_HOOK_FAILED && info->priority <= LOG_ERR;
}

static uint64_t hook_timeout(const se_settings *s) {
        const char *v = secure_getenv("SECRETS_ENCRYPT_FLEET_HOOK_TIMEOUT");
        uint64_t t;

        if (!isempty(v) && se_parse_duration(v, &t) >= 0 && t > 0)
                return t;
        if (s->timeout_usec > 0)
                return MIN(SE_FLEET_HOOK_TIMEOUT_USEC, s->timeout_usec);
        return SE_FLEET_HOOK_TIMEOUT_USEC;
}

static int write_metrics(const se_settings *s, se_facts *f, se_error *e) {
        if (f->reencrypt_total == 0 && f->reencrypt_done == 0) {
                if (observer.have_progress) {
                        f->reencrypt_done = observer.done;
                        f->reencrypt_total = observer.total;
                } else
                        /* the counts of the last run survive in the metrics file itself */
                        se_metrics_previous_counts(s->metrics_file, &f->reencrypt_done, &f->reencrypt_total);
        }
        return se_metrics_write(s->metrics_file, f, e);
}

static uint64_t field_u64(const se_log_record *rec, const char *name, bool *ok) {
        const char *v = se_log_record_get(rec, name);
        char *end;
        unsigned long long n;

        if (!v || !*v) {
                *ok = false;
                return 0;
        }
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno != 0 || *end) {
                *ok = false;
                return 0;
        }
        return n;
}

static void observe(const se_log_record *rec, void *userdata) {
        const se_settings *s = observer.settings;
        const se_event_info *info = se_event_get_info(rec->type);
        se_error e = SE_ERROR_NULL;
        se_facts f = {};
        bool have_facts;

        if (!s || !info)
                return;
        if (rec->type == SE_EVENT_REENCRYPT_PROGRESS || rec->type == SE_EVENT_REENCRYPT_FINISHED) {
                bool ok = true;
                uint64_t done = field_u64(rec, SE_FIELD_DONE, &ok), total = field_u64(rec, SE_FIELD_TOTAL, &ok);

                if (ok) {
                        observer.have_progress = true;
                        observer.done = done;
                        observer.total = total;
                }
        }
        have_facts = se_facts_read(s, (int64_t) time(NULL), &f, &e) >= 0;
        se_error_done(&e);

        if (runs_hooks(rec->type) && !isempty(s->hooks_dir)) {
                const char *stage = se_log_record_get(rec, SE_FIELD_STAGE),
                           *hash = se_log_record_get(rec, SE_FIELD_HASH),
                           *node = se_log_record_get(rec, SE_FIELD_NODE);
                se_fleet_event ev = {
                        .event = info->name,
                        .message_id = info->id,
                        .stage = !isempty(stage) ? stage : (have_facts ? f.stage : NULL),
                        .previous_stage = se_log_record_get(rec, SE_FIELD_PREVIOUS_STAGE),
                        .hash = !isempty(hash) ? hash : (have_facts ? f.config_hash : NULL),
                        .node = !isempty(node) ? node : s->node_name,
                        .error = rec->type == SE_EVENT_STAGE_CHANGED ? NULL : se_log_record_get(rec, SE_FIELD_ERROR),
                };
                int r;

                if (!ev.error && rec->type != SE_EVENT_STAGE_CHANGED)
                        ev.error = se_log_record_get(rec, "MESSAGE");
                r = hooks_run(s->hooks_dir, &ev, hook_timeout(s), &observer.hooks_budget, NULL);
                if (r < 0)
                        se_log_warning_errno(r, "cannot read hooks-dir %s: %m", s->hooks_dir);
        }
        if (have_facts && !isempty(s->metrics_file) && write_metrics(s, &f, &e) < 0)
                se_log_warning("%s", se_error_message(&e));
        se_error_done(&e);
        se_facts_done(&f);
}

_public_ void se_fleet_observer_install(const se_settings *s) {
        observer.settings = s;
        observer.have_progress = false;
        /* however many hooks hang, the hook's own deadline (the timeout setting) is never reached
         * through them: a failing fleet hook never blocks the start */
        observer.hooks_budget = MAX(s->timeout_usec / 4, 1000u);
        se_event_set_observer(observe, NULL);
}

_public_ void se_fleet_observer_remove(void) {
        se_event_set_observer(NULL, NULL);
        observer.settings = NULL;
}

_public_ int se_fleet_metrics_refresh(const se_settings *s, se_error *e) {
        se_facts f = {};
        int r;

        if (isempty(s->metrics_file))
                return 0;
        r = se_facts_read(s, (int64_t) time(NULL), &f, e);
        if (r < 0)
                return r;
        r = write_metrics(s, &f, e);
        se_facts_done(&f);
        return r;
}
