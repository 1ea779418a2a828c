/* TEMPORARY STUB — replaced by the validation work. */
#include "macro.h"
#include "se-config.h"
_public_ int se_config_validate_kube(const se_config *c, bool reload, se_error *e) {
        return se_error_set(e, -EOPNOTSUPP, "not implemented");
}
_public_ int se_config_validate(const se_config *c, bool reload, se_error *e) {
        return se_config_validate_kube(c, reload, e);
}
