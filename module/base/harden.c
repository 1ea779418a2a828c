/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "macro.h"
#include "se-util.h"

/*
 * Both programs hold keys (base64 in the config, raw in the ciphers): a crash, SIGQUIT or
 * gcore must not write them to disk. Not dumpable also keeps other users' ptrace and
 * /proc/PID/mem away; RLIMIT_CORE 0 covers a dump the kernel would still write to a file.
 */
_public_ int se_process_harden(void) {
        struct rlimit none = {0, 0};
        int r = 0;

        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                r = negative_errno();
        if (setrlimit(RLIMIT_CORE, &none) < 0 && r == 0)
                r = negative_errno();
        return r;
}

/* The pages of a long-lived key buffer stay out of any core dump (a core_pattern pipe ignores
 * RLIMIT_CORE). The advice covers whole pages, so neighbouring heap data is left out too. */
_public_ void se_dontdump(const void *p, size_t size) {
        long page = sysconf(_SC_PAGESIZE);
        uintptr_t start, end;

        if (!p || size == 0 || page <= 0)
                return;
        start = (uintptr_t) p & ~((uintptr_t) page - 1);
        end = ((uintptr_t) p + size + (uintptr_t) page - 1) & ~((uintptr_t) page - 1);
        (void) madvise((void *) start, end - start, MADV_DONTDUMP);
}
