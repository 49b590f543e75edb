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

/* One member of a 2.1 object: a graph property, a reference (an id, or a list of one), or the
 * toplevel-property-extension declaration. */
typedef struct member {
    const char *name;
    const sx_node *value; /* property */
    const char *ref;      /* reference: the target's id */
    bool list;
    bool ext; /* the extension declaration */
} member;

#define MAX_MEMBERS 24

typedef struct obj21 {
    const char *type;
    member m[MAX_MEMBERS];
    size_t n;
    bool built;
} obj21;

typedef struct enc21 {
    const sx_state *st;
    const sf_event *ev;
    const sx_graph *g;
    obj21 obj[SX_NSLOTS];
    char id[SX_NSLOTS][ID_LEN];
    sf_buf canon; /* scratch: canonical JSON of ID-contributing properties */
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

static void put_ext_decl(sf_buf *out)
{
    sf_buf_puts(out,
                "{\"" TOPLEVEL_EXT_ID "\":{\"extension_type\":\"toplevel-property-extension\"}}");
}

static void put_member_value(sf_buf *out, const sx_graph *g, const member *m)
{
    if (m->ext) {
        put_ext_decl(out);
    } else if (m->value) {
        sx_put_value(out, g, m->value);
    } else if (m->list) {
        sf_buf_putc(out, '[');
        sx_put_str(out, m->ref);
        sf_buf_putc(out, ']');
    } else {
        sx_put_str(out, m->ref);
    }
}

static const member *find_member(const obj21 *o, const char *name)
{
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->m[i].name, name))
            return &o->m[i];
    return NULL;
}

/* Canonical JSON (sorted keys, no whitespace) of the ID-contributing properties. 1 when none
 * contributes (the id derives from the event id). */
static int sco_id(enc21 *e, const char *type, const obj21 *o, char *out)
{
    const char *const *props = NULL;
    for (size_t i = 0; i < SF_ARRAY_LEN(contributing); i++)
        if (!strcmp(contributing[i].type, type))
            props = contributing[i].props;
    if (!props)
        return 1;
    sf_buf *c = &e->canon;
    sf_buf_reset(c);
    sf_buf_putc(c, '{');
    bool any = false;
    for (size_t i = 0; i < 6 && props[i]; i++) {
        const member *m = find_member(o, props[i]);
        if (!m)
            continue;
        if (any)
            sf_buf_putc(c, ',');
        sx_put_key(c, props[i]);
        put_member_value(c, e->g, m);
        any = true;
    }
    sf_buf_putc(c, '}');
    if (!any)
        return 1;
    if (sf_buf_error(c))
        return -ENOMEM;
    sf_uuid u;
    char us[SF_UUID_STR_LEN + 1];
    int rc = sf_uuid_v5(&stix_sco_ns, c->data, c->len, &u);
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
static bool only_custom(const char *type, const obj21 *o)
{
    if (!strncmp(type, "x-", 2) || !o->n)
        return false;
    for (size_t i = 0; i < o->n; i++)
        if (!toplevel_prop(o->m[i].name))
            return false;
    return true;
}

static member *add_member(obj21 *o)
{
    if (o->n == MAX_MEMBERS)
        return NULL;
    member *m = &o->m[o->n++];
    memset(m, 0, sizeof *m);
    return m;
}

static int build(enc21 *e, sx_slot s, int depth);

static int add_ref(enc21 *e, obj21 *o, const char *type, const sx_ref *r, int depth)
{
    bool drop;
    const char *name = renamed(type, r->prop, &drop);
    if (drop || !sx_present(e->g, r->target))
        return 0;
    int rc = build(e, r->target, depth + 1);
    if (rc)
        return rc;
    member *m = add_member(o);
    if (!m)
        return -E2BIG;
    m->name = name;
    m->ref = e->id[r->target];
    m->list = r->list;
    return 0;
}

/* Builds slot s (and, first, every object it references: ids of referenced objects contribute
 * to the referencing object's id). */
static int build(enc21 *e, sx_slot s, int depth)
{
    obj21 *o = &e->obj[s];
    if (o->built || depth > SX_NSLOTS)
        return o->built ? 0 : -ELOOP;
    const sx_node *src = sx_node_at(e->g, e->g->o[s].node);
    const sx_node *t = sx_member(e->g, src, "type");
    const char *type = t ? t->str : NULL;
    o->type = type;
    o->n = 0;
    int rc;
    for (const sx_node *p = sx_node_at(e->g, src->child); p; p = sx_node_at(e->g, p->next)) {
        bool drop;
        const char *name = renamed(type, p->name, &drop);
        if (drop || !strcmp(p->name, "type"))
            continue;
        member *m = add_member(o);
        if (!m)
            return -E2BIG;
        m->name = name;
        m->value = p;
    }
    const sx_obj *so = &e->g->o[s];
    for (size_t r = 0; r < so->nrefs; r++)
        if ((rc = add_ref(e, o, type, &so->refs[r], depth)) != 0)
            return rc;
    if (only_custom(type, o)) {
        member *m = add_member(o);
        if (!m)
            return -E2BIG;
        m->name = "extensions";
        m->ext = true;
    }
    rc = sco_id(e, type, o, e->id[s]);
    if (rc == 1)
        rc = sx_derived_id(e->st, type, sx_slot_name(s), e->ev, e->id[s], ID_LEN);
    if (rc)
        return rc;
    o->built = true;
    return 0;
}

/* type, spec_version and id first, then the members */
static void put_obj21(sf_buf *out, const enc21 *e, sx_slot s)
{
    const obj21 *o = &e->obj[s];
    sf_buf_puts(out, ",{\"type\":");
    sx_put_str(out, o->type);
    sf_buf_puts(out, ",\"spec_version\":\"2.1\",\"id\":");
    sx_put_str(out, e->id[s]);
    for (size_t i = 0; i < o->n; i++) {
        sf_buf_putc(out, ',');
        sx_put_key(out, o->m[i].name);
        put_member_value(out, e->g, &o->m[i]);
    }
    sf_buf_putc(out, '}');
}

static int stix21_init(const void *cfg, void **state, char *err, size_t errlen)
{
    return sx_state_init(cfg, "2.1", state, err, errlen);
}

static int stix21_encode(void *state, const sf_event *ev, sf_buf *out, char *err, size_t errlen)
{
    enc21 enc, *e = &enc; /* large and only partly used: not zeroed */
    sx_graph g;
    char bundle_id[ID_LEN], od_id[ID_LEN];
    e->st = state;
    e->ev = ev;
    e->canon = (sf_buf){0};
    for (size_t i = 0; i < SX_NSLOTS; i++)
        e->obj[i].built = false;
    int rc = sx_graph_build(ev, &g, err, errlen);
    if (rc)
        return rc;
    e->g = &g;
    for (size_t i = 0; i < SX_NSLOTS; i++)
        if (sx_present(&g, (sx_slot)i) && (rc = build(e, (sx_slot)i, 0)) != 0)
            goto done;
    if ((rc = sx_derived_id(e->st, "bundle", "bundle", ev, bundle_id, sizeof bundle_id)) ||
        (rc = sx_derived_id(e->st, "observed-data", "observed-data", ev, od_id, sizeof od_id)))
        goto done;
    size_t start = out->len;
    sf_buf_puts(out, "{\"type\":\"bundle\",\"id\":");
    sx_put_str(out, bundle_id);
    sf_buf_puts(out, ",\"objects\":[");
    sf_buf_append(out, e->st->identity_json, e->st->identity_len);
    sf_buf_puts(out, ",{\"type\":\"observed-data\",\"spec_version\":\"2.1\",\"id\":");
    sx_put_str(out, od_id);
    sf_buf_puts(out, ",\"created_by_ref\":");
    sx_put_str(out, e->st->ident.id);
    sf_buf_puts(out, ",\"created\":");
    sx_put_str(out, g.created);
    sf_buf_puts(out, ",\"modified\":");
    sx_put_str(out, g.created);
    sf_buf_puts(out, ",\"first_observed\":");
    sx_put_str(out, g.observed);
    sf_buf_puts(out, ",\"last_observed\":");
    sx_put_str(out, g.observed);
    sf_buf_puts(out, ",\"number_observed\":1,\"object_refs\":[");
    bool first = true;
    for (size_t i = 0; i < SX_NSLOTS; i++) {
        if (!e->obj[i].built)
            continue;
        if (!first)
            sf_buf_putc(out, ',');
        sx_put_str(out, e->id[i]);
        first = false;
    }
    sf_buf_puts(out, "]}");
    for (size_t i = 0; i < SX_NSLOTS; i++)
        if (e->obj[i].built)
            put_obj21(out, e, (sx_slot)i);
    sf_buf_puts(out, "]}");
    if ((rc = sf_buf_error(out)) != 0 && out->data && out->len >= start) {
        out->len = start;
        out->data[start] = '\0';
    }
done:
    sf_buf_free(&e->canon);
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
