/* libFuzzer target: bytes -> sf_page_parse (API page or bare array), with and without limits
 * (and with drop_trees: trees built again on demand);
 * every parsed event's accessors are exercised. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const sf_page *p)
{
    for (size_t i = 0; i < p->n; i++) {
        const sf_event *ev = &p->events[i];
        if (!ev->id || !ev->raw || strlen(ev->raw) > ev->raw_len)
            abort();
        (void)sf_event_str(ev, "name");
        (void)sf_event_get(ev, "content");
        (void)sf_event_field(ev, "proc.name");
        (void)sf_event_label(ev, "kubernetes.pod.name");
        (void)sf_event_severity07(ev);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    static const sf_parse_limits lims[] = {{0, 0, false}, {512, 4, false}, {0, 0, true}};
    for (size_t k = 0; k < sizeof lims / sizeof lims[0]; k++) {
        sf_page p;
        memset(&p, 0x5a, sizeof p); /* the parser must not rely on a zeroed output */
        int rc = sf_page_parse((const char *)data, size, &lims[k], &p, err, sizeof err);
        if (rc == 0) {
            if (lims[k].max_events && p.n > lims[k].max_events)
                abort();
            for (size_t i = 0; lims[k].max_event_size && i < p.n; i++)
                if (p.events[i].raw_len > lims[k].max_event_size)
                    abort();
            walk(&p);
            sf_page_free(&p);
        } else if (memchr(err, 0, sizeof err) == NULL) {
            abort();
        }
    }
    return 0;
}
