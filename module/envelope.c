/* TEMPORARY STUB — replaced by the envelope work. */
#include "macro.h"
#include "se-envelope.h"
_public_ int se_transformer_new(const se_config *c, const char *gr, se_transformer **ret, se_error *e) {
        return se_error_set(e, -EOPNOTSUPP, "not implemented");
}
_public_ se_transformer *se_transformer_free(se_transformer *t) {
        return NULL;
}
_public_ int se_transformer_read(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size, se_buf *out,
                                 se_read_info *ret_info, se_error *e) {
        return -EOPNOTSUPP;
}
_public_ int se_transformer_write(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size, se_buf *out,
                                  se_error *e) {
        return -EOPNOTSUPP;
}
_public_ bool se_transformer_is_current(const se_transformer *t, const uint8_t *in, size_t in_size) {
        return false;
}
_public_ int se_transformer_write_with_iv(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size,
                                          const uint8_t *iv, size_t iv_size, se_buf *out, se_error *e) {
        return -EOPNOTSUPP;
}
_public_ int se_key_secret_generate(char **ret_secret) {
        return -EOPNOTSUPP;
}
_public_ int se_key_name_new(se_provider_type t, bool first, time_t now, char **ret) {
        return -EOPNOTSUPP;
}
