/* log: leveled, component-tagged logging to stderr, text or JSON lines.
 * Every registered secret is replaced by "***" in every line before it is written. */
#ifndef SF_LOG_H
#define SF_LOG_H

#include "core/util.h"

typedef enum { SF_LOG_DEBUG = 0, SF_LOG_INFO, SF_LOG_WARN, SF_LOG_ERROR } sf_log_level;
typedef enum { SF_LOG_TEXT = 0, SF_LOG_JSON } sf_log_format;

void sf_log_set_level(sf_log_level lvl);
void sf_log_set_format(sf_log_format fmt);
sf_log_level sf_log_get_level(void);
int sf_log_parse_level(const char *s, sf_log_level *out); /* "debug" "info" "warn" "error" */

/* Registers a secret (copied), whatever its length (a short one redacts more than it must,
 * which is the safe side); the empty string is ignored.
 * Returns 0 or -ENOMEM. */
int sf_log_add_secret(const char *secret);
void sf_log_clear_secrets(void);
/* Copies src into dst replacing every registered secret with "***". Returns 0 or -ENOMEM. */
int sf_log_redact(const char *src, sf_buf *dst);

void sf_log(sf_log_level lvl, const char *component, const char *fmt, ...) SF_PRINTF(3, 4);
void sf_vlog(sf_log_level lvl, const char *component, const char *fmt, va_list ap) SF_PRINTF(3, 0);

/* Counters of lines logged per level (for metrics). */
uint64_t sf_log_count(sf_log_level lvl);

#define SF_DEBUG(comp, ...)                                                                        \
    do {                                                                                           \
        if (sf_log_get_level() <= SF_LOG_DEBUG)                                                    \
            sf_log(SF_LOG_DEBUG, comp, __VA_ARGS__);                                               \
    } while (0)
#define SF_INFO(comp, ...) sf_log(SF_LOG_INFO, comp, __VA_ARGS__)
#define SF_WARN(comp, ...) sf_log(SF_LOG_WARN, comp, __VA_ARGS__)
#define SF_ERROR(comp, ...) sf_log(SF_LOG_ERROR, comp, __VA_ARGS__)

#endif
