/* TEMPORARY STUB — replaced by the parser work. */
#include "macro.h"
#include "se-config.h"
_public_ int se_config_parse(const char *path, const void *data, size_t size, se_config **ret, se_error *e) {
        return se_error_set(e, -EOPNOTSUPP, "not implemented");
}
