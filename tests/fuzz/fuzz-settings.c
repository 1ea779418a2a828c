/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the settings file (/etc/secrets-encrypt/config.yaml): arbitrary bytes
 * through se_settings_load(). It reads a path (O_NOFOLLOW), so each input goes to a private file
 * first. A file that loads must leave valid settings; a refusal must be -EINVAL (or -ENOMEM,
 * -EFBIG) with a message naming the file.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "se-settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void) {
        (void) unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        se_error e = SE_ERROR_NULL;
        se_settings s;
        int fd, r;

        if (!path[0]) {
                snprintf(path, sizeof(path), "/tmp/fuzz-settings-%d.yaml", (int) getpid());
                atexit(remove_file); /* libFuzzer ends with exit() */
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        if (size > 0 && write(fd, data, size) != (ssize_t) size)
                abort();
        close(fd);

        if (se_settings_init(&s) < 0)
                return 0;
        r = se_settings_load(&s, path, false, &e);
        if (r >= 0) {
                /* what a loaded file promises the rest of the program */
                if (!s.state_dir || !s.node_name || !s.provider || !s.datastore_endpoint || !s.unit)
                        abort();
                if (s.reencrypt_rate < 0)
                        abort();
        } else if ((r != -EINVAL && r != -ENOMEM && r != -EFBIG && r != -EBADMSG) || !e.message ||
                   !strstr(e.message, path))
                abort();
        se_error_done(&e);
        se_settings_done(&s);
        return 0;
}
