/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store-cas ENDPOINT PREFIX COMMAND
 *
 * A compare-and-swap batch with a writer in between, for the SQL store tests: reads the current
 * values under PREFIX (one page of at most 1000), runs COMMAND (sh -c; another client changing
 * some of those keys), then writes every key read, value "cas-<i>", at the revision it was read
 * at, in one se_store_update() batch. Prints one line per key, "KEY written NEW-ID" or
 * "KEY conflict", then "written N"; exits 0 when the batch itself succeeded.
 *
 *   STORE_CAS_READ_AHEAD=1  the page is read through se_store_read_ahead() (on the backend's
 *                           second connection), as the re-encryption reads its pages
 *   STORE_CAS_VALUE_SIZE=N  each value "cas-<i>" padded with '.' to N bytes (a value the server
 *                           compresses)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-store.h"

int main(int argc, char **argv) {
        se_store *s = NULL;
        se_kv_list l = {};
        se_kv_update *u;
        se_error e = SE_ERROR_NULL;
        const char *pad = getenv("STORE_CAS_VALUE_SIZE");
        int value_size = pad ? MAX(atoi(pad), 0) : 0;
        char **values;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: store-cas ENDPOINT PREFIX COMMAND\n");
                return 64;
        }
        if (se_store_open(&(se_store_options){.endpoint = argv[1], .require_data = true}, &s, &e) < 0) {
                fprintf(stderr, "store-cas: %s\n", se_error_message(&e));
                return 1;
        }
        if (getenv("STORE_CAS_READ_AHEAD"))
                se_store_read_ahead(s, argv[2], NULL, 1000);
        if (se_store_range(s, argv[2], NULL, 1000, &l, &e) < 0) {
                fprintf(stderr, "store-cas: %s\n", se_error_message(&e));
                return 1;
        }
        if (system(argv[3]) != 0) {
                fprintf(stderr, "store-cas: the writer failed\n");
                return 1;
        }

        u = calloc(MAX(l.n_items, 1u), sizeof(*u));
        values = calloc(MAX(l.n_items, 1u), sizeof(*values));
        if (!u || !values)
                return 1;
        for (size_t i = 0; i < l.n_items; i++) {
                char head[32];
                size_t n = (size_t) snprintf(head, sizeof(head), "cas-%zu", i), size = MAX(n, (size_t) value_size);

                values[i] = malloc(size + 1);
                if (!values[i])
                        return 1;
                memset(values[i], '.', size);
                memcpy(values[i], head, n);
                values[i][size] = '\0';
                u[i] = (se_kv_update){.key = l.items[i].key,
                                      .value = (const uint8_t *) values[i],
                                      .value_size = strlen(values[i]),
                                      .expected_mod_revision = l.items[i].mod_revision};
        }
        r = se_store_update(s, u, l.n_items, &e);
        if (r < 0) {
                fprintf(stderr, "store-cas: %s\n", se_error_message(&e));
                return 1;
        }
        for (size_t i = 0; i < l.n_items; i++)
                if (u[i].conflict)
                        printf("%s conflict\n", u[i].key);
                else
                        printf("%s written %" PRId64 "\n", u[i].key, u[i].new_revision);
        printf("written %d\n", r);

        for (size_t i = 0; i < l.n_items; i++)
                free(values[i]);
        free(values);
        free(u);
        se_kv_list_done(&l);
        se_error_done(&e);
        se_store_close(s);
        return 0;
}
