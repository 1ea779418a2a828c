/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Work that must outlive the terminal runs as a transient service (systemd-run's way): the caller
 * follows it, and may leave it running. */
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "macro.h"
#include "se-hook.h"
#include "unit-internal.h"

#define SYSTEMD_DEST    "org.freedesktop.systemd1"
#define SYSTEMD_PATH    "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"

_public_ int se_unit_start_transient(const char *name, const char *description, char *const *argv,
                                     char *const *environment, const char *working_directory, int stdout_fd,
                                     int stderr_fd, bool user, se_error *e) {
        sd_bus_error err = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus *bus = NULL;
        int r;

        r = se_unit_connect(user, &bus);
        if (r < 0)
                return se_error_set(e, r == -ENOMEM ? r : -ENOTCONN, "cannot connect to the %s service manager: %s",
                                    user ? "user" : "system", strerror(-r));
        /* a failed run stays loaded so its exit status can be read: clear it first */
        (void) sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "ResetFailedUnit", NULL, NULL, "s",
                                  name);
        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", name, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "Description", "s", description);
        /* a successful run is unloaded at once; a failed one stays until read (ResetFailedUnit) */
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "CollectMode", "s", "inactive");
        if (r >= 0 && working_directory)
                r = sd_bus_message_append(m, "(sv)", "WorkingDirectory", "s", working_directory);
        /* the caller relays the output, and may stop reading (then writes fail with EPIPE) */
        if (r >= 0 && stdout_fd >= 0)
                r = sd_bus_message_append(m, "(sv)", "StandardOutputFileDescriptor", "h", stdout_fd);
        if (r >= 0 && stderr_fd >= 0)
                r = sd_bus_message_append(m, "(sv)", "StandardErrorFileDescriptor", "h", stderr_fd);
        if (r >= 0 && environment && environment[0]) {
                r = sd_bus_message_open_container(m, 'r', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "Environment");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, (char **) environment);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "ExecStart");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sasb");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[0]);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char **) argv);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0);
        for (int i = 0; i < 4 && r >= 0; i++)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m); /* properties */
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0) {
                r = se_error_set(e, r, "cannot build the request to start %s: %s", name, strerror(-r));
                goto finish;
        }
        r = sd_bus_call(bus, m, 0, &err, &reply);
        if (r < 0)
                r = se_error_set(e, sd_bus_error_has_name(&err, "org.freedesktop.systemd1.UnitExists") ? -EBUSY : r,
                                 "cannot start %s: %s", name, err.message ? err.message : strerror(-r));
finish:
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&err);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? r : 0;
}

_public_ int se_unit_get_state(const char *name, bool user, char **ret_active_state, int *ret_exit_status,
                               se_error *e) {
        sd_bus_error err = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        char *state = NULL;
        const char *p = NULL;
        sd_bus *bus = NULL;
        int32_t status = 0;
        int r;

        r = se_unit_connect(user, &bus);
        if (r < 0)
                return se_error_set(e, r == -ENOMEM ? r : -ENOTCONN, "cannot connect to the %s service manager: %s",
                                    user ? "user" : "system", strerror(-r));
        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnit", &err, &reply, "s", name);
        if (r < 0) {
                r = sd_bus_error_has_name(&err, "org.freedesktop.systemd1.NoSuchUnit")
                            ? -ENOENT
                            : se_error_set(e, r, "cannot look up %s: %s", name, err.message ?: strerror(-r));
                goto finish;
        }
        r = sd_bus_message_read(reply, "o", &p);
        if (r >= 0 && !(path = strdup(p)))
                r = -ENOMEM;
        if (r >= 0)
                r = sd_bus_get_property_string(bus, SYSTEMD_DEST, path, "org.freedesktop.systemd1.Unit", "ActiveState",
                                               NULL, &state);
        if (r >= 0)
                (void) sd_bus_get_property_trivial(bus, SYSTEMD_DEST, path, "org.freedesktop.systemd1.Service",
                                                   "ExecMainStatus", NULL, 'i', &status);
        if (r < 0) {
                r = r == -ENOMEM ? se_error_set(e, r, "out of memory") : -ENOENT; /* unloaded meanwhile */
                goto finish;
        }
        *ret_active_state = state;
        *ret_exit_status = status;
        r = 0;
finish:
        sd_bus_message_unref(reply);
        sd_bus_error_free(&err);
        sd_bus_flush_close_unref(bus);
        return r;
}
