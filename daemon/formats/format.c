#include "formats/format.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Every format module exports one sf_format named sf_format_<name>; the list of them is
 * generated from SF_FORMATS in CMakeLists.txt (add a format there). */
#define SF_FORMAT(f) extern const sf_format sf_format_##f;
#include "sf_format_list.h"
#undef SF_FORMAT

static const sf_format *const formats[] = {
#define SF_FORMAT(f) &sf_format_##f,
#include "sf_format_list.h"
#undef SF_FORMAT
    NULL,
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
    if (!f->keep_bytes && sf_event_load(ev) != 0) { /* the tree the format reads */
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
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
