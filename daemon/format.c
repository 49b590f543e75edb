#include "format.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Every format module exports one sf_format; add new ones here. */
extern const sf_format sf_format_raw;
extern const sf_format sf_format_stix;
extern const sf_format sf_format_stix21;
extern const sf_format sf_format_cef;
extern const sf_format sf_format_leef;

static const sf_format *const formats[] = {
    &sf_format_raw, &sf_format_stix, &sf_format_stix21, &sf_format_cef, &sf_format_leef, NULL,
};

const sf_format *sf_format_find(const char *name)
{
    for (size_t i = 0; name && formats[i]; i++)
        if (strcmp(formats[i]->name, name) == 0)
            return formats[i];
    return NULL;
}

const sf_format *const *sf_format_all(void)
{
    return formats;
}

int sf_format_encode(const sf_format *f, void *state, const sf_event *ev, sf_buf *out,
                     size_t *replaced, char *err, size_t errlen)
{
    size_t start = out->len;
    int rc = f->encode(state, ev, out, err, errlen);
    if (replaced)
        *replaced = 0;
    if (rc || f->keep_bytes)
        return rc;
    int n = sf_utf8_sanitize(out, start);
    if (n < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (replaced)
        *replaced = (size_t)n;
    return 0;
}
