/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "store-internal.h"

/* A whole batch goes to the SQL servers as one statement that returns a row for each key it wrote
 * (RETURNING); which update or create a returned row belongs to is found here, by the revision it
 * superseded or by its key, so that every other write of the statement is a conflict. */

int se_sql_batch_init(se_sql_batch *b, se_kv_update *u, size_t n, bool creates) {
        *b = (se_sql_batch){.u = u, .creates = creates};
        b->order = calloc(MAX(n, 1u), sizeof(size_t));
        if (!b->order)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if ((u[i].expected_mod_revision == 0) == creates)
                        b->order[b->n++] = i;
        return 0;
}

static int cmp_batch(const void *a, const void *c, void *userdata) {
        const se_sql_batch *b = userdata;
        const se_kv_update *x = &b->u[*(const size_t *) a], *y = &b->u[*(const size_t *) c];

        if (b->creates)
                return strcmp(x->key, y->key);
        return x->expected_mod_revision < y->expected_mod_revision
                       ? -1
                       : x->expected_mod_revision > y->expected_mod_revision;
}

void se_sql_batch_results_begin(se_sql_batch *b, size_t from, size_t to) {
        b->from = from;
        b->to = to;
        qsort_r(b->order + from, to - from, sizeof(size_t), cmp_batch, b);
        for (size_t j = from; j < to; j++) {
                b->u[b->order[j]].conflict = true;
                b->u[b->order[j]].new_revision = 0;
        }
}

size_t se_sql_batch_find(const se_sql_batch *b, const char *key, int64_t prev) {
        size_t lo = b->from, hi = b->to;
        const se_kv_update *w;

        if (b->creates && !key)
                return SIZE_MAX;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const se_kv_update *m = &b->u[b->order[mid]];
                int c = b->creates ? strcmp(m->key, key)
                                   : (m->expected_mod_revision < prev ? -1 : m->expected_mod_revision > prev);
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo >= b->to)
                return SIZE_MAX;
        w = &b->u[b->order[lo]];
        return (b->creates ? streq(w->key, key) : w->expected_mod_revision == prev) ? b->order[lo] : SIZE_MAX;
}

bool se_sql_batch_written(se_sql_batch *b, const char *key, int64_t prev, int64_t id) {
        size_t i = se_sql_batch_find(b, key, prev);

        if (i == SIZE_MAX || !b->u[i].conflict)
                return false;
        b->u[i].conflict = false;
        b->u[i].new_revision = id;
        return true;
}

void se_sql_batch_done(se_sql_batch *b) {
        free(b->order);
        *b = (se_sql_batch){};
}
