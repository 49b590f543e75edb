/* libFuzzer target: bytes -> sf_event_parse -> every format's encode. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sf_event ev;
    char err[256];
    if (sf_event_parse((const char *)data, size, &ev, err, sizeof err) != 0)
        return 0;
    for (const sf_format *const *f = sf_format_all(); *f; f++) {
        void *st = NULL;
        sf_buf out = {0};
        if ((*f)->init && (*f)->init(NULL, &st, err, sizeof err) != 0)
            abort(); /* defaults must always initialise */
        (void)(*f)->encode(st, &ev, &out, err, sizeof err);
        if ((*f)->destroy)
            (*f)->destroy(st);
        sf_buf_free(&out);
    }
    sf_event_free(&ev);
    return 0;
}
