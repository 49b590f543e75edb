/* format stix: STIX 2.0 bundle per event (identity + one observed-data), stix-shifter's
 * mapping with its bugs fixed (docs/formats.md). Mapping in stix_common.c. */
#include <errno.h>
#include <stdio.h>

#include "formats/format.h"
#include "formats/stix_common.h"

static int stix_init(const void *cfg, void **state, char *err, size_t errlen)
{
    return sx_state_init(cfg, "2.0", state, err, errlen);
}

/* pre, the decimal k (0..99: at most SX_NSLOTS objects), post */
static void put_num_key(sf_buf *out, int k, const char *pre, const char *post)
{
    char d[2] = {(char)('0' + k / 10), (char)('0' + k % 10)};
    sf_buf_puts(out, pre);
    sf_buf_append(out, k >= 10 ? d : d + 1, k >= 10 ? 2 : 1);
    sf_buf_puts(out, post);
}

/* observed-data "objects": present slots numbered "0", "1", ... in slot order, each with its
 * properties then its references (to present objects, by number). */
static void put_objects(sf_buf *out, const sx_graph *g)
{
    int key[SX_NSLOTS];
    int n = 0;
    for (size_t i = 0; i < SX_NSLOTS; i++)
        key[i] = sx_present(g, (sx_slot)i) ? n++ : -1;
    sf_buf_putc(out, '{');
    for (size_t i = 0; i < SX_NSLOTS; i++) {
        const sx_obj *o = &g->o[i];
        if (key[i] < 0)
            continue;
        put_num_key(out, key[i], key[i] ? ",\"" : "\"", "\":");
        const sx_node *obj = sx_node_at(g, o->node);
        sf_buf_putc(out, '{');
        for (const sx_node *c = sx_node_at(g, obj->child); c; c = sx_node_at(g, c->next)) {
            if (c != sx_node_at(g, obj->child))
                sf_buf_putc(out, ',');
            sx_put_key(out, c->name);
            sx_put_value(out, g, c);
        }
        for (size_t r = 0; r < o->nrefs; r++) {
            int t = key[o->refs[r].target];
            if (t < 0)
                continue;
            sf_buf_putc(out, ',');
            sx_put_key(out, o->refs[r].prop);
            if (o->refs[r].list)
                put_num_key(out, t, "[\"", "\"]");
            else
                put_num_key(out, t, "\"", "\"");
        }
        sf_buf_putc(out, '}');
    }
    sf_buf_putc(out, '}');
}

static int stix_encode(void *state, const sf_event *ev, sf_buf *out, char *err, size_t errlen)
{
    const sx_state *st = state;
    sx_graph g;
    char bundle_id[320], od_id[320];
    int rc = sx_graph_build(ev, &g, err, errlen);
    if (rc)
        return rc;
    if ((rc = sx_derived_id(st, "bundle", "bundle", ev, bundle_id, sizeof bundle_id)) ||
        (rc = sx_derived_id(st, "observed-data", "observed-data", ev, od_id, sizeof od_id)))
        goto done;
    size_t start = out->len;
    sf_buf_puts(out, "{\"type\":\"bundle\",\"id\":");
    sx_put_str(out, bundle_id);
    sf_buf_puts(out, ",\"objects\":[");
    sf_buf_append(out, st->identity_json, st->identity_len);
    sf_buf_puts(out, ",{\"id\":");
    sx_put_str(out, od_id);
    sf_buf_puts(out, ",\"type\":\"observed-data\",\"created_by_ref\":");
    sx_put_str(out, st->ident.id);
    sf_buf_puts(out, ",\"created\":");
    sx_put_str(out, g.created);
    sf_buf_puts(out, ",\"modified\":");
    sx_put_str(out, g.created);
    sf_buf_puts(out, ",\"objects\":");
    put_objects(out, &g);
    sf_buf_puts(out, ",\"first_observed\":");
    sx_put_str(out, g.observed);
    sf_buf_puts(out, ",\"last_observed\":");
    sx_put_str(out, g.observed);
    sf_buf_puts(out, ",\"number_observed\":1}],\"spec_version\":\"2.0\"}");
    if ((rc = sf_buf_error(out)) != 0 && out->data && out->len >= start) {
        out->len = start;
        out->data[start] = '\0';
    }
done:
    sx_graph_free(&g);
    if (rc == -ENOMEM && err && errlen)
        snprintf(err, errlen, "out of memory");
    return rc;
}

const sf_format sf_format_stix = {
    .name = "stix",
    .desc = "STIX 2.0 bundle per event (identity + observed-data), stix-shifter's Sysdig mapping "
            "with its bugs fixed; deterministic ids.",
    .cfg_key = "stix",
    .options = sx_stix_options,
    .cfg_size = sizeof(sx_stix_cfg),
    .init = stix_init,
    .encode = stix_encode,
    .destroy = sx_state_destroy,
};
