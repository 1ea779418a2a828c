/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

/* A connection to the system manager (or with user, the calling user's), through its private
 * socket, else the bus. */
int se_unit_connect(bool user, sd_bus **ret);
