/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/*
 * Redaction by field (module/base/redact.c): in text that may echo a YAML or JSON file, the value
 * of every field named like key material ("secret", in any case, its name quoted or escaped or
 * not) is found whatever its form: quoted with escapes, a block scalar (| or >) with its
 * more-indented lines, a plain value with its continuation lines, a flow collection, an alias
 * (with the value of its anchor). Errs on the side of too much.
 */

typedef struct se_redact_span {
        size_t start, end; /* [start, end) */
} se_redact_span;

/* The values in d (size bytes, NUL bytes allowed), in order and without overlaps. *ret is
 * malloc'd (NULL when there is none). -E2BIG when the text uses more than 64 aliases as values:
 * the caller then shows none of it. */
int se_redact_find(const char *d, size_t size, se_redact_span **ret, size_t *ret_n);
/* Masks every byte of those values but line breaks with '*', in place (all of the text when they
 * cannot be found). Returns the number of values masked. */
size_t se_redact_fields(char *text);
