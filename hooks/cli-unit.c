/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `reencrypt` where systemd runs: the work runs in a transient service, so no terminal, SSH session
 * or pipe can stop it; this process relays its output and exit status, and Ctrl-C only detaches. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "macro.h"
#include "se-hook.h"

#define REENCRYPT_UNIT "secrets-encrypt-reencrypt.service"

static volatile sig_atomic_t detach;

static void close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        (void) close(fds[i]);
                        fds[i] = -1;
                }
}

static void on_detach(int sig) {
        detach = sig;
}

/* Copies what is there from fd to out; false at EOF or when the reader is gone. */
static bool relay(int fd, int out) {
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0)
                return errno == EINTR || errno == EAGAIN;
        if (n == 0)
                return false;
        for (ssize_t done = 0; done < n;) {
                ssize_t k = write(out, buf + done, (size_t) (n - done));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        break; /* our own reader left: drop it, keep draining the unit */
                done += k;
        }
        return true;
}

/* Whether to run the work in a transient unit: a service manager is there, the command runs in
 * none already, and nothing would have to be put on the unit's command line that must stay
 * secret (--token). */
static bool wanted(const cli *c) {
        const char *rt = getenv("XDG_RUNTIME_DIR");
        _cleanup_free_ char *priv = NULL;

        if (c->foreground || c->restart || c->settings.token || getenv("INVOCATION_ID") ||
            getenv("SECRETS_ENCRYPT_FOREGROUND") || !c->argv)
                return false;
        if (!c->user)
                return access("/run/systemd/system", F_OK) >= 0 && access("/run/systemd/private", F_OK) >= 0;
        return rt && asprintf(&priv, "%s/systemd/private", rt) >= 0 && access(priv, F_OK) >= 0;
}

int cli_reencrypt_in_unit(cli *c, bool *ret_used, se_error *e) {
        static const char *const pass_env[] = {"SECRETS_ENCRYPT_LOG_TARGET", "SECRETS_ENCRYPT_LOG_LEVEL"};
        char exe[PATH_MAX], cwd[PATH_MAX], *env[ELEMENTSOF(pass_env) + 1] = {}, **argv = NULL;
        _cleanup_free_ char *config = NULL;
        int out[2] = {-1, -1}, err[2] = {-1, -1}, r, n = 0, n_env = 0;
        struct sigaction sa = {.sa_handler = on_detach}, old_int, old_term, old_hup;
        bool open_out = true, open_err = true;
        char *state = NULL;
        int status = 0;
        ssize_t k;

        *ret_used = false;
        if (!wanted(c))
                return 0;
        k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (k <= 0 || !getcwd(cwd, sizeof(cwd)))
                return 0;
        exe[k] = 0;
        argv = calloc((size_t) c->argc + 4, sizeof(char *));
        if (!argv)
                return se_error_set(e, -ENOMEM, "out of memory");
        argv[n++] = exe;
        argv[n++] = (char *) "--foreground";
        if (c->settings_path) { /* SECRETS_ENCRYPT_CONFIG does not reach the unit */
                config = realpath(c->settings_path, NULL);
                argv[n++] = (char *) "--config";
                argv[n++] = config ?: (char *) c->settings_path;
        }
        for (int i = 1; i < c->argc; i++)
                argv[n++] = c->argv[i];
        for (size_t i = 0; i < ELEMENTSOF(pass_env); i++) {
                const char *v = getenv(pass_env[i]);

                if (v && asprintf(&env[n_env], "%s=%s", pass_env[i], v) >= 0)
                        n_env++;
        }
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                r = se_error_set(e, -errno, "cannot create a pipe: %m");
                goto finish;
        }
        r = se_unit_start_transient(REENCRYPT_UNIT, "secrets-encrypt reencrypt (started from a terminal)", argv, env,
                                    cwd, out[1], err[1], c->user, e);
        if (r == -ENOTCONN) { /* no manager after all: the work runs here */
                se_error_done(e);
                r = 0;
                goto finish;
        }
        if (r == -EBUSY) {
                se_error_done(e);
                r = se_error_set(e, -EBUSY,
                                 "a re-encryption is already running in %s: follow it with `journalctl%s -fu %s` or "
                                 "`secrets-encrypt status`",
                                 REENCRYPT_UNIT, c->user ? " --user" : "", REENCRYPT_UNIT);
        }
        if (r < 0)
                goto finish;
        *ret_used = true;
        close_fds(&out[1], 1);
        close_fds(&err[1], 1);

        /* the unit keeps running whatever happens to this terminal */
        (void) sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, &old_int);
        (void) sigaction(SIGTERM, &sa, &old_term);
        sa.sa_handler = SIG_IGN;
        (void) sigaction(SIGHUP, &sa, &old_hup);
        while ((open_out || open_err) && !detach) {
                struct pollfd p[2] = {{.fd = open_out ? out[0] : -1, .events = POLLIN},
                                      {.fd = open_err ? err[0] : -1, .events = POLLIN}};

                if (poll(p, 2, -1) < 0)
                        continue; /* EINTR: a signal, checked above */
                if (open_out && p[0].revents)
                        open_out = relay(out[0], STDOUT_FILENO);
                if (open_err && p[1].revents)
                        open_err = relay(err[0], STDERR_FILENO);
        }
        (void) sigaction(SIGINT, &old_int, NULL);
        (void) sigaction(SIGTERM, &old_term, NULL);
        (void) sigaction(SIGHUP, &old_hup, NULL);
        if (detach) {
                r = se_error_set(e, -ECANCELED,
                                 "detached: the re-encryption goes on in %s; follow it with `journalctl%s -fu %s` "
                                 "or `secrets-encrypt status`",
                                 REENCRYPT_UNIT, c->user ? " --user" : "", REENCRYPT_UNIT);
                goto finish;
        }

        /* both pipes closed: the process ended; its unit says how (up to 30 s for the manager) */
        for (int i = 0; i < 300; i++) {
                free(state);
                state = NULL;
                r = se_unit_get_state(REENCRYPT_UNIT, c->user, &state, &status, e);
                if (r == -ENOENT || (r >= 0 && (streq(state, "inactive") || streq(state, "failed"))))
                        break;
                if (r < 0)
                        goto finish;
                (void) usleep(100 * 1000);
        }
        if (r == -ENOENT || (state && streq(state, "inactive")))
                r = 0;
        else if (state && streq(state, "failed")) {
                /* its own message was relayed above: exit as it did, without a second line */
                c->exit_status = status > 0 && status < 200 ? status : SE_EXIT_FAILURE;
                r = -EIO;
        } else
                r = se_error_set(e, -ETIME, "%s did not finish: see `systemctl%s status %s`", REENCRYPT_UNIT,
                                 c->user ? " --user" : "", REENCRYPT_UNIT);
finish:
        free(state);
        for (int i = 0; i < n_env; i++)
                free(env[i]);
        free(argv);
        close_fds(out, 2);
        close_fds(err, 2);
        return r;
}
