/* libFuzzer target: bytes -> sf_checkpoint_decode; a decoded checkpoint must re-encode and
 * decode to the same values (round trip), copy, and free cleanly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    sf_checkpoint cp;
    if (sf_checkpoint_decode((const char *)data, size, &cp, err, sizeof err) != 0)
        return 0;
    sf_buf out = {0};
    if (sf_checkpoint_encode(&cp, &out) == 0) {
        sf_checkpoint again;
        if (sf_checkpoint_decode(out.data, out.len, &again, err, sizeof err) != 0)
            abort(); /* what we write we must be able to read back */
        if (again.watermark_ns != cp.watermark_ns || again.in_window != cp.in_window ||
            again.nids != cp.nids)
            abort();
        if (cp.in_window && (again.win_from_ns != cp.win_from_ns ||
                             again.win_to_ns != cp.win_to_ns || again.win_low_ns != cp.win_low_ns))
            abort();
        if ((cp.cursor == NULL) != (again.cursor == NULL) ||
            (cp.cursor && strcmp(cp.cursor, again.cursor) != 0))
            abort();
        for (size_t i = 0; i < cp.nids; i++)
            if (strcmp(cp.ids[i].id, again.ids[i].id) != 0 || cp.ids[i].ts_ns != again.ids[i].ts_ns)
                abort();
        sf_checkpoint_free(&again);
    }
    sf_buf_free(&out);
    sf_checkpoint cpy;
    sf_checkpoint_init(&cpy);
    if (sf_checkpoint_copy(&cpy, &cp) == 0)
        sf_checkpoint_free(&cpy);
    sf_checkpoint_free(&cp);
    return 0;
}
