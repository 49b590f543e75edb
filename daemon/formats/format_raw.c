/* format raw: the event object exactly as the API sent it. */
#include "formats/format.h"

static int raw_encode(void *state, const sf_event *ev, sf_buf *out, char *err, size_t errlen)
{
    (void)state;
    (void)err;
    (void)errlen;
    return sf_buf_append(out, ev->raw, ev->raw_len);
}

const sf_format sf_format_raw = {
    .name = "raw",
    .desc = "The event object exactly as the API sent it (byte-faithful, all fields kept).",
    .encode = raw_encode,
    .keep_bytes = true,
};
