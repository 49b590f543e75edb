/* kafka_conf: see kafka_conf.h. */
#include "sinks/kafka_conf.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

const char *const sf_kafka_compression_values[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};

bool sf_kafka_property_secret(const char *name)
{
    /* librdkafka's CONFIGURATION.md marks these "sensitive": sasl.password,
     * sasl.oauthbearer.client.secret, ssl.key.password, ssl.key.pem, ssl_key,
     * ssl.keystore.password, sasl.oauthbearer.config (may hold a secret) */
    return strstr(name, "password") || strstr(name, "secret") || strcmp(name, "ssl.key.pem") == 0 ||
           strcmp(name, "ssl_key") == 0 || strcmp(name, "sasl.oauthbearer.config") == 0;
}

/* Pass-through keys the sink sets from its own options (or needs as it sets them). */
static const struct {
    const char *name, *use;
} owned[] = {
    {"bootstrap.servers", "brokers"},
    {"metadata.broker.list", "brokers"},
    {"acks", "acks"},
    {"request.required.acks", "acks"},
    {"enable.idempotence", "idempotence"},
    {"compression.type", "compression"},
    {"compression.codec", "compression"},
    {"message.timeout.ms", "message_timeout"},
    {"delivery.timeout.ms", "message_timeout"},
    {"linger.ms", "linger"},
    {"queue.buffering.max.ms", "linger"},
    {"security.protocol", "transport and sasl.mechanism"},
    {"sasl.mechanisms", "sasl.mechanism"},
    {"sasl.mechanism", "sasl.mechanism"},
    {"sasl.username", "sasl.username"},
    {"sasl.password", "sasl.password"},
    {"ssl.ca.location", "tls.ca_file"},
    {"ssl.certificate.location", "tls.cert_file"},
    {"ssl.key.location", "tls.key_file"},
    {"ssl.key.password", "tls.key_password"},
    {"enable.ssl.certificate.verification", "tls.verify"},
    {"ssl.endpoint.identification.algorithm", "tls.verify"},
    {"log.queue", NULL}, /* librdkafka's logs are served on the daemon's loop */
};

/* Pass-through keys that would break the sink's contract with librdkafka: a record is done
 * when its delivery report says so, every record gets one, produced outside any transaction.
 * (dr_cb, dr_msg_cb and the other callbacks cannot be set as properties: librdkafka refuses
 * them itself.) */
static const struct {
    const char *name, *why;
} refused[] = {
    {"delivery.report.only.error",
     "the sink needs a delivery report for every record (a successful one would never be "
     "confirmed)"},
    {"transactional.id",
     "the sink does not produce in transactions (every record would fail outside one)"},
    {"enabled_events", "the sink serves librdkafka's queue with its own callbacks"},
};

/* Properties naming a file of this machine, read when the producer is created. */
static bool machine_property(const char *name)
{
    size_t n = strlen(name);
    return (n > 9 && strcmp(name + n - 9, ".location") == 0) ||
           strcmp(name, "ssl.ca.certificate.stores") == 0;
}

typedef struct build {
    rd_kafka_conf_t *conf;
    const sf_cfg_node *node;
    sf_cfg_errors *errs;
    char *err;
    size_t errlen;
    int bad;
    int flags;
    bool left_out; /* SF_KAFKA_NO_FILES left a property out */
} build;

/* Sets one property; a refusal is reported at key 'at' of map 'map' (NULL: the sink's map). */
static void set(build *b, const char *name, const char *value, const sf_cfg_node *map,
                const char *at, const char *label)
{
    char es[512];
    if (rd_kafka_conf_set(b->conf, name, value, es, sizeof es) == RD_KAFKA_CONF_OK)
        return;
    if (sf_kafka_property_secret(name)) /* librdkafka's message may quote the value */
        snprintf(es, sizeof es, "invalid value for configuration property \"%s\"", name);
    b->bad++;
    if (b->errs)
        sf_cfg_error_at(b->errs, map ? map : b->node, at, "%s: %s", label, es);
    else if (b->bad == 1)
        snprintf(b->err, b->errlen, "%s: %s", label, es);
}

/* A property naming a file: left out with SF_KAFKA_NO_FILES. */
static void set_file(build *b, const char *name, const char *value, const sf_cfg_node *map,
                     const char *at, const char *label)
{
    if (b->flags & SF_KAFKA_NO_FILES)
        b->left_out = true;
    else
        set(b, name, value, map, at, label);
}

rd_kafka_conf_t *sf_kafka_conf_build(const sf_kafka_cfg *c, const sf_cfg_node *node, int flags,
                                     sf_cfg_errors *errs, char *err, size_t errlen, bool *left_out)
{
    build b = {.conf = rd_kafka_conf_new(),
               .node = node,
               .errs = errs,
               .err = err,
               .errlen = errlen,
               .flags = flags};
    if (left_out)
        *left_out = false;
    if (!b.conf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sf_buf v = {0};
    for (size_t i = 0; i < c->brokers.n; i++)
        sf_buf_appendf(&v, "%s%s", i ? "," : "", c->brokers.v[i]);
    if (sf_buf_error(&v)) {
        sf_buf_free(&v);
        rd_kafka_conf_destroy(b.conf);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(flags & SF_KAFKA_NO_BROKERS))
        set(&b, "bootstrap.servers", v.data ? v.data : "", NULL, "brokers", "brokers");
    sf_buf_free(&v);
    set(&b, "client.id", "sysdig-forwarder", NULL, "type", "client.id");
    set(&b, "log.queue", "true", NULL, "type", "log.queue");
    set(&b, "acks", c->acks == SF_KAFKA_ACKS_ALL ? "all" : "1", NULL, "acks", "acks");
    set(&b, "enable.idempotence", c->idempotence ? "true" : "false", NULL, "idempotence",
        "idempotence");
    set(&b, "compression.type", sf_kafka_compression_values[c->compression], NULL, "compression",
        "compression");
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)c->message_timeout_ms);
    set(&b, "message.timeout.ms", num, NULL, "message_timeout", "message_timeout");
    snprintf(num, sizeof num, "%lld", (long long)c->linger_ms);
    set(&b, "linger.ms", num, NULL, "linger", "linger");

    bool sasl = c->sasl.mechanism != SF_KAFKA_SASL_NONE, tls = c->transport == SF_KAFKA_TLS;
    set(&b, "security.protocol",
        sasl ? (tls ? "sasl_ssl" : "sasl_plaintext") : (tls ? "ssl" : "plaintext"), NULL,
        "transport", "transport");
    const sf_cfg_node *sn = node ? sf_cfg_map_get(node, "sasl") : NULL;
    if (sasl) {
        static const char *const mech[] = {"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
        set(&b, "sasl.mechanisms", mech[c->sasl.mechanism], sn, "mechanism", "sasl.mechanism");
        if (c->sasl.username)
            set(&b, "sasl.username", c->sasl.username, sn, "username", "sasl.username");
        if (c->sasl.password)
            set(&b, "sasl.password", c->sasl.password, sn, "password", "sasl.password");
    }
    if (tls) {
        const sf_cfg_node *tn = node ? sf_cfg_map_get(node, "tls") : NULL;
        set(&b, "enable.ssl.certificate.verification", c->tls.verify ? "true" : "false", tn,
            "verify", "tls.verify");
        set(&b, "ssl.endpoint.identification.algorithm", c->tls.verify ? "https" : "none", tn,
            "verify", "tls.verify");
        if (c->tls.ca_file)
            set_file(&b, "ssl.ca.location", c->tls.ca_file, tn, "ca_file", "tls.ca_file");
        if (c->tls.cert_file) {
            set_file(&b, "ssl.certificate.location", c->tls.cert_file, tn, "cert_file",
                     "tls.cert_file");
            set_file(&b, "ssl.key.location", c->tls.key_file ? c->tls.key_file : c->tls.cert_file,
                     tn, c->tls.key_file ? "key_file" : "cert_file", "tls.key_file");
        }
        if (c->tls.key_password)
            set(&b, "ssl.key.password", c->tls.key_password, tn, "key_password",
                "tls.key_password");
    }

    const sf_cfg_node *pn = node ? sf_cfg_map_get(node, "librdkafka") : NULL;
    for (size_t i = 0; i < c->librdkafka.n; i++) {
        const char *k = c->librdkafka.k[i], *val = c->librdkafka.v[i];
        char label[160];
        snprintf(label, sizeof label, "librdkafka.%s", k);
        bool mine = false;
        for (size_t j = 0; j < SF_ARRAY_LEN(owned) && !mine; j++) {
            if (strcmp(owned[j].name, k) != 0)
                continue;
            mine = true;
            b.bad++;
            if (errs && owned[j].use)
                sf_cfg_error_at(errs, pn, k, "%s: set by the sink's own option %s", label,
                                owned[j].use);
            else if (errs)
                sf_cfg_error_at(errs, pn, k, "%s: the sink sets it (cannot be changed)", label);
            else if (b.bad == 1)
                snprintf(err, errlen, "%s: set by the sink", label);
        }
        for (size_t j = 0; j < SF_ARRAY_LEN(refused) && !mine; j++) {
            if (strcmp(refused[j].name, k) != 0)
                continue;
            mine = true;
            b.bad++;
            if (errs)
                sf_cfg_error_at(errs, pn, k, "%s: not allowed: %s", label, refused[j].why);
            else if (b.bad == 1)
                snprintf(err, errlen, "%s: not allowed", label);
        }
        if (!mine && machine_property(k))
            set_file(&b, k, val, pn, k, label);
        else if (!mine)
            set(&b, k, val, pn, k, label);
    }
    if (left_out)
        *left_out = b.left_out;
    if (b.bad) {
        rd_kafka_conf_destroy(b.conf);
        return NULL;
    }
    return b.conf;
}

static void probe_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {}

static void probe_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {}

/* Whether s holds one of c's secrets. */
static bool holds_secret(const sf_kafka_cfg *c, const char *s)
{
    if (c->sasl.password && *c->sasl.password && strstr(s, c->sasl.password))
        return true;
    if (c->tls.key_password && *c->tls.key_password && strstr(s, c->tls.key_password))
        return true;
    for (size_t i = 0; i < c->librdkafka.n; i++)
        if (sf_kafka_property_secret(c->librdkafka.k[i]) && *c->librdkafka.v[i] &&
            strstr(s, c->librdkafka.v[i]))
            return true;
    return false;
}

bool sf_kafka_conf_probe(const sf_kafka_cfg *c, const sf_cfg_node *node, bool files,
                         sf_cfg_errors *errs)
{
    char es[512];
    bool left_out = false;
    rd_kafka_conf_t *conf =
        sf_kafka_conf_build(c, node, SF_KAFKA_NO_BROKERS | (files ? 0 : SF_KAFKA_NO_FILES), errs,
                            es, sizeof es, &left_out);
    if (!conf)
        return left_out; /* its errors are reported */
    rd_kafka_conf_set_log_cb(conf, probe_log);
    rd_kafka_conf_set_error_cb(conf, probe_error);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    if (rk) {
        rd_kafka_destroy(rk);
        return left_out;
    }
    rd_kafka_conf_destroy(conf);
    if (holds_secret(c, es))
        snprintf(es, sizeof es, "a secret property's value is refused");
    sf_cfg_error_at(errs, node, "librdkafka", "librdkafka refuses the configuration: %s", es);
    return left_out;
}

sf_deliv_status sf_kafka_classify(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return SF_DELIV_OK;
    /* permanent: the same record would be refused again (Kafka's protocol marks them
     * non-retriable: org.apache.kafka.common.protocol.Errors) */
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
        return SF_DELIV_REJECT;
    default: /* timeouts, leader changes, brokers down, purged at shutdown, unknown topic... */
        return SF_DELIV_RETRY;
    }
}
