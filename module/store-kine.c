/* TEMPORARY STUB — replaced by the datastore work. */
#include "macro.h"
#include "store-internal.h"
static int stub_open(const se_store_options *o, void **ret_impl, se_error *e) {
        return se_error_set(e, -EOPNOTSUPP, "not implemented");
}
const se_store_ops se_store_kine_ops = { .open = stub_open };
