/* TEMPORARY STUB — replaced by the writer work. */
#include "macro.h"
#include "se-config.h"
_public_ int se_config_to_json(const se_config *c, char **ret, size_t *ret_size) {
        return -EOPNOTSUPP;
}
