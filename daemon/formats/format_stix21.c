/* format stix21: real STIX 2.1 bundle per event: identity, observed-data with object_refs, and
 * every cyber observable as a top-level object with spec_version and a deterministic id.
 * Mapping in stix_common.c; this file only applies the 2.1 naming and id rules. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "formats/format.h"
#include "formats/stix_common.h"

#define ID_LEN 320

/* STIX 2.1 namespace for SCO ids (spec §2.9). */
static const sf_uuid stix_sco_ns = {{0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c, 0x9c, 0x01,
                                     0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7}};

/* ID-contributing properties (spec §6), sorted (canonical JSON orders keys). Types absent
 * here (process, the custom x-* objects) have none: their ids derive from the event id. */
static const struct {
    const char *type;
    const char *props[6];
} contributing[] = {
    {"directory", {"path"}},
    {"file", {"extensions", "hashes", "name", "parent_directory_ref"}},
    {"ipv4-addr", {"value"}},
    {"ipv6-addr", {"value"}},
    {"mac-addr", {"value"}},
    /* also start/end, which this mapping never produces */
    {"network-traffic", {"dst_port", "dst_ref", "protocols", "src_port", "src_ref"}},
    {"user-account", {"account_login", "account_type", "user_id"}},
};

/* 2.0 property names that 2.1 renames (to == NULL: dropped; process.name is not a 2.1
 * property and is carried by the image file's name). */
static const struct {
    const char *type, *from, *to;
} renames[] = {
    {"process", "binary_ref", "image_ref"},
    {"process", "name", NULL},
    {"x-ibm-finding", "severity", "x_severity"}, /* "severity" is reserved on SCOs */
};

/* STIX 2.1 requires every SCO to carry at least one property of its own type or of one of its
 * extensions: custom x_ properties do not count, and the OASIS schemas reject such an object.
 * When the mapping leaves a spec-defined SCO with nothing but custom properties (a process with
 * only x_sid or x_parent_names, a user-account with only x_loginuid), the object declares the
 * forwarder's toplevel-property-extension, which defines exactly these properties: they stay
 * where they are and become extension properties. The definition is published in
 * docs/stix21-extension-definition.json, not put in bundles: the OASIS bundle schema rejects
 * every extension-definition object (not among its types, and its custom-object branch is a
 * oneOf that such an object matches twice). */
static const char *const toplevel_props[] = {"x_loginuid", "x_parent_names", "x_sid"};
#define TOPLEVEL_EXT_ID "extension-definition--c92595b4-c218-5f24-a13a-213d6ca1bd3b"

typedef struct enc21 {
    const sx_state *st;
    const sf_event *ev;
    const sx_graph *g;
    cJSON *obj[SX_NSLOTS]; /* built objects (moved into the bundle at the end) */
    char id[SX_NSLOTS][ID_LEN];
} enc21;

static const char *renamed(const char *type, const char *prop, bool *drop)
{
    *drop = false;
    for (size_t i = 0; i < SF_ARRAY_LEN(renames); i++)
        if (!strcmp(renames[i].type, type) && !strcmp(renames[i].from, prop)) {
            *drop = renames[i].to == NULL;
            return renames[i].to;
        }
    return prop;
}

/* Canonical JSON (sorted keys, no whitespace) of the ID-contributing properties. */
static int sco_id(const char *type, const cJSON *o, char *out)
{
    const char *const *props = NULL;
    for (size_t i = 0; i < SF_ARRAY_LEN(contributing); i++)
        if (!strcmp(contributing[i].type, type))
            props = contributing[i].props;
    cJSON *c = props ? cJSON_CreateObject() : NULL;
    if (props && !c)
        return -ENOMEM;
    for (size_t i = 0; props && i < 6 && props[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, props[i]);
        cJSON *d = v ? cJSON_Duplicate(v, 1) : NULL;
        if (v && (!d || !cJSON_AddItemToObject(c, props[i], d))) {
            cJSON_Delete(d);
            cJSON_Delete(c);
            return -ENOMEM;
        }
    }
    if (!c || !c->child) { /* nothing contributes: derive from the event id */
        cJSON_Delete(c);
        return 1;
    }
    char *canon = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!canon)
        return -ENOMEM;
    sf_uuid u;
    char us[SF_UUID_STR_LEN + 1];
    int rc = sf_uuid_v5(&stix_sco_ns, canon, strlen(canon), &u);
    cJSON_free(canon);
    if (rc)
        return rc;
    sf_uuid_format(&u, us);
    snprintf(out, ID_LEN, "%s--%s", type, us);
    return 0;
}

static bool toplevel_prop(const char *name)
{
    for (size_t i = 0; i < SF_ARRAY_LEN(toplevel_props); i++)
        if (!strcmp(toplevel_props[i], name))
            return true;
    return false;
}

/* A spec-defined SCO (not x-*) whose properties are all custom ones the extension defines. (A
 * custom property the mapping gains must be added to toplevel_props, or such an object stays
 * invalid: tests/integration/test_stix21_schema.py would say so.) */
static bool only_custom(const char *type, const cJSON *o)
{
    if (!strncmp(type, "x-", 2) || !o->child)
        return false;
    for (const cJSON *p = o->child; p; p = p->next)
        if (!toplevel_prop(p->string))
            return false;
    return true;
}

/* extensions: {"<TOPLEVEL_EXT_ID>": {"extension_type": "toplevel-property-extension"}} */
static int declare_toplevel(cJSON *o)
{
    cJSON *exts = cJSON_AddObjectToObject(o, "extensions");
    cJSON *decl = exts ? cJSON_AddObjectToObject(exts, TOPLEVEL_EXT_ID) : NULL;
    if (!decl || sx_add_str(decl, "extension_type", "toplevel-property-extension"))
        return -ENOMEM;
    return 0;
}

static int build(enc21 *e, sx_slot s, int depth);

static int add_ref(enc21 *e, cJSON *o, const char *type, const sx_ref *r, int depth)
{
    bool drop;
    const char *name = renamed(type, r->prop, &drop);
    if (drop || !sx_present(e->g, r->target))
        return 0;
    int rc = build(e, r->target, depth + 1);
    if (rc)
        return rc;
    const char *id = e->id[r->target];
    cJSON *v = r->list ? cJSON_CreateStringArray(&id, 1) : cJSON_CreateString(id);
    if (!v || !cJSON_AddItemToObject(o, name, v)) {
        cJSON_Delete(v);
        return -ENOMEM;
    }
    return 0;
}

/* Builds slot s (and, first, every object it references: ids of referenced objects contribute
 * to the referencing object's id). */
static int build(enc21 *e, sx_slot s, int depth)
{
    if (e->obj[s] || depth > SX_NSLOTS)
        return e->obj[s] ? 0 : -ELOOP;
    const sx_obj *src = &e->g->o[s];
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src->props, "type"));
    cJSON *o = cJSON_CreateObject(), *head = NULL;
    int rc = -ENOMEM;
    if (!o)
        goto fail;
    const cJSON *p;
    cJSON_ArrayForEach(p, src->props)
    {
        bool drop;
        const char *name = renamed(type, p->string, &drop);
        if (drop || !strcmp(p->string, "type"))
            continue;
        cJSON *d = cJSON_Duplicate(p, 1);
        if (!d || !cJSON_AddItemToObject(o, name, d)) {
            cJSON_Delete(d);
            goto fail;
        }
    }
    for (size_t r = 0; r < src->nrefs; r++)
        if ((rc = add_ref(e, o, type, &src->refs[r], depth)) != 0)
            goto fail;
    if (only_custom(type, o) && (rc = declare_toplevel(o)) != 0)
        goto fail;
    rc = sco_id(type, o, e->id[s]);
    if (rc == 1)
        rc = sx_derived_id(e->st, type, sx_slot_name(s), e->ev, e->id[s], ID_LEN);
    if (rc)
        goto fail;
    /* type, spec_version and id first, then the properties */
    rc = -ENOMEM;
    if (!(head = cJSON_CreateObject()) || sx_add_str(head, "type", type) ||
        sx_add_str(head, "spec_version", "2.1") || sx_add_str(head, "id", e->id[s]))
        goto fail;
    while (o->child) {
        cJSON *it = cJSON_DetachItemViaPointer(o, o->child);
        if (!cJSON_AddItemToObject(head, it->string, it)) {
            cJSON_Delete(it);
            goto fail;
        }
    }
    cJSON_Delete(o);
    e->obj[s] = head;
    return 0;
fail:
    cJSON_Delete(o);
    cJSON_Delete(head);
    return rc ? rc : -ENOMEM;
}

static int stix21_init(const void *cfg, void **state, char *err, size_t errlen)
{
    return sx_state_init(cfg, "2.1", state, err, errlen);
}

static int stix21_encode(void *state, const sf_event *ev, sf_buf *out, char *err, size_t errlen)
{
    enc21 e = {.st = state, .ev = ev};
    sx_graph g;
    char bundle_id[ID_LEN], od_id[ID_LEN];
    int rc = sx_graph_build(ev, &g, err, errlen);
    if (rc)
        return rc;
    e.g = &g;
    cJSON *bundle = cJSON_CreateObject(), *objs = NULL, *od = NULL, *refs = NULL;
    for (size_t i = 0; i < SX_NSLOTS; i++)
        if (sx_present(&g, (sx_slot)i) && (rc = build(&e, (sx_slot)i, 0)) != 0)
            goto done;
    if ((rc = sx_derived_id(e.st, "bundle", "bundle", ev, bundle_id, sizeof bundle_id)) ||
        (rc = sx_derived_id(e.st, "observed-data", "observed-data", ev, od_id, sizeof od_id)))
        goto done;
    rc = -ENOMEM;
    if (!bundle || sx_add_str(bundle, "type", "bundle") || sx_add_str(bundle, "id", bundle_id) ||
        !(objs = cJSON_AddArrayToObject(bundle, "objects")))
        goto done;
    cJSON *ident = sx_identity_json(e.st);
    if (!ident || !cJSON_AddItemToArray(objs, ident)) {
        cJSON_Delete(ident);
        goto done;
    }
    if (!(od = cJSON_CreateObject()) || !cJSON_AddItemToArray(objs, od)) {
        cJSON_Delete(od);
        goto done;
    }
    if (sx_add_str(od, "type", "observed-data") || sx_add_str(od, "spec_version", "2.1") ||
        sx_add_str(od, "id", od_id) || sx_add_str(od, "created_by_ref", e.st->ident.id) ||
        sx_add_str(od, "created", g.created) || sx_add_str(od, "modified", g.created) ||
        sx_add_str(od, "first_observed", g.observed) ||
        sx_add_str(od, "last_observed", g.observed) ||
        !cJSON_AddNumberToObject(od, "number_observed", 1) ||
        !(refs = cJSON_AddArrayToObject(od, "object_refs")))
        goto done;
    for (size_t i = 0; i < SX_NSLOTS; i++) {
        if (!e.obj[i])
            continue;
        cJSON *r = cJSON_CreateString(e.id[i]);
        if (!r || !cJSON_AddItemToArray(refs, r)) {
            cJSON_Delete(r);
            goto done;
        }
        if (!cJSON_AddItemToArray(objs, e.obj[i]))
            goto done;
        e.obj[i] = NULL;
    }
    rc = sx_emit(bundle, out);
    bundle = NULL;
done:
    for (size_t i = 0; i < SX_NSLOTS; i++)
        cJSON_Delete(e.obj[i]);
    cJSON_Delete(bundle);
    sx_graph_free(&g);
    if (rc == -ENOMEM && err && errlen)
        snprintf(err, errlen, "out of memory");
    return rc;
}

const sf_format sf_format_stix21 = {
    .name = "stix21",
    .desc = "STIX 2.1 bundle per event: identity, observed-data with object_refs, top-level "
            "observables with deterministic ids (validates against the OASIS schemas).",
    .cfg_key = "stix",
    .options = sx_stix_options,
    .cfg_size = sizeof(sx_stix_cfg),
    .init = stix21_init,
    .encode = stix21_encode,
    .destroy = sx_state_destroy,
};
