/* format: turns one event into one output record (a line without its newline).
 * One module per format (format_raw.c, format_stix.c, ...), all behind this interface. */
#ifndef SF_FORMAT_H
#define SF_FORMAT_H

#include "config/cfg.h"
#include "core/event.h"
#include "core/util.h"

typedef struct sf_format {
    const char *name; /* value of a sink's "format:" key */
    const char *desc;
    const char *cfg_key; /* sink key holding this format's options ("stix", "cef"...), or NULL */
    const sf_cfg_option *options; /* table for cfg_key's map (NULL if none) */
    size_t cfg_size;              /* size of the struct 'options' fills */
    /* cfg: struct filled by options (defaults applied), or NULL if cfg_size == 0.
     * Returns 0 or negative (err filled). */
    int (*init)(const void *cfg, void **state, char *err, size_t errlen);
    /* Appends one record for ev to out (no trailing newline). Returns 0, or negative with err
     * filled when the event cannot be encoded (it goes to dead letters; others continue). */
    int (*encode)(void *state, const sf_event *ev, sf_buf *out, char *err, size_t errlen);
    void (*destroy)(void *state);
    /* records are exactly the event's own bytes (raw): never rewritten, and the pipeline's
     * jobs borrow ev->raw as the record instead of a copy (pages hold half the memory) */
    bool keep_bytes;
} sf_format;

const sf_format *sf_format_find(const char *name);
/* f->encode, then (unless f->keep_bytes) invalid UTF-8 in what it appended is replaced with
 * U+FFFD, so JSON records stay valid JSON (RFC 8259 requires UTF-8) and text records valid
 * text; *replaced (optional) gets how many bytes were replaced. */
int sf_format_encode(const sf_format *f, void *state, const sf_event *ev, sf_buf *out,
                     size_t *replaced, char *err, size_t errlen);
/* NULL-terminated list of every format (for docs and validation messages). */
const sf_format *const *sf_format_all(void);

#endif
