#include "format.h"

#include <string.h>

/* Every format module exports one sf_format; add new ones here. */
extern const sf_format sf_format_raw;

static const sf_format *const formats[] = {
    &sf_format_raw,
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
