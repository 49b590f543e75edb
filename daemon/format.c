#include "format.h"

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
