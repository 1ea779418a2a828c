/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "macro.h"
#include "se-hook.h"
#include "se-util.h"
#include "unit-internal.h"

typedef struct job_wait {
        const char *job;
        char *result;
} job_wait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        job_wait *w = userdata;
        const char *path = NULL, *unit = NULL, *result = NULL;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->job && path && streq(path, w->job) && !w->result)
                w->result = strdup(result ? result : "unknown");
        return 0;
}

/* The manager's private socket works without a D-Bus daemon (as systemctl uses it as root). */
int se_unit_connect(bool user, sd_bus **ret) {
        _cleanup_free_ char *addr = NULL;
        const char *runtime = secure_getenv("XDG_RUNTIME_DIR");
        sd_bus *bus = NULL;
        int r;

        if (user && !runtime)
                return -ENXIO;
        if (asprintf(&addr, "unix:path=%s/systemd/private", user ? runtime : "/run") < 0)
                return -ENOMEM;
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, addr);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                sd_bus_unref(bus);
                if (user)
                        return r;
                return sd_bus_open_system(ret);
        }
        *ret = bus;
        return 0;
}

_public_ int se_unit_restart(const char *unit, bool user, uint64_t timeout_usec, se_error *e) {
        sd_bus_error err = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        job_wait w = {};
        uint64_t deadline;
        char *job = NULL;
        int r;

        r = se_unit_connect(user, &bus);
        if (r < 0) /* whatever the socket said, systemd is unavailable (exit 69) */
                return se_error_set(e, r == -ENOMEM ? r : -ENOTCONN, "cannot connect to the %s service manager: %s",
                                    user ? "user" : "system", strerror(-r));

        r = sd_bus_match_signal(bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, &w);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "Subscribe", &err, NULL, NULL);
        if (r < 0) {
                r = se_error_set(e, r, "cannot subscribe to systemd job events: %s",
                                 err.message ? err.message : strerror(-r));
                goto finish;
        }

        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "RestartUnit", &err, &reply, "ss", unit, "replace");
        if (r < 0) {
                r = se_error_set(e, r, "cannot restart %s: %s", unit, err.message ? err.message : strerror(-r));
                goto finish;
        }
        r = sd_bus_message_read(reply, "o", &w.job);
        if (r < 0) {
                r = se_error_set(e, r, "cannot restart %s: unexpected reply from systemd", unit);
                goto finish;
        }
        job = strdup(w.job);
        w.job = job;
        if (!job) {
                r = se_error_set(e, -ENOMEM, "out of memory");
                goto finish;
        }

        deadline = se_now_usec(CLOCK_MONOTONIC) + (timeout_usec ? timeout_usec : 600ULL * 1000000ULL);
        while (!w.result) {
                uint64_t now = se_now_usec(CLOCK_MONOTONIC);

                if (now >= deadline) {
                        r = se_error_set(e, -ETIME, "timed out waiting for %s to restart", unit);
                        goto finish;
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        r = se_error_set(e, r, "lost the connection to systemd: %s", strerror(-r));
                        goto finish;
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0 && r != -EINTR) {
                        r = se_error_set(e, r, "lost the connection to systemd: %s", strerror(-r));
                        goto finish;
                }
        }

        if (!streq(w.result, "done")) {
                _cleanup_free_ char *path = NULL, *result = NULL;
                sd_bus_message *m = NULL;
                const char *p = NULL;

                /* The job only says "failed"; the unit's Result says why (exit-code, start-limit-hit…). */
                if (sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "GetUnit", NULL, &m, "s", unit) >= 0 &&
                    sd_bus_message_read(m, "o", &p) >= 0 && (path = strdup(p)))
                        (void) sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path,
                                                          "org.freedesktop.systemd1.Service", "Result", NULL, &result);
                sd_bus_message_unref(m);
                r = se_error_set(e, -ENOEXEC,
                                 "restarting %s failed (job result: %s, unit result: %s); see `systemctl%s status "
                                 "%s` and `journalctl%s -u %s -x`",
                                 unit, w.result, result ? result : "unknown", user ? " --user" : "", unit,
                                 user ? " --user" : "", unit);
        } else
                r = 0;
finish:
        free(w.result);
        free(job);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&err);
        sd_bus_flush_close_unref(bus);
        return r;
}

_public_ int se_manager_reload(bool user, se_error *e) {
        sd_bus_error err = SD_BUS_ERROR_NULL;
        sd_bus *bus = NULL;
        int r;

        r = se_unit_connect(user, &bus);
        if (r < 0)
                return se_error_set(e, r == -ENOMEM ? r : -ENOTCONN, "cannot connect to the %s service manager: %s",
                                    user ? "user" : "system", strerror(-r));
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Reload", &err, NULL, NULL);
        if (r < 0)
                r = se_error_set(e, r, "systemd daemon-reload failed: %s", err.message ? err.message : strerror(-r));
        sd_bus_error_free(&err);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? r : 0;
}
