/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libsecrets-encrypt: the public API. Everything the hook and the helper need lives here. */

#include "se-error.h"
#include "se-util.h"
#include "se-trust.h"
#include "se-config.h"
#include "se-envelope.h"
#include "se-store.h"
#include "se-reencrypt.h"
#include "se-cluster.h"
#include "se-etcd.h"
#include "se-settings.h"
#include "se-state.h"
#include "se-rotation.h"
#include "se-status.h"
#include "se-event.h"
#include "se-hook.h"
#include "se-ops.h"
#include "se-key-archive.h"
