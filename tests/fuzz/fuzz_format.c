/* libFuzzer target: bytes -> sf_event_parse -> every format's encode; converted formats must
 * produce valid UTF-8 whatever the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"

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
        if (sf_format_encode(*f, st, &ev, &out, NULL, err, sizeof err) == 0 && !(*f)->keep_bytes &&
            out.len) {
            sf_buf copy = {0};
            if (sf_buf_append(&copy, out.data, out.len) == 0 && sf_utf8_sanitize(&copy, 0) != 0)
                abort(); /* a converted record with invalid UTF-8 left in it */
            sf_buf_free(&copy);
        }
        if ((*f)->destroy)
            (*f)->destroy(st);
        sf_buf_free(&out);
    }
    sf_event_free(&ev);
    return 0;
}
