/* libFuzzer target: Kafka REST proxy answers -> sf_kr_classify.
 *
 * Input layout: 4 header bytes, then the response body.
 *   [0] bit0: api (v2/v3), bits1-2: flavour (auto/confluent/redpanda)
 *   [1] partition: 0xff -> -1 (not pinned), else value % 8
 *   [2] HTTP status index into a table of statuses (a transport error for the last entries;
 *       then bit3 of [0] says whether a 200 answer had started: a cut v3 stream)
 *   [3] records in the request: 1 + value % 64
 * Every record must get a valid status; the reason must be NUL-terminated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "sinks/kafka_rest_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 207, 400, 401, 403, 404, 408, 413, 415, 422,
                                429, 500, 502, 503, 504, 301, 0,   0,   0,   0};
static const int terrs[] = {0, SF_HTTP_ETIMEOUT, SF_HTTP_ECONNECT, SF_HTTP_ETOOBIG, SF_HTTP_EOTHER};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    int api = data[0] & 1 ? SF_KR_API_V3 : SF_KR_API_V2;
    int flavor = (data[0] >> 1) % 3;
    int64_t partition = data[1] == 0xff ? -1 : data[1] % 8;
    size_t si = data[2] % (sizeof statuses / sizeof statuses[0]);
    long status = statuses[si];
    int terr = status ? 0 : terrs[1 + data[2] % 4];
    if (terr && (data[0] & 8))
        status = 200; /* the answer cut part-way */
    size_t n = 1 + data[3] % 64;
    /* the body in its own exact-size allocation so ASan sees any over-read */
    size_t blen = size - 4;
    char *body = malloc(blen ? blen : 1);
    if (!body)
        return 0;
    memcpy(body, data + 4, blen);
    sf_deliv_status st[64];
    memset(st, 0x7f, sizeof st);
    char reason[256];
    memset(reason, 'x', sizeof reason);
    sf_kr_info info;
    size_t bad = sf_kr_classify(api, flavor, partition, status, terr, body, blen, n, st, reason,
                                sizeof reason, &info);
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (st[i] != SF_DELIV_OK && st[i] != SF_DELIV_RETRY && st[i] != SF_DELIV_REJECT)
            abort();
        cnt += st[i] != SF_DELIV_OK;
    }
    if (cnt != bad || bad > n)
        abort();
    if (bad && !memchr(reason, 0, sizeof reason))
        abort();
    free(body);
    return 0;
}
