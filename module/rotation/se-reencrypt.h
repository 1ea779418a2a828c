/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se-config.h"
#include "se-error.h"
#include "se-store.h"

/*
 * Re-encryption of stored values with the config's write key, the read-only verify pass, and the
 * prune gate. All three stream the store page by page: memory does not grow with the number of
 * values.
 */

#define SE_REENCRYPT_DEFAULT_PREFIX    "/registry/secrets/"
#define SE_REENCRYPT_DEFAULT_RESOURCE  "secrets"
#define SE_REENCRYPT_DEFAULT_PAGE      500u
#define SE_REENCRYPT_DEFAULT_BATCH     500u
#define SE_REENCRYPT_DEFAULT_MAX_PATHS 100u
#define SE_REENCRYPT_CHECKPOINT_FILE   "reencrypt.checkpoint"

typedef struct se_reencrypt_progress {
        uint64_t done;      /* values finished, including those finished before a resume */
        uint64_t total;     /* current values under the prefixes when this run started */
        double rate;        /* values per second in this run */
        uint64_t rewritten; /* written back under the write key */
        uint64_t skipped;   /* already under the write key, left alone */
        uint64_t conflicts; /* a newer write won the compare-and-swap; left as written */
        bool final;         /* the last call of a successful run */
} se_reencrypt_progress;

/* A negative return aborts the run with that errno (the checkpoint stays for a resume). */
typedef int (*se_reencrypt_progress_fn)(const se_reencrypt_progress *p, void *userdata);

typedef struct se_reencrypt_options {
        const char *const *prefixes;       /* NULL-terminated; NULL = { SE_REENCRYPT_DEFAULT_PREFIX } */
        const char *resource;              /* group resource for the transformer; NULL = "secrets" */
        const char *state_dir;             /* where the checkpoint lives; NULL = no checkpoint */
        const char *config_hash;           /* checkpoint identity of the config; NULL = derived from it */
        size_t page_size;                  /* values per read; 0 = SE_REENCRYPT_DEFAULT_PAGE */
        size_t batch_size;                 /* updates per store transaction; 0 = SE_REENCRYPT_DEFAULT_BATCH */
        double rate_limit;                 /* values per second; 0 = unlimited */
        uint64_t checkpoint_interval_usec; /* least time between checkpoint writes; 0 = every batch */
        bool collect_unreadable;           /* go on past undecryptable values and list them, not stop */
        /* When set, only values whose bytes start with one of these (NULL-terminated) are
         * rewritten, except under strict_prefixes, where every value is: the rotated entry's own
         * keys in a walk over resources other entries may cover. */
        const char *const *owned_value_prefixes;
        const char *const *strict_prefixes;
        size_t max_unreadable_paths; /* listed paths; 0 = SE_REENCRYPT_DEFAULT_MAX_PATHS */
        /* Values the run leaves as they are (already current, not its own, unreadable) and whose
         * bytes start with one of these (NULL-terminated) are counted in result.watched_left: the
         * keys a prune will remove (see the removal check in safety.c). */
        const char *const *watch_value_prefixes;
        se_reencrypt_progress_fn progress;
        void *userdata;
} se_reencrypt_options;

/* Revisions first..last, both included. */
typedef struct se_revision_range {
        int64_t first, last;
} se_revision_range;

/* At most this many ranges of written revisions are listed (16 bytes each). */
#define SE_REENCRYPT_MAX_WRITTEN_RANGES 4096u

typedef struct se_reencrypt_result {
        uint64_t total;
        uint64_t done;
        uint64_t rewritten;
        uint64_t skipped;
        uint64_t conflicts;
        uint64_t unreadable;     /* only with collect_unreadable */
        char **unreadable_paths; /* first max_unreadable_paths of them */
        size_t n_unreadable_paths;
        bool resumed; /* started after a checkpoint of an earlier run */
        uint64_t elapsed_usec;
        /* The store's revision before this run read anything (se_store_revision()); 0 when it has
         * none or the run resumed an earlier one (whose start this process did not see). */
        int64_t watermark;
        uint64_t left;         /* values this run read and left as they were */
        uint64_t watched_left; /* of those, values under one of watch_value_prefixes */
        /* The revisions of the rows this run wrote, ascending (a batch is one range on kine); rows
         * past SE_REENCRYPT_MAX_WRITTEN_RANGES ranges are not listed. */
        se_revision_range *written;
        size_t n_written;
} se_reencrypt_result;

/*
 * Rewrites every value under the prefixes that is not under the write key, with compare-and-swap
 * on the revision read. A conflict means someone wrote a newer value: it is re-read, left alone if
 * current and re-encrypted otherwise; a newer value is never overwritten. Resumes after the
 * checkpoint in state_dir when it was written for the same config and prefixes; removes it when
 * the pass completes.
 * Errors: -ENOKEY naming the key path of a value no configured key can read (unless collecting),
 * -EOPNOTSUPP for KMS-encrypted values, store errnos as the store returns them.
 * With collect_unreadable the run completes and returns 0; check ret->unreadable.
 */
int se_reencrypt(se_store *s, const se_config *c, const se_reencrypt_options *o, se_reencrypt_result *ret,
                 se_error *e);
void se_reencrypt_result_done(se_reencrypt_result *r);
/* How far the unfinished re-encryption in state_dir got, from its checkpoint (read without the
 * lock: the file is replaced atomically). -ENOENT when there is none; *ret_total is 0 when the
 * checkpoint does not say. */
int se_reencrypt_checkpoint_progress(const char *state_dir, uint64_t *ret_done, uint64_t *ret_total);

typedef struct se_verify_options {
        const char *const *prefixes; /* as for se_reencrypt */
        const char *resource;
        size_t page_size;
        size_t max_unreadable_paths;
        bool all_resources; /* also every encrypted value elsewhere under /registry/ */
} se_verify_options;

typedef struct se_verify_count {
        se_provider_type provider; /* SE_PROVIDER_IDENTITY for plaintext */
        char *key_name;            /* key name, KMS provider name, or NULL for identity */
        uint64_t count;
} se_verify_count;

typedef struct se_verify_report {
        uint64_t total;          /* values under the prefixes (secrets) */
        uint64_t other_values;   /* all_resources: encrypted values elsewhere under /registry/ */
        se_verify_count *counts; /* in order of first appearance */
        size_t n_counts;
        uint64_t identity;    /* plaintext values (read by the identity provider) */
        uint64_t kms;         /* KMS values: counted by provider name, not decrypted */
        uint64_t not_current; /* values not under the write key */
        uint64_t unreadable;
        char **unreadable_paths; /* the first max_unreadable_paths */
        size_t n_unreadable_paths;
} se_verify_report;

/* Read-only pass over every value under the prefixes with c's read path. Unreadable values are
 * counted, not fatal: the return is 0 unless the store or memory failed. */
int se_verify(se_store *s, const se_config *c, const se_verify_options *o, se_verify_report *ret, se_error *e);
void se_verify_report_done(se_verify_report *r);

/*
 * The gate before a key is removed: every value must be readable with config_after_prune (the
 * config as it would be without the key). -ENOKEY naming the first value that still needs a key
 * being removed, and how many do, otherwise; the report (when given) is filled on success only.
 */
int se_prune_check(se_store *s, const se_config *config_after_prune, const se_verify_options *o, se_verify_report *ret,
                   se_error *e);

/* Counts the current values under key_prefix whose bytes start with one of value_prefixes (e.g.
 * "k8s:enc:aescbc:v1:NAME:"), and names the first: the complete scan before a key is removed. */
int se_scan_value_prefixes(se_store *s, const char *key_prefix, const char *const *value_prefixes, uint64_t *ret_count,
                           char **ret_first_key, se_error *e);
