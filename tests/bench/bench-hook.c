/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hook latency when there is nothing to do (issue 6): secrets-encrypt-hook on an up-to-date
 * single-server state directory, beside /bin/true, both spawned the same way. Prints medians.
 * Target: under 5 ms extra. A benchmark, not a test: `make bench`.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "secrets-encrypt.h"

extern char **environ;

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t run_once(char *const argv[]) {
        posix_spawn_file_actions_t fa;
        uint64_t t0 = se_now_usec(CLOCK_MONOTONIC);
        pid_t pid;
        int status;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
                fprintf(stderr, "cannot run %s\n", argv[0]);
                exit(1);
        }
        posix_spawn_file_actions_destroy(&fa);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "%s failed (status %d)\n", argv[0], status);
                exit(1);
        }
        return se_now_usec(CLOCK_MONOTONIC) - t0;
}

static uint64_t median(char *const argv[], unsigned n) {
        uint64_t *t = calloc(n, sizeof(uint64_t)), m;

        for (unsigned i = 0; i < n; i++)
                t[i] = run_once(argv);
        qsort(t, n, sizeof(uint64_t), cmp_u64);
        m = t[n / 2];
        free(t);
        return m;
}

/* Instructions executed (callgrind): repeatable whatever else the machine is doing. */
static long long instructions(const char *cmd) {
        char *line = NULL, *full;
        size_t n = 0;
        long long v = -1;
        FILE *f;

        if (asprintf(&full, "valgrind --tool=callgrind --callgrind-out-file=/dev/null %s 2>&1 >/dev/null", cmd) < 0)
                return -1;
        f = popen(full, "r");
        free(full);
        if (!f)
                return -1;
        while (getline(&line, &n, f) > 0) {
                char *c = strstr(line, "Collected : ");
                if (c)
                        v = strtoll(c + strlen("Collected : "), NULL, 10);
        }
        free(line);
        pclose(f);
        return v;
}

int main(void) {
        const char *b = getenv("SE_BUILD") ?: "build";
        unsigned n = getenv("SE_BENCH_QUICK") ? 50 : 300;
        char *dir, *settings, *hook, yaml[1024];
        uint64_t t_hook, t_true;

        char tmpl[] = "/tmp/se-bench-hook.XXXXXX";

        dir = mkdtemp(tmpl);
        if (!dir || asprintf(&settings, "%s/config.yaml", dir) < 0 || asprintf(&hook, "%s/secrets-encrypt-hook", b) < 0)
                return 1;
        snprintf(yaml, sizeof(yaml), "state-dir: %s/cred\nnode-name: bench\ndatastore-endpoint: sqlite://%s/state.db\n",
                 dir, dir);
        if (se_write_file_atomic(settings, yaml, strlen(yaml), 0600) < 0)
                return 1;
        setenv("SECRETS_ENCRYPT_CONFIG", settings, 1);

        {
                char *const argv_hook[] = { hook, NULL };
                char *const argv_true[] = { (char *) "/bin/true", NULL };

                (void) run_once(argv_hook); /* first start: generates the config */
                (void) median(argv_true, 20); /* warm up */
                t_true = median(argv_true, n);
                t_hook = median(argv_hook, n);
        }
        printf("hook, nothing to do (SQLite, %u runs): median %.2f ms\n", n, t_hook / 1000.0);
        printf("/bin/true                     : median %.2f ms\n", t_true / 1000.0);
        printf("extra                         : %.2f ms (target < 5 ms)\n",
               t_hook > t_true ? (t_hook - t_true) / 1000.0 : 0.0);
        {
                long long i_hook = instructions(hook), i_true = instructions("/bin/true");

                if (i_hook > 0 && i_true > 0)
                        printf("instructions (callgrind)      : hook %lld, /bin/true %lld\n", i_hook, i_true);
        }
        {
                char *cmd;
                if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0) {
                        (void) !system(cmd);
                        free(cmd);
                }
        }
        free(settings);
        free(hook);
        return 0;
}
