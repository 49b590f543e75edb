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

/* observed-data "objects": present slots numbered "0", "1", ... in slot order. */
static cJSON *objects_dict(const sx_graph *g)
{
    int key[SX_NSLOTS];
    int n = 0;
    char num[16], tgt[16];
    for (size_t i = 0; i < SX_NSLOTS; i++)
        key[i] = sx_present(g, (sx_slot)i) ? n++ : -1;
    cJSON *d = cJSON_CreateObject();
    if (!d)
        return NULL;
    for (size_t i = 0; i < SX_NSLOTS; i++) {
        const sx_obj *o = &g->o[i];
        if (key[i] < 0)
            continue;
        cJSON *c = cJSON_Duplicate(o->props, 1);
        snprintf(num, sizeof num, "%d", key[i]);
        if (!c || !cJSON_AddItemToObject(d, num, c)) {
            cJSON_Delete(c);
            goto oom;
        }
        for (size_t r = 0; r < o->nrefs; r++) {
            if (key[o->refs[r].target] < 0)
                continue;
            snprintf(tgt, sizeof tgt, "%d", key[o->refs[r].target]);
            cJSON *v = o->refs[r].list ? cJSON_CreateStringArray((const char *[]){tgt}, 1)
                                       : cJSON_CreateString(tgt);
            if (!v || !cJSON_AddItemToObject(c, o->refs[r].prop, v)) {
                cJSON_Delete(v);
                goto oom;
            }
        }
    }
    return d;
oom:
    cJSON_Delete(d);
    return NULL;
}

static int stix_encode(void *state, const sf_event *ev, sf_buf *out, char *err, size_t errlen)
{
    const sx_state *st = state;
    sx_graph g;
    char bundle_id[320], od_id[320];
    int rc = sx_graph_build(ev, &g, err, errlen);
    if (rc)
        return rc;
    cJSON *bundle = cJSON_CreateObject(), *objs = NULL, *od = NULL, *dict = NULL;
    rc = -ENOMEM;
    if (!bundle)
        goto done;
    if ((rc = sx_derived_id(st, "bundle", "bundle", ev, bundle_id, sizeof bundle_id)) ||
        (rc = sx_derived_id(st, "observed-data", "observed-data", ev, od_id, sizeof od_id)))
        goto done;
    rc = -ENOMEM;
    if (sx_add_str(bundle, "type", "bundle") || sx_add_str(bundle, "id", bundle_id) ||
        !(objs = cJSON_AddArrayToObject(bundle, "objects")) ||
        sx_add_str(bundle, "spec_version", "2.0"))
        goto done;
    cJSON *ident = sx_identity_json(st);
    if (!ident || !cJSON_AddItemToArray(objs, ident)) {
        cJSON_Delete(ident);
        goto done;
    }
    if (!(od = cJSON_CreateObject()) || !cJSON_AddItemToArray(objs, od)) {
        cJSON_Delete(od);
        goto done;
    }
    if (sx_add_str(od, "id", od_id) || sx_add_str(od, "type", "observed-data") ||
        sx_add_str(od, "created_by_ref", st->ident.id) || sx_add_str(od, "created", g.created) ||
        sx_add_str(od, "modified", g.created))
        goto done;
    if (!(dict = objects_dict(&g)) || !cJSON_AddItemToObject(od, "objects", dict)) {
        cJSON_Delete(dict);
        goto done;
    }
    if (sx_add_str(od, "first_observed", g.observed) ||
        sx_add_str(od, "last_observed", g.observed) ||
        !cJSON_AddNumberToObject(od, "number_observed", 1))
        goto done;
    rc = sx_emit(bundle, out);
    bundle = NULL;
done:
    cJSON_Delete(bundle);
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
