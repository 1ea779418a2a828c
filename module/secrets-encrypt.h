/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libsecrets-encrypt: the public API. Everything the hook and the helper need lives here. */

#include "se-error.h"
#include "se-util.h"
#include "se-config.h"
#include "se-envelope.h"
#include "se-store.h"
