/* stix_common: Sysdig event -> STIX object graph (see stix_common.h and docs/formats.md).
 * Over 600 lines on purpose: the one STIX mapping, field by field, shared by the 2.0 and 2.1
 * serialisers; keeping it in one place is what keeps them from drifting apart. */
#include "formats/stix_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/util.h"

/* ---- configuration ---- */

static const sf_cfg_option identity_options[] = {
    {.name = "id",
     .type = SF_OPT_STR,
     .def = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
     .desc = "STIX id of the identity that creates the observed-data (identity--<uuid>).",
     .offset = offsetof(sx_stix_cfg, id)},
    {.name = "name",
     .type = SF_OPT_STR,
     .def = "sysdig",
     .desc = "Identity name.",
     .offset = offsetof(sx_stix_cfg, name)},
    {.name = "identity_class",
     .type = SF_OPT_STR,
     .def = "events",
     .desc = "Identity class.",
     .offset = offsetof(sx_stix_cfg, identity_class)},
    {.name = "created",
     .type = SF_OPT_STR,
     .def = "2023-08-01T06:06:52.305Z",
     .desc = "Identity creation time (RFC 3339, UTC).",
     .offset = offsetof(sx_stix_cfg, created)},
    {.name = "modified",
     .type = SF_OPT_STR,
     .def = "2023-08-02T06:06:52.305Z",
     .desc = "Identity modification time (RFC 3339, UTC).",
     .offset = offsetof(sx_stix_cfg, modified)},
    {.name = NULL},
};

const sf_cfg_option sx_stix_options[] = {
    {.name = "identity",
     .type = SF_OPT_SECTION,
     .desc = "The STIX identity object put first in every bundle (defaults: stix-shifter's).",
     .sub = identity_options},
    {.name = NULL},
};

/* Forwarder namespace for ids derived from event ids (bundle, observed-data, objects the STIX
 * 2.1 spec gives no ID-contributing properties). */
static const sf_uuid forwarder_ns = {{0x6f, 0x3e, 0x3c, 0x1e, 0x5b, 0x2a, 0x4c, 0x77, 0x9a, 0x53,
                                      0x1d, 0x2f, 0x6b, 0x3c, 0x8e, 0x41}};

static const char *slot_names[SX_NSLOTS] = {
    [SX_FINDING] = "finding",
    [SX_POLICY] = "policy",
    [SX_ASSET] = "asset",
    [SX_PROC] = "process",
    [SX_DIR] = "directory",
    [SX_FILE] = "file",
    [SX_PPROC] = "parent-process",
    [SX_PFILE] = "parent-file",
    [SX_USER] = "user-account",
    [SX_CLOUD_PROVIDER] = "cloud-provider",
    [SX_CLOUD_RESOURCE] = "cloud-resource",
    [SX_MAC] = "mac-addr",
    [SX_CLUSTER] = "cluster",
    [SX_DEPLOYMENT] = "deployment",
    [SX_NODE_IP] = "node-ip",
    [SX_SRC_IP] = "src-ip",
    [SX_DST_IP] = "dst-ip",
    [SX_NETWORK] = "network-traffic",
};

const char *sx_slot_name(sx_slot s)
{
    return (unsigned)s < SX_NSLOTS ? slot_names[s] : "?";
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static bool valid_stix_time(const char *s)
{
    int64_t ns;
    size_t n = s ? strlen(s) : 0;
    return n > 0 && s[n - 1] == 'Z' && sf_parse_rfc3339_ns(s, n, &ns) == 0;
}

int sx_state_init(const void *cfg, const char *spec_version, void **state, char *err, size_t errlen)
{
    static const sx_stix_cfg defaults = {
        .id = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
        .name = "sysdig",
        .identity_class = "events",
        .created = "2023-08-01T06:06:52.305Z",
        .modified = "2023-08-02T06:06:52.305Z",
    };
    const sx_stix_cfg *c = cfg ? cfg : &defaults;
    sf_uuid u;
    const char *id = c->id ? c->id : defaults.id;
    const char *created = c->created ? c->created : defaults.created;
    const char *modified = c->modified ? c->modified : defaults.modified;
    if (strncmp(id, "identity--", 10) != 0 || sf_uuid_parse(id + 10, &u) != 0) {
        set_err(err, errlen, "stix.identity.id must be identity--<uuid>");
        return -EINVAL;
    }
    if (!valid_stix_time(created) || !valid_stix_time(modified)) {
        set_err(err, errlen, "stix.identity.created/modified must be RFC 3339 UTC times ('Z')");
        return -EINVAL;
    }
    sx_state *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->spec_version = spec_version;
    st->ident.id = sf_strdup(id);
    st->ident.name = sf_strdup(c->name && c->name[0] ? c->name : defaults.name);
    st->ident.identity_class = sf_strdup(
        c->identity_class && c->identity_class[0] ? c->identity_class : defaults.identity_class);
    st->ident.created = sf_strdup(created);
    st->ident.modified = sf_strdup(modified);
    if (!st->ident.id || !st->ident.name || !st->ident.identity_class || !st->ident.created ||
        !st->ident.modified) {
        sx_state_destroy(st);
        return -ENOMEM;
    }
    sf_buf idj = {0};
    sx_put_identity(&idj, st);
    st->identity_len = idj.len;
    if (!(st->identity_json = sf_buf_steal(&idj))) {
        sx_state_destroy(st);
        return -ENOMEM;
    }
    *state = st;
    return 0;
}

void sx_state_destroy(void *state)
{
    sx_state *st = state;
    if (!st)
        return;
    free(st->ident.id);
    free(st->ident.name);
    free(st->ident.identity_class);
    free(st->ident.created);
    free(st->ident.modified);
    free(st->identity_json);
    free(st);
}

/* ---- JSON writing ---- */

void sx_put_str(sf_buf *out, const char *s)
{
    sf_json_cstr_append(out, s);
}

void sx_put_key(sf_buf *out, const char *name)
{
    sf_buf_putc(out, '"');
    sf_buf_puts(out, name); /* a literal of the mapping: nothing to escape */
    sf_buf_append(out, "\":", 2);
}

static bool same_double(double a, double b) /* cJSON's compare_double */
{
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= m * DBL_EPSILON;
}

void sx_put_num(sf_buf *out, double d)
{
    char buf[32];
    if (isnan(d) || isinf(d)) {
        sf_buf_puts(out, "null");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e15 && !(d == 0 && signbit(d))) {
        /* what "%1.15g" prints for an integer below 10^15 */
        char *p = buf + sizeof buf;
        long long v = (long long)d;
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--p = '-';
        sf_buf_append(out, p, (size_t)(buf + sizeof buf - p));
        return;
    }
    double test = 0;
    int n = snprintf(buf, sizeof buf, "%1.15g", d);
    if (sscanf(buf, "%lg", &test) != 1 || !same_double(test, d))
        n = snprintf(buf, sizeof buf, "%1.17g", d);
    if (n < 0 || (size_t)n >= sizeof buf)
        return;
    char dp = localeconv()->decimal_point[0];
    for (int i = 0; i < n; i++)
        if (buf[i] == dp)
            buf[i] = '.';
    sf_buf_append(out, buf, (size_t)n);
}

void sx_put_value(sf_buf *out, const sx_graph *g, const sx_node *n)
{
    switch (n->kind) {
    case SX_STR:
        sx_put_str(out, n->str);
        return;
    case SX_NUM:
        sx_put_num(out, n->num);
        return;
    case SX_OBJ:
    case SX_ARR:
        sf_buf_putc(out, n->kind == SX_OBJ ? '{' : '[');
        for (const sx_node *c = sx_node_at(g, n->child); c; c = sx_node_at(g, c->next)) {
            if (c != sx_node_at(g, n->child))
                sf_buf_putc(out, ',');
            if (n->kind == SX_OBJ)
                sx_put_key(out, c->name);
            sx_put_value(out, g, c);
        }
        sf_buf_putc(out, n->kind == SX_OBJ ? '}' : ']');
        return;
    }
}

const sx_node *sx_member(const sx_graph *g, const sx_node *obj, const char *name)
{
    for (const sx_node *c = sx_node_at(g, obj->child); c; c = sx_node_at(g, c->next))
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

void sx_put_identity(sf_buf *out, const sx_state *st)
{
    bool v21 = strcmp(st->spec_version, "2.1") == 0;
    sf_buf_puts(out, "{\"type\":\"identity\",");
    if (v21) {
        sx_put_key(out, "spec_version");
        sx_put_str(out, st->spec_version);
        sf_buf_putc(out, ',');
    }
    sx_put_key(out, "id");
    sx_put_str(out, st->ident.id);
    sf_buf_puts(out, ",\"name\":");
    sx_put_str(out, st->ident.name);
    sf_buf_puts(out, ",\"identity_class\":");
    sx_put_str(out, st->ident.identity_class);
    sf_buf_puts(out, ",\"created\":");
    sx_put_str(out, st->ident.created);
    sf_buf_puts(out, ",\"modified\":");
    sx_put_str(out, st->ident.modified);
    sf_buf_putc(out, '}');
}

/* Appends s to p (within end); returns the new end, NULL if it does not fit. */
static char *cat(char *p, const char *end, const char *s, size_t n)
{
    if (!p || (size_t)(end - p) < n)
        return NULL;
    memcpy(p, s, n);
    return p + n;
}

int sx_derived_id(const sx_state *st, const char *type, const char *purpose, const sf_event *ev,
                  char *out, size_t outlen)
{
    char small[256];
    sf_uuid u;
    char us[SF_UUID_STR_LEN + 1];
    size_t vl = strlen(st->spec_version), pl = strlen(purpose), idl = strlen(ev->id);
    size_t need = 4 + vl + 1 + pl + 1 + idl; /* "stix<version>/<purpose>/<event id>" */
    char *name = need <= sizeof small ? small : malloc(need);
    if (!name)
        return -ENOMEM;
    memcpy(name, "stix", 4);
    memcpy(name + 4, st->spec_version, vl);
    name[4 + vl] = '/';
    memcpy(name + 5 + vl, purpose, pl);
    name[5 + vl + pl] = '/';
    memcpy(name + 6 + vl + pl, ev->id, idl);
    int rc = sf_uuid_v5(&forwarder_ns, name, need, &u);
    if (name != small)
        free(name);
    if (rc)
        return rc;
    sf_uuid_format(&u, us);
    size_t tl = strlen(type);
    char *p = cat(out, out + outlen, type, tl);
    p = cat(p, out + outlen, "--", 2);
    p = cat(p, out + outlen, us, SF_UUID_STR_LEN + 1);
    if (!p) /* as snprintf would: truncated */
        snprintf(out, outlen, "%s--%s", type, us);
    return 0;
}

/* ---- severity ---- */

static bool json_integer(const cJSON *v, int64_t *out)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || d < -9e18 || d > 9e18)
            return false;
        *out = (int64_t)d;
        return true;
    }
    if (cJSON_IsString(v))
        return sf_parse_int64(v->valuestring, strlen(v->valuestring), out) == 0;
    return false;
}

static int severity100(const cJSON *severity)
{
    int64_t s;
    if (!json_integer(severity, &s))
        return -1;
    if (s >= 0 && s <= 7)
        return (int)((10 - s) * 10);
    return s < 0 ? 0 : s > 100 ? 100 : (int)s;
}

int sx_severity100(const sf_event *ev)
{
    return severity100(sf_event_get(ev, "severity"));
}

/* ---- graph building ---- */

/* The members the mapping reads: top-level (T_), content's (C_), content.fields' (F_) and
 * labels' (L_), each object's found in one pass (builder_init). */
enum {
    T_CONTENT,
    T_LABELS,
    T_SEVERITY,
    T_ORIGINATOR,
    T_CATEGORY,
    T_SOURCE,
    T_AGENT_ID,
    T_DESCRIPTION,
    T_CONTAINER_ID,
    T_NAME,
    NTOP
};
static const char *const top_names[NTOP] = {
    [T_CONTENT] = "content",          [T_LABELS] = "labels",
    [T_SEVERITY] = "severity",        [T_ORIGINATOR] = "originator",
    [T_CATEGORY] = "category",        [T_SOURCE] = "source",
    [T_AGENT_ID] = "agentId",         [T_DESCRIPTION] = "description",
    [T_CONTAINER_ID] = "containerId", [T_NAME] = "name",
};
enum { C_FIELDS, C_POLICY_ID, C_RULE_NAME, C_RULE_SUB_TYPE, C_RULE_TYPE, C_OUTPUT, NCONTENT };
static const char *const content_names[NCONTENT] = {
    [C_FIELDS] = "fields",      [C_POLICY_ID] = "policyId",
    [C_RULE_NAME] = "ruleName", [C_RULE_SUB_TYPE] = "ruleSubType",
    [C_RULE_TYPE] = "ruleType", [C_OUTPUT] = "output",
};
enum {
    F_EVT_TYPE,
    F_FD_NAME,
    F_FD_L4PROTO,
    F_FALCO_RULE,
    F_PROC_CMDLINE,
    F_PROC_CWD,
    F_PROC_NAME,
    F_PROC_PID,
    F_PROC_SID,
    F_PROC_EXEPATH,
    F_PROC_PCMDLINE,
    F_PROC_PNAME,
    F_PROC_PPID,
    F_USER_LOGINUID,
    F_USER_NAME,
    F_USER_UID,
    F_USER_LOGINNAME,
    F_CONTAINER_ID,
    F_PROC_ANAMES,
    NFIELD
};
static const char *const field_names[NFIELD] = {
    [F_EVT_TYPE] = "evt.type",
    [F_FD_NAME] = "fd.name",
    [F_FD_L4PROTO] = "fd.l4proto",
    [F_FALCO_RULE] = "falco.rule",
    [F_PROC_CMDLINE] = "proc.cmdline",
    [F_PROC_CWD] = "proc.cwd",
    [F_PROC_NAME] = "proc.name",
    [F_PROC_PID] = "proc.pid",
    [F_PROC_SID] = "proc.sid",
    [F_PROC_EXEPATH] = "proc.exepath",
    [F_PROC_PCMDLINE] = "proc.pcmdline",
    [F_PROC_PNAME] = "proc.pname",
    [F_PROC_PPID] = "proc.ppid",
    [F_USER_LOGINUID] = "user.loginuid",
    [F_USER_NAME] = "user.name",
    [F_USER_UID] = "user.uid",
    [F_USER_LOGINNAME] = "user.loginname",
    [F_CONTAINER_ID] = "container.id",
    [F_PROC_ANAMES] = "proc.anames",
};
enum {
    L_KUBERNETES_WORKLOAD_NAME,
    L_KUBERNETES_WORKLOAD_TYPE,
    L_CONTAINER_IMAGE_DIGEST,
    L_CONTAINER_IMAGE_ID,
    L_CONTAINER_IMAGE_REPO,
    L_CONTAINER_IMAGE_TAG,
    L_CONTAINER_NAME,
    L_POD_NAME,
    L_POD_NAMESPACE,
    L_HOST_HOST_NAME,
    L_HOST_MAC,
    L_KUBERNETES_NODE_NAME,
    L_KUBERNETES_CLUSTER_NAME,
    L_KUBERNETES_DAEMON_SET_NAME,
    L_KUBERNETES_NAMESPACE_NAME,
    L_KUBERNETES_DEPLOYMENT_NAME,
    L_CLOUD_PROVIDER_ACCOUNT_ID,
    L_CLOUD_PROVIDER_REGION,
    L_AWS_ACCOUNT_ID,
    L_AWS_REGION,
    L_CLOUD_PROVIDER_NAME,
    L_AWS_INSTANCE_ID,
    L_K8S_POD_NAME,
    NLABEL
};
static const char *const label_names[NLABEL] = {
    [L_KUBERNETES_WORKLOAD_NAME] = "kubernetes.workload.name",
    [L_KUBERNETES_WORKLOAD_TYPE] = "kubernetes.workload.type",
    [L_CONTAINER_IMAGE_DIGEST] = "container.image.digest",
    [L_CONTAINER_IMAGE_ID] = "container.image.id",
    [L_CONTAINER_IMAGE_REPO] = "container.image.repo",
    [L_CONTAINER_IMAGE_TAG] = "container.image.tag",
    [L_CONTAINER_NAME] = "container.name",
    [L_POD_NAME] = "container.label.io.kubernetes.pod.name",
    [L_POD_NAMESPACE] = "container.label.io.kubernetes.pod.namespace",
    [L_HOST_HOST_NAME] = "host.hostName",
    [L_HOST_MAC] = "host.mac",
    [L_KUBERNETES_NODE_NAME] = "kubernetes.node.name",
    [L_KUBERNETES_CLUSTER_NAME] = "kubernetes.cluster.name",
    [L_KUBERNETES_DAEMON_SET_NAME] = "kubernetes.daemonSet.name",
    [L_KUBERNETES_NAMESPACE_NAME] = "kubernetes.namespace.name",
    [L_KUBERNETES_DEPLOYMENT_NAME] = "kubernetes.deployment.name",
    [L_CLOUD_PROVIDER_ACCOUNT_ID] = "cloudProvider.account.id",
    [L_CLOUD_PROVIDER_REGION] = "cloudProvider.region",
    [L_AWS_ACCOUNT_ID] = "aws.accountId",
    [L_AWS_REGION] = "aws.region",
    [L_CLOUD_PROVIDER_NAME] = "cloudProvider.name",
    [L_AWS_INSTANCE_ID] = "aws.instanceId",
    [L_K8S_POD_NAME] = "kubernetes.pod.name",
};

static sf_json_keys top_keys, content_keys, field_keys, label_keys;

static void init_keys(void)
{
    sf_json_keys_init(&top_keys, top_names, NTOP);
    sf_json_keys_init(&content_keys, content_names, NCONTENT);
    sf_json_keys_init(&field_keys, field_names, NFIELD);
    sf_json_keys_init(&label_keys, label_names, NLABEL);
}

typedef struct builder {
    const sf_event *ev;
    sx_graph *g;
    const cJSON *top[NTOP], *content[NCONTENT], *field[NFIELD], *label[NLABEL];
    const cJSON *fields; /* content.fields */
    int rc;              /* first error (-ENOMEM) */
} builder;

/* fields: "" and "<NA>" are empty (pre-processing step 1) */
static const char *fld_str(const cJSON *v)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    return s && s[0] && strcmp(s, "<NA>") != 0 ? s : NULL;
}

static const char *fld(const builder *b, int key)
{
    return fld_str(b->field[key]);
}

static const char *lbl(const builder *b, int key)
{
    const cJSON *v = b->label[key];
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    return s && s[0] ? s : NULL;
}

static const cJSON *content_item(const builder *b, int key)
{
    return b->content[key];
}

static const char *top_str(const builder *b, int key)
{
    const cJSON *v = b->top[key];
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void builder_init(builder *b, const sf_event *ev, sx_graph *g)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_keys);
    b->ev = ev;
    b->g = g;
    b->rc = 0;
    sf_json_find(ev->json || sf_event_load(ev) == 0 ? ev->json : NULL, &top_keys, b->top);
    sf_json_find(b->top[T_CONTENT], &content_keys, b->content);
    b->fields = b->content[C_FIELDS];
    sf_json_find(b->fields, &field_keys, b->field);
    sf_json_find(b->top[T_LABELS], &label_keys, b->label);
}

/* A new node (-1 when out of memory: b->rc set). */
static int node(builder *b, sx_kind kind, const char *name)
{
    sx_graph *g = b->g;
    if (g->nnodes == g->cap) {
        size_t ncap = g->cap * 2;
        sx_node *n = malloc(ncap * sizeof *n);
        if (!n) {
            b->rc = -ENOMEM;
            return -1;
        }
        memcpy(n, g->nodes, g->nnodes * sizeof *n);
        if (g->nodes != g->inline_nodes)
            free(g->nodes);
        g->nodes = n;
        g->cap = ncap;
    }
    int i = (int)g->nnodes++;
    g->nodes[i] = (sx_node){.name = name, .kind = kind, .child = -1, .last = -1, .next = -1};
    return i;
}

/* Links child (a node) at the end of parent's elements. */
static void link_child(builder *b, int parent, int child)
{
    sx_node *p = &b->g->nodes[parent];
    if (p->last >= 0)
        b->g->nodes[p->last].next = child;
    else
        p->child = child;
    p->last = child;
}

static size_t nchildren(const sx_graph *g, int obj)
{
    size_t n = 0;
    for (const sx_node *c = sx_node_at(g, g->nodes[obj].child); c; c = sx_node_at(g, c->next))
        n++;
    return n;
}

/* Copies s into the graph's text (computed strings). */
static const char *text(builder *b, const char *s)
{
    sx_graph *g = b->g;
    size_t n = strlen(s) + 1;
    if (n > sizeof g->text - g->ntext) {
        b->rc = -ENOMEM;
        return NULL;
    }
    char *d = g->text + g->ntext;
    memcpy(d, s, n);
    g->ntext += n;
    return d;
}

static void add_str_node(builder *b, int parent, const char *name, const char *s)
{
    int n = node(b, SX_STR, name);
    if (n < 0)
        return;
    b->g->nodes[n].str = s;
    link_child(b, parent, n);
}

static int slot(builder *b, sx_slot s, const char *type)
{
    sx_obj *o = &b->g->o[s];
    if (o->node < 0) {
        int n = node(b, SX_OBJ, NULL);
        if (n < 0)
            return -1;
        add_str_node(b, n, "type", type);
        o->node = n;
    }
    return o->node;
}

static void put_str(builder *b, int o, const char *name, const char *s)
{
    if (o >= 0 && s && s[0])
        add_str_node(b, o, name, s);
}

static void put_num(builder *b, int o, const char *name, double d)
{
    if (o < 0)
        return;
    int n = node(b, SX_NUM, name);
    if (n < 0)
        return;
    b->g->nodes[n].num = d;
    link_child(b, o, n);
}

static void put_int(builder *b, int o, const char *name, int64_t v)
{
    put_num(b, o, name, (double)v);
}

/* A scalar from the event: non-empty string, or finite number (numbers stay numbers). */
static void put_scalar(builder *b, int o, const char *name, const cJSON *v)
{
    if (cJSON_IsString(v))
        put_str(b, o, name, v->valuestring);
    else if (cJSON_IsNumber(v) && isfinite(v->valuedouble))
        put_num(b, o, name, v->valuedouble);
}

/* Integer from a field: "12345", "12.7" -> 12; anything else -> false. */
static bool field_int(const char *s, int64_t *out)
{
    if (!s)
        return false;
    /* plain decimal digits (most pids), read directly: what strtod reads, exactly */
    const char *p = s + (s[0] == '-');
    int64_t v = 0;
    size_t nd = 0;
    while (p[nd] >= '0' && p[nd] <= '9' && nd < 15)
        v = v * 10 + (p[nd++] - '0');
    if (nd && !p[nd]) {
        *out = s[0] == '-' ? -v : v;
        return true;
    }
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(d) || d < -9e15 || d > 9e15)
        return false;
    *out = (int64_t)d; /* truncates toward zero */
    return true;
}

static void put_field_int(builder *b, int o, const char *name, const char *s)
{
    int64_t v;
    if (field_int(s, &v))
        put_int(b, o, name, v);
}

static void ref(builder *b, sx_slot from, const char *prop, sx_slot to, bool list)
{
    sx_obj *o = &b->g->o[from];
    if (o->nrefs < SX_MAX_REFS)
        o->refs[o->nrefs++] = (sx_ref){.prop = prop, .target = to, .list = list};
}

static int sub_node(builder *b, sx_kind kind)
{
    return node(b, kind, NULL);
}

/* Adds child to parent under name if it got any element (else it stays unlinked). */
static void attach_nonempty(builder *b, int parent, const char *name, int child)
{
    if (child >= 0 && parent >= 0 && b->g->nodes[child].child >= 0) {
        b->g->nodes[child].name = name;
        link_child(b, parent, child);
    }
}

/* First "d-d-d-d" (or "d.d.d.d") in s as an IPv4 address. */
static bool ipv4_in_name(const char *s, char *out, size_t outlen)
{
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || (p > s && p[-1] >= '0' && p[-1] <= '9'))
            continue;
        unsigned oct[4];
        const char *q = p;
        int i;
        char sep = 0;
        for (i = 0; i < 4; i++) {
            unsigned v = 0;
            int nd = 0;
            while (*q >= '0' && *q <= '9' && nd < 4)
                v = v * 10 + (unsigned)(*q++ - '0'), nd++;
            if (nd == 0 || nd > 3 || v > 255)
                break;
            oct[i] = v;
            if (i == 3) {
                i = 4; /* all four octets parsed */
                break;
            }
            if (!sep && (*q == '-' || *q == '.'))
                sep = *q;
            if (*q != sep)
                break;
            q++;
        }
        if (i == 4 && !(*q >= '0' && *q <= '9')) {
            snprintf(out, outlen, "%u.%u.%u.%u", oct[0], oct[1], oct[2], oct[3]);
            return true;
        }
    }
    return false;
}

/* "1.2.3.4:80", "[::1]:443" or "::1:443" (last colon separates the port). */
static sx_endpoint parse_endpoint(const char *s, size_t n)
{
    sx_endpoint e = {0};
    char buf[128], host[INET6_ADDRSTRLEN + 2];
    unsigned char bin[16];
    if (n == 0 || n >= sizeof buf)
        return e;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *colon = strrchr(buf, ':');
    if (!colon || colon == buf)
        return e;
    *colon = '\0';
    int64_t port;
    if (sf_parse_int64(colon + 1, strlen(colon + 1), &port) || port < 0 || port > 65535 ||
        colon[1] == '-' || colon[1] == '+')
        return e;
    const char *h = buf;
    size_t hl = strlen(buf);
    if (buf[0] == '[') {
        if (hl < 3 || buf[hl - 1] != ']')
            return e;
        h = buf + 1;
        hl -= 2;
    }
    if (hl >= sizeof host)
        return e;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, bin) == 1) {
        if (buf[0] == '[')
            return e;
    } else if (inet_pton(AF_INET6, host, bin) == 1) {
        e.v6 = true;
    } else {
        return e;
    }
    /* canonical text form */
    if (!inet_ntop(e.v6 ? AF_INET6 : AF_INET, bin, e.ip, sizeof e.ip))
        return e;
    e.port = (int)port;
    e.ok = true;
    return e;
}

bool sx_fd_endpoints(const char *fd, sx_endpoint *src, sx_endpoint *dst)
{
    memset(src, 0, sizeof *src);
    memset(dst, 0, sizeof *dst);
    const char *arrow = fd ? strstr(fd, "->") : NULL;
    bool inbound = false;
    if (fd && !arrow) {
        arrow = strstr(fd, "<-");
        inbound = true;
    }
    if (!arrow)
        return false;
    sx_endpoint left = parse_endpoint(fd, (size_t)(arrow - fd));
    sx_endpoint right = parse_endpoint(arrow + 2, strlen(arrow + 2));
    *src = inbound ? right : left;
    *dst = inbound ? left : right;
    return true;
}

/* An ipv4-addr/ipv6-addr object for ip; reuses an earlier address slot with the same value. */
static sx_slot add_ip(builder *b, sx_slot s, const char *type, const char *ip)
{
    const sx_graph *g = b->g;
    for (sx_slot p = SX_NODE_IP; p < s; p++) {
        if (g->o[p].node < 0)
            continue;
        const sx_node *o = &g->nodes[g->o[p].node];
        const sx_node *t = sx_member(g, o, "type"), *v = sx_member(g, o, "value");
        if (t && v && t->kind == SX_STR && v->kind == SX_STR && sf_streq(t->str, type) &&
            sf_streq(v->str, ip))
            return p;
    }
    put_str(b, slot(b, s, type), "value", text(b, ip));
    return s;
}

static void map_network(builder *b)
{
    if (!sf_streq(fld(b, F_EVT_TYPE), "connect"))
        return;
    const char *fd = fld(b, F_FD_NAME);
    if (!fd)
        return;
    sx_endpoint sv, dv, *src = &sv, *dst = &dv;
    if (!sx_fd_endpoints(fd, src, dst))
        return;
    if (!src->ok && !dst->ok)
        return;
    int nt = slot(b, SX_NETWORK, "network-traffic");
    if (src->ok) {
        sx_slot t = add_ip(b, SX_SRC_IP, src->v6 ? "ipv6-addr" : "ipv4-addr", src->ip);
        ref(b, SX_NETWORK, "src_ref", t, false);
        put_int(b, nt, "src_port", src->port);
    }
    if (dst->ok) {
        sx_slot t = add_ip(b, SX_DST_IP, dst->v6 ? "ipv6-addr" : "ipv4-addr", dst->ip);
        ref(b, SX_NETWORK, "dst_ref", t, false);
        put_int(b, nt, "dst_port", dst->port);
    }
    const char *proto = fld(b, F_FD_L4PROTO);
    char lower[32];
    size_t i = 0;
    for (const char *p = proto ? proto : "tcp"; *p && i < sizeof lower - 1; p++)
        lower[i++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    lower[i] = '\0';
    int arr = sub_node(b, SX_ARR);
    const char *l = text(b, lower);
    if (arr < 0 || nt < 0 || !l) {
        b->rc = -ENOMEM;
        return;
    }
    add_str_node(b, arr, NULL, l);
    b->g->nodes[arr].name = "protocols";
    link_child(b, nt, arr);
}

static void add_name(builder *b, int arr, const char *v)
{
    if (!v[0] || strcmp(v, "<NA>") == 0)
        return;
    add_str_node(b, arr, NULL, v);
}

/* k of "proc.aname[k]" (k written as %d would write it), or -1. */
static int aname_index(const char *key)
{
    static const char prefix[] = "proc.aname[";
    if (strncmp(key, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *p = key + sizeof prefix - 1;
    int k = 0, nd = 0;
    if (*p == '0')
        return -1;
    while (*p >= '0' && *p <= '9' && nd < 3)
        k = k * 10 + (*p++ - '0'), nd++;
    return nd && p[0] == ']' && p[1] == '\0' ? k : -1;
}

/* Pre-processing step 4: proc.aname[2], [3], ... [63] (non-empty, in order); when none is
 * present an already computed fields["proc.anames"] (list or string) is used. Never nested.
 * One pass over the fields (the first member of each name counts, as a lookup finds it). */
static void map_anames(builder *b, int pp)
{
    enum { FIRST = 2, LAST = 63 };
    const cJSON *at[LAST + 1] = {0};
    bool seen[LAST + 1] = {0};
    const cJSON *it, *fields = cJSON_IsObject(b->fields) ? b->fields : NULL;
    cJSON_ArrayForEach(it, fields)
    {
        int k = it->string ? aname_index(it->string) : -1;
        if (k >= FIRST && k <= LAST && !seen[k]) {
            seen[k] = true;
            at[k] = it;
        }
    }
    int arr = sub_node(b, SX_ARR);
    if (arr < 0)
        return;
    for (int k = FIRST; k <= LAST; k++) {
        const char *v = fld_str(at[k]);
        if (v)
            add_name(b, arr, v);
    }
    if (b->g->nodes[arr].child < 0) {
        const cJSON *f = b->field[F_PROC_ANAMES];
        if (cJSON_IsString(f))
            add_name(b, arr, f->valuestring);
        const cJSON *list = cJSON_IsArray(f) ? f : NULL;
        cJSON_ArrayForEach(it, list)
        {
            if (cJSON_IsString(it))
                add_name(b, arr, it->valuestring);
        }
    }
    attach_nonempty(b, pp, "x_parent_names", arr);
}

static void map_finding(builder *b)
{
    int f = slot(b, SX_FINDING, "x-ibm-finding");
    put_scalar(b, f, "x_threat_originator", b->top[T_ORIGINATOR]);
    put_scalar(b, f, "x_category", b->top[T_CATEGORY]);
    put_scalar(b, f, "x_threat_source", b->top[T_SOURCE]);
    int sev = severity100(b->top[T_SEVERITY]);
    if (sev >= 0)
        put_int(b, f, "severity", sev);
    put_scalar(b, f, "x_agent_id", b->top[T_AGENT_ID]);
    put_str(b, f, "name", fld(b, F_FALCO_RULE));
    put_str(b, f, "x_workload_name", lbl(b, L_KUBERNETES_WORKLOAD_NAME));
    put_str(b, f, "x_workload_type", lbl(b, L_KUBERNETES_WORKLOAD_TYPE));
    put_str(b, f, "finding_type", "threat");
    ref(b, SX_FINDING, "x_policy_ref", SX_POLICY, false);
    ref(b, SX_FINDING, "x_cluster_ref", SX_CLUSTER, false);
    ref(b, SX_FINDING, "x_deployment_ref", SX_DEPLOYMENT, false);

    int p = slot(b, SX_POLICY, "x-sysdig-policy");
    put_scalar(b, p, "description", b->top[T_DESCRIPTION]);
    put_scalar(b, p, "policy_id", content_item(b, C_POLICY_ID));
    put_scalar(b, p, "rule_name", content_item(b, C_RULE_NAME));
    put_scalar(b, p, "rule_subtype", content_item(b, C_RULE_SUB_TYPE));
    put_scalar(b, p, "rule_type", content_item(b, C_RULE_TYPE));
}

static void map_asset(builder *b)
{
    int a = slot(b, SX_ASSET, "x-oca-asset");
    int ext = sub_node(b, SX_OBJ), c = sub_node(b, SX_OBJ), pod = sub_node(b, SX_OBJ);
    if (ext < 0 || c < 0 || pod < 0)
        return;
    put_scalar(b, c, "container_id", b->top[T_CONTAINER_ID]);
    put_str(b, c, "x_digest", lbl(b, L_CONTAINER_IMAGE_DIGEST));
    put_str(b, c, "image_id", lbl(b, L_CONTAINER_IMAGE_ID));
    put_str(b, c, "x_repo", lbl(b, L_CONTAINER_IMAGE_REPO));
    put_str(b, c, "x_tag", lbl(b, L_CONTAINER_IMAGE_TAG));
    put_str(b, c, "name", lbl(b, L_CONTAINER_NAME));
    put_str(b, pod, "pod_name", lbl(b, L_POD_NAME));
    put_str(b, pod, "x_namespace", lbl(b, L_POD_NAMESPACE));
    attach_nonempty(b, ext, "x-oca-container-ext", c);
    attach_nonempty(b, ext, "x-oca-pod-ext", pod);
    attach_nonempty(b, a, "extensions", ext);
    put_str(b, a, "hostname", lbl(b, L_HOST_HOST_NAME));

    put_str(b, slot(b, SX_MAC, "mac-addr"), "value", lbl(b, L_HOST_MAC));
    ref(b, SX_ASSET, "mac_refs", SX_MAC, true);
    const char *node_name = lbl(b, L_KUBERNETES_NODE_NAME);
    char ip[16];
    if (node_name && ipv4_in_name(node_name, ip, sizeof ip)) {
        put_str(b, slot(b, SX_NODE_IP, "ipv4-addr"), "value", text(b, ip));
        ref(b, SX_ASSET, "ip_refs", SX_NODE_IP, true);
    }

    int cl = slot(b, SX_CLUSTER, "x-sysdig-cluster");
    put_str(b, cl, "name", lbl(b, L_KUBERNETES_CLUSTER_NAME));
    put_str(b, cl, "daemonset", lbl(b, L_KUBERNETES_DAEMON_SET_NAME));
    put_str(b, cl, "namespace", lbl(b, L_KUBERNETES_NAMESPACE_NAME));
    ref(b, SX_CLUSTER, "x_node_ref", SX_ASSET, false);
    put_str(b, slot(b, SX_DEPLOYMENT, "x-sysdig-deployment"), "name",
            lbl(b, L_KUBERNETES_DEPLOYMENT_NAME));

    int cp = slot(b, SX_CLOUD_PROVIDER, "x-cloud-provider");
    const char *acct = lbl(b, L_CLOUD_PROVIDER_ACCOUNT_ID);
    const char *region = lbl(b, L_CLOUD_PROVIDER_REGION);
    put_str(b, cp, "account_id", acct ? acct : lbl(b, L_AWS_ACCOUNT_ID));
    put_str(b, cp, "region", region ? region : lbl(b, L_AWS_REGION));
    put_str(b, cp, "name", lbl(b, L_CLOUD_PROVIDER_NAME));
    put_str(b, slot(b, SX_CLOUD_RESOURCE, "x-cloud-resource"), "aws_instance_id",
            lbl(b, L_AWS_INSTANCE_ID));
}

static void map_process(builder *b)
{
    int p = slot(b, SX_PROC, "process");
    put_str(b, p, "command_line", fld(b, F_PROC_CMDLINE));
    put_str(b, p, "cwd", fld(b, F_PROC_CWD));
    put_str(b, p, "name", fld(b, F_PROC_NAME));
    put_field_int(b, p, "pid", fld(b, F_PROC_PID));
    put_str(b, p, "x_sid", fld(b, F_PROC_SID));
    ref(b, SX_PROC, "binary_ref", SX_FILE, false);
    ref(b, SX_PROC, "parent_ref", SX_PPROC, false);
    ref(b, SX_PROC, "creator_user_ref", SX_USER, false);
    put_str(b, slot(b, SX_DIR, "directory"), "path", fld(b, F_PROC_EXEPATH));
    put_str(b, slot(b, SX_FILE, "file"), "name", fld(b, F_PROC_NAME));
    ref(b, SX_FILE, "parent_directory_ref", SX_DIR, false);

    int pp = slot(b, SX_PPROC, "process");
    put_str(b, pp, "command_line", fld(b, F_PROC_PCMDLINE));
    put_str(b, pp, "name", fld(b, F_PROC_PNAME));
    put_field_int(b, pp, "pid", fld(b, F_PROC_PPID));
    map_anames(b, pp);
    ref(b, SX_PPROC, "binary_ref", SX_PFILE, false);
    put_str(b, slot(b, SX_PFILE, "file"), "name", fld(b, F_PROC_PNAME));

    int u = slot(b, SX_USER, "user-account");
    put_str(b, u, "x_loginuid", fld(b, F_USER_LOGINUID));
    put_str(b, u, "display_name", fld(b, F_USER_NAME));
    put_str(b, u, "user_id", fld(b, F_USER_UID));
    put_str(b, u, "account_login", fld(b, F_USER_LOGINNAME));
}

void sx_graph_free(sx_graph *g)
{
    if (g->nodes && g->nodes != g->inline_nodes)
        free(g->nodes);
    g->nodes = NULL;
    g->nnodes = g->cap = 0;
    for (size_t i = 0; i < SX_NSLOTS; i++)
        g->o[i].node = -1;
}

int sx_graph_build(const sf_event *ev, sx_graph *g, char *err, size_t errlen)
{
    memset(g->o, 0, sizeof g->o);
    for (size_t i = 0; i < SX_NSLOTS; i++)
        g->o[i].node = -1;
    g->nodes = g->inline_nodes;
    g->nnodes = 0;
    g->cap = SX_INLINE_NODES;
    g->ntext = 0;
    if (ev->ts_ns == SF_TIME_UNSET) {
        set_err(err, errlen, "event has no usable timestamp (STIX needs first_observed)");
        return -EINVAL;
    }
    sf_format_rfc3339(ev->ts_ns, 9, g->observed, sizeof g->observed);
    sf_format_rfc3339(ev->ts_ns, 3, g->created, sizeof g->created);
    builder b;
    builder_init(&b, ev, g);
    map_finding(&b);
    map_asset(&b);
    map_process(&b);
    map_network(&b);
    if (b.rc) {
        sx_graph_free(g);
        return b.rc;
    }
    /* An object with nothing but its type (and references) is dropped; references to dropped
     * objects are not emitted (serialisers check sx_present()). */
    for (size_t i = 0; i < SX_NSLOTS; i++)
        if (g->o[i].node >= 0 && nchildren(g, g->o[i].node) <= 1)
            g->o[i].node = -1;
    return 0;
}

void sx_summarize(const sf_event *ev, sx_summary *s)
{
    builder b;
    builder_init(&b, ev, NULL);
    memset(s, 0, sizeof *s);
    const cJSON *pol = content_item(&b, C_POLICY_ID);
    const cJSON *rn = content_item(&b, C_RULE_NAME);
    s->rule = cJSON_IsString(rn) && rn->valuestring[0] ? rn->valuestring : fld(&b, F_FALCO_RULE);
    if (!s->rule) {
        const char *n = top_str(&b, T_NAME);
        s->rule = n && n[0] ? n : NULL;
    }
    int64_t id;
    if (json_integer(pol, &id)) {
        snprintf(s->sigbuf, sizeof s->sigbuf, "%lld", (long long)id);
        s->signature = s->sigbuf;
    } else {
        s->signature = s->rule;
    }
    s->category = top_str(&b, T_CATEGORY);
    const cJSON *out = content_item(&b, C_OUTPUT);
    s->msg =
        cJSON_IsString(out) && out->valuestring[0] ? out->valuestring : top_str(&b, T_DESCRIPTION);
    s->user = fld(&b, F_USER_NAME);
    s->uid = fld(&b, F_USER_UID);
    s->proc = fld(&b, F_PROC_NAME);
    s->pid = fld(&b, F_PROC_PID);
    s->container_id = top_str(&b, T_CONTAINER_ID);
    if (!s->container_id || !s->container_id[0])
        s->container_id = fld(&b, F_CONTAINER_ID);
    s->container_name = lbl(&b, L_CONTAINER_NAME);
    s->image_repo = lbl(&b, L_CONTAINER_IMAGE_REPO);
    s->image_tag = lbl(&b, L_CONTAINER_IMAGE_TAG);
    s->cluster = lbl(&b, L_KUBERNETES_CLUSTER_NAME);
    s->ns = lbl(&b, L_KUBERNETES_NAMESPACE_NAME);
    s->pod = lbl(&b, L_K8S_POD_NAME);
    if (!s->pod)
        s->pod = lbl(&b, L_POD_NAME);
    s->workload = lbl(&b, L_KUBERNETES_WORKLOAD_NAME);
    s->host = lbl(&b, L_HOST_HOST_NAME);
    if (sx_fd_endpoints(fld(&b, F_FD_NAME), &s->src, &s->dst) && (s->src.ok || s->dst.ok)) {
        s->proto = fld(&b, F_FD_L4PROTO);
        if (!s->proto)
            s->proto = "tcp";
    }
    s->severity100 = severity100(b.top[T_SEVERITY]);
    if (s->category && !s->category[0])
        s->category = NULL;
    if (s->msg && !s->msg[0])
        s->msg = NULL;
}
