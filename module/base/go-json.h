/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "se-util.h"

/* Go's encoding/json string encoder and utf8 decoder (config-write.c), shared by everything that
 * must print JSON byte-compatible with kube-apiserver and k3s. */

/* Go's utf8.DecodeRuneInString: encoded length, or 1 with U+FFFD for invalid input. */
int se_go_utf8_decode(const char *s, size_t n, uint32_t *ret_rune);
/* Appends s as a JSON string exactly as Go's json.Marshal writes it (HTML-safe escaping). */
int se_go_json_append_string(se_buf *b, const char *s);
