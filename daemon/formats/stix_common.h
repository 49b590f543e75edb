/* stix_common: the Sysdig event -> STIX mapping shared by the "stix" (2.0) and "stix21" formats.
 *
 * sx_graph_build() applies stix-shifter's per-event pre-processing and mapping (with the fixes
 * documented in docs/formats.md) and yields a small graph: one slot per kind of object, in a
 * fixed order, each with its non-reference properties (STIX 2.0 names) and its references to
 * other slots. The two formats only differ in how they serialise that graph. */
#ifndef SF_STIX_COMMON_H
#define SF_STIX_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "config/cfg.h"
#include "core/event.h"
#include "core/util.h"
#include "core/uuid.h"

/* Object slots; emission order is this order, whatever the input key order. */
typedef enum {
    SX_FINDING,
    SX_POLICY,
    SX_ASSET,
    SX_PROC,
    SX_DIR,
    SX_FILE,
    SX_PPROC,
    SX_PFILE,
    SX_USER,
    SX_CLOUD_PROVIDER,
    SX_CLOUD_RESOURCE,
    SX_MAC,
    SX_CLUSTER,
    SX_DEPLOYMENT,
    SX_NODE_IP,
    SX_SRC_IP,
    SX_DST_IP,
    SX_NETWORK,
    SX_NSLOTS
} sx_slot;

#define SX_MAX_REFS 4

typedef struct sx_ref {
    const char *prop; /* "binary_ref", "ip_refs", ... */
    sx_slot target;
    bool list; /* serialised as a one-element list */
} sx_ref;

/* A value of the graph, written straight to JSON (no cJSON tree: building, duplicating and
 * printing trees was most of a STIX record's cost). Strings are borrowed: from the event's
 * tree (alive while encoding), literals, or the graph's text. Nodes are indices into the
 * graph's node array; -1 is none. */
typedef enum { SX_STR, SX_NUM, SX_OBJ, SX_ARR } sx_kind;

typedef struct sx_node {
    const char *name; /* member name; NULL for array elements and slot objects */
    const char *str;  /* SX_STR */
    double num;       /* SX_NUM (written like cJSON writes a number) */
    sx_kind kind;
    int child, last, next; /* SX_OBJ / SX_ARR: first and last element; next sibling */
} sx_node;

typedef struct sx_obj {
    int node; /* SX_OBJ node: {"type":..., non-reference properties}; -1 = object absent */
    sx_ref refs[SX_MAX_REFS];
    size_t nrefs;
} sx_obj;

#define SX_INLINE_NODES 128

/* Built in place and not moved (nodes may point into it). */
typedef struct sx_graph {
    sx_obj o[SX_NSLOTS];
    sx_node *nodes; /* inline_nodes, or the heap once more are needed */
    size_t nnodes, cap;
    sx_node inline_nodes[SX_INLINE_NODES];
    char text[256]; /* computed strings (addresses, protocol) */
    size_t ntext;
    char observed[40]; /* event time, RFC 3339 with 9 fraction digits */
    char created[40];  /* event time, RFC 3339 with 3 fraction digits (created/modified) */
} sx_graph;

/* Human-readable slot name ("process", "parent-process"...): stable, used in derived ids. */
const char *sx_slot_name(sx_slot s);
static inline bool sx_present(const sx_graph *g, sx_slot s)
{
    return g->o[s].node >= 0;
}
static inline const sx_node *sx_node_at(const sx_graph *g, int i)
{
    return i >= 0 ? &g->nodes[i] : NULL;
}
/* The value of an object node's first member named name, or NULL. */
const sx_node *sx_member(const sx_graph *g, const sx_node *obj, const char *name);

/* Builds the graph. Returns 0, -EINVAL (event unusable: no timestamp; err filled) or -ENOMEM. */
int sx_graph_build(const sf_event *ev, sx_graph *g, char *err, size_t errlen);
void sx_graph_free(sx_graph *g);

/* Severity on STIX's 0..100 scale: integer (or integer string) 0..7 -> (10 - s) * 10, any other
 * integer clamped to 0..100; -1 when absent or not an integer. Shared by CEF and LEEF. */
int sx_severity100(const sf_event *ev);

/* ---- shared with the CEF and LEEF formats ---- */
typedef struct sx_endpoint {
    bool ok;
    bool v6;
    char ip[46]; /* canonical text form */
    int port;
} sx_endpoint;

/* fd.name "a:p->b:q" (outbound: a -> b) or "a:p<-b:q" (inbound: b -> a); IPv4, bracketed or
 * unbracketed IPv6 (then the last colon separates the port). Returns false when there is no
 * arrow; each side's .ok says whether it parsed. */
bool sx_fd_endpoints(const char *fd, sx_endpoint *src, sx_endpoint *dst);

/* The flat facts CEF/LEEF emit. Pointers borrow from the event (NULL when absent/empty). */
typedef struct sx_summary {
    const char *signature; /* content.policyId (as text) or the rule name */
    const char *rule, *category, *msg, *user, *uid, *proc, *pid, *container_id, *container_name,
        *image_repo, *image_tag, *cluster, *ns, *pod, *workload, *host, *proto;
    sx_endpoint src, dst;
    int severity100; /* sx_severity100() */
    char sigbuf[32];
} sx_summary;

void sx_summarize(const sf_event *ev, sx_summary *s);

/* ---- identity configuration (sink key "stix", shared by both STIX formats) ---- */
typedef struct sx_stix_cfg {
    char *id;
    char *name;
    char *identity_class;
    char *created;
    char *modified;
} sx_stix_cfg;

extern const sf_cfg_option sx_stix_options[];

/* Validated identity + helpers both STIX formats use. */
typedef struct sx_state {
    sx_stix_cfg ident;
    const char *spec_version; /* "2.0" or "2.1" */
    char *identity_json;      /* the identity object, as written in every bundle */
    size_t identity_len;
} sx_state;

int sx_state_init(const void *cfg, const char *spec_version, void **state, char *err,
                  size_t errlen);
void sx_state_destroy(void *state);
/* "<type>--<uuidv5>" derived from the event id, in the forwarder's namespace, distinct per
 * spec version and purpose. out >= 300 bytes. */
int sx_derived_id(const sx_state *st, const char *type, const char *purpose, const sf_event *ev,
                  char *out, size_t outlen);

/* ---- JSON writing: the bytes cJSON_PrintUnformatted wrote for the same values ---- */
void sx_put_str(sf_buf *out, const char *s); /* a string literal (stops at a NUL, like cJSON) */
void sx_put_num(sf_buf *out, double d);
/* "name": for a property name of the mapping (a plain ASCII literal: written as is) */
void sx_put_key(sf_buf *out, const char *name);
void sx_put_value(sf_buf *out, const sx_graph *g, const sx_node *n);
/* The identity object (spec_version added for 2.1), written once at init. */
void sx_put_identity(sf_buf *out, const sx_state *st);

#endif
