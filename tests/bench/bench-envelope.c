/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Envelope throughput (not a test; `make bench`): values/s for one 1 KiB value encrypted and
 * decrypted per iteration, per provider, on one core, beside `openssl speed -evp aes-256-cbc`
 * from the same run (encryption only, so roughly twice our per-value work).
 *
 *   SE_BENCH_SECONDS=N   time per provider (default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "macro.h"
#include "secrets-encrypt.h"

#define VALUE_SIZE 1024
#define DSKEY "/registry/secrets/default/bench"

/* CPU time of this single-threaded process: a per-core rate even on a busy machine */
static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static se_config *config(const char *provider, const char *secret) {
        se_config *c = se_config_new();
        se_resource_config *rc;
        se_key_list *l;
        se_provider *p;

        if (!c || !(c->resources = calloc(1, sizeof(*rc))))
                abort();
        c->n_resources = 1;
        rc = &c->resources[0];
        if (!(rc->resources = calloc(1, sizeof(char *))) || !(rc->providers = calloc(2, sizeof(se_provider))))
                abort();
        rc->resources[0] = strdup("secrets");
        rc->n_resources = 1;
        rc->n_providers = 2;
        p = &rc->providers[0];
        rc->providers[1].identity = true;
        if (streq(provider, "identity")) {
                p->identity = true;
                return c;
        }
        if (!(l = calloc(1, sizeof(*l))) || !(l->keys = calloc(1, sizeof(se_key))))
                abort();
        l->n_keys = 1;
        l->keys[0].name = strdup("benchkey");
        l->keys[0].secret = strdup(secret);
        if (streq(provider, "aescbc"))
                p->aescbc = l;
        else if (streq(provider, "aesgcm"))
                p->aesgcm = l;
        else
                p->secretbox = l;
        return c;
}

/* fresh = a new transformer (key decode, cipher setup) per value, to show what reuse saves */
static double run(const char *provider, const char *secret, double seconds, bool fresh) {
        se_config *c = config(provider, secret);
        se_transformer *t = NULL;
        uint8_t value[VALUE_SIZE];
        se_buf enc = {}, dec = {};
        unsigned long n = 0;
        double start, el;

        RAND_bytes(value, sizeof(value));
        memcpy(value, "k8s\0", 4);
        if (se_transformer_new(c, "secrets", &t, NULL) < 0)
                abort();
        start = now();
        do {
                for (int i = 0; i < 256; i++) {
                        if (fresh) {
                                se_transformer_free(t);
                                if (se_transformer_new(c, "secrets", &t, NULL) < 0)
                                        abort();
                        }
                        if (se_transformer_write(t, DSKEY, value, sizeof(value), &enc, NULL) < 0 ||
                            se_transformer_read(t, DSKEY, enc.data, enc.len, &dec, NULL, NULL) < 0 ||
                            dec.len != sizeof(value))
                                abort();
                        n++;
                }
                el = now() - start;
        } while (el < seconds);

        se_buf_free(&enc);
        se_buf_free(&dec);
        se_transformer_free(t);
        se_config_free(c);
        return (double) n / el;
}

/* openssl speed prints "AES-256-CBC  936551.54k" (1000s of bytes/s for 1024-byte blocks). */
static double openssl_speed(void) {
        FILE *p = popen("openssl speed -evp aes-256-cbc -seconds 1 -bytes 1024 2>/dev/null", "r");
        char line[512];
        double k = -1;

        if (!p)
                return -1;
        while (fgets(line, sizeof(line), p))
                if (startswith(line, "AES-256-CBC") || startswith(line, "aes-256-cbc"))
                        (void) sscanf(line + 11, " %lfk", &k);
        pclose(p);
        return k;
}

int main(void) {
        static const struct {
                const char *label, *provider, *secret;
        } cases[] = {
                { "aescbc-128", "aescbc", "c2VjcmV0IGlzIHNlY3VyZQ==" },
                { "aescbc-256", "aescbc", "e0/+tts8FS254BZimFZWtUsOCOUDSkvzB72PyimMlkY=" },
                { "aesgcm-128", "aesgcm", "c2VjcmV0IGlzIHNlY3VyZQ==" },
                { "aesgcm-256", "aesgcm", "e0/+tts8FS254BZimFZWtUsOCOUDSkvzB72PyimMlkY=" },
                { "secretbox", "secretbox", "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=" },
                { "identity", "identity", NULL },
        };
        const char *env = getenv("SE_BENCH_SECONDS");
        double seconds = env ? atof(env) : 1.0, k;

        if (seconds <= 0)
                seconds = 1.0;
        printf("envelope: 1 KiB value, encrypt+decrypt per iteration, one thread, %.1f CPU-s each\n", seconds);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                printf("  %-28s %12.0f values/s\n", cases[i].label, run(cases[i].provider, cases[i].secret, seconds,
                                                                      false));
        printf("  %-28s %12.0f values/s\n", "aescbc-256 new transformer", 0.0 + run("aescbc", cases[1].secret,
                                                                                      seconds, true));
        k = openssl_speed();
        if (k > 0)
                printf("  %-28s %12.0f blocks/s (%.0f MB/s, encrypt only)\n", "openssl speed aes-256-cbc 1K",
                       k * 1000.0 / 1024.0, k / 1000.0);
        else
                printf("  openssl speed: not available\n");
        return 0;
}
