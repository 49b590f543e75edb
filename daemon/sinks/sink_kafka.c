/* sink_kafka: produces records to a Kafka topic with librdkafka (docs/sinks-kafka.md).
 *
 * Loop integration: librdkafka's main queue (delivery reports, errors, its logs: log.queue)
 * signals a pipe when it becomes non-empty (rd_kafka_queue_io_event_enable); a uv_poll on the
 * pipe serves it with rd_kafka_poll(rk, 0) on the loop thread, so no callback ever runs on
 * librdkafka's threads and the loop never blocks. A 1 s timer serves it too (a safety net, and
 * it samples the producer queue depth for the metrics).
 *
 * Acknowledgements: a record is OK only when its delivery report says so (acks: all and the
 * idempotent producer by default); a report's error is classified by sf_kafka_classify
 * (kafka_conf.c): retriable errors, which librdkafka itself retries until message_timeout,
 * are RETRY (the pipeline retries them after backoff), permanent ones REJECT (dead letters).
 * The batch is done once every record produced has its report. Close purges what librdkafka
 * still holds (those records stay RETRY: the checkpoint never passed them) and destroys the
 * producer on a worker thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "sinks/kafka_conf.h"
#include "sinks/sink.h"

#define OFF(f) offsetof(sf_kafka_cfg, f)

static const char *const key_values[] = {"event_id", "none", NULL};
static const char *const acks_values[] = {"all", "leader", NULL};
static const char *const transport_values[] = {"plaintext", "tls", NULL};
static const char *const mech_values[] = {"none", "plain", "scram-sha-256", "scram-sha-512", NULL};

static const sf_cfg_option sasl_options[] = {
    {.name = "mechanism",
     .type = SF_OPT_ENUM,
     .def = "none",
     .enum_values = mech_values,
     .desc = "SASL mechanism: none, plain, scram-sha-256, scram-sha-512",
     .offset = OFF(sasl.mechanism)},
    {.name = "username",
     .type = SF_OPT_STR,
     .desc = "SASL user name",
     .offset = OFF(sasl.username)},
    {.name = "password",
     .type = SF_OPT_STR,
     .flags = SF_OPT_SECRET,
     .desc = "SASL password",
     .offset = OFF(sasl.password)},
    {0},
};

static const sf_cfg_option kafka_options[] = {
    {.name = "brokers",
     .type = SF_OPT_STRLIST,
     .flags = SF_OPT_REQUIRED,
     .desc = "Bootstrap brokers, host:port each (librdkafka bootstrap.servers)",
     .offset = OFF(brokers)},
    {.name = "topic",
     .type = SF_OPT_STR,
     .flags = SF_OPT_REQUIRED,
     .desc = "Kafka topic ([A-Za-z0-9._-], at most 249 characters)",
     .offset = OFF(topic)},
    {.name = "key",
     .type = SF_OPT_ENUM,
     .def = "event_id",
     .enum_values = key_values,
     .desc = "Record key: the event id (one event's duplicates land in one partition, where "
             "compaction or consumers can drop them), or none",
     .offset = OFF(key)},
    {.name = "compression",
     .type = SF_OPT_ENUM,
     .def = "none",
     .enum_values = sf_kafka_compression_values,
     .desc = "Batch compression: none, gzip, snappy, lz4, zstd",
     .offset = OFF(compression)},
    {.name = "acks",
     .type = SF_OPT_ENUM,
     .def = "all",
     .enum_values = acks_values,
     .desc = "Acknowledgement a delivery waits for: all (every in-sync replica) or leader",
     .offset = OFF(acks)},
    {.name = "idempotence",
     .type = SF_OPT_BOOL,
     .def = "true",
     .desc = "Idempotent producer (librdkafka's own retries write no duplicates, order is kept "
             "per partition); needs acks: all",
     .offset = OFF(idempotence)},
    {.name = "message_timeout",
     .type = SF_OPT_DURATION,
     .def = "30s",
     .min = 1000,
     .max = 3600000,
     .desc = "How long librdkafka retries a record itself (message.timeout.ms); then the "
             "pipeline retries it (retry settings)",
     .offset = OFF(message_timeout_ms)},
    {.name = "linger",
     .type = SF_OPT_DURATION,
     .def = "5ms",
     .min = 0,
     .max = 900000,
     .desc = "How long librdkafka waits to fill a produce request (linger.ms)",
     .offset = OFF(linger_ms)},
    {.name = "max_inflight",
     .type = SF_OPT_INT,
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .desc = "Records handed to librdkafka at a time, awaiting their delivery reports",
     .offset = OFF(max_inflight)},
    {.name = "transport",
     .type = SF_OPT_ENUM,
     .def = "plaintext",
     .enum_values = transport_values,
     .desc = "plaintext or tls (with sasl: librdkafka's sasl_plaintext / sasl_ssl)",
     .offset = OFF(transport)},
    {.name = "sasl", .type = SF_OPT_SECTION, .sub = sasl_options, .desc = "SASL authentication"},
    {.name = "tls",
     .type = SF_OPT_SECTION,
     .sub = sf_tls_options,
     .offset = OFF(tls),
     .desc = "TLS (transport: tls; the shared TLS table)"},
    {.name = "librdkafka",
     .type = SF_OPT_KVLIST,
     .desc = "Other librdkafka producer properties (CONFIGURATION.md), checked at load time; "
             "values of secret properties (*password*, *secret*, ssl.key.pem) are redacted",
     .offset = OFF(librdkafka)},
    {0},
};

typedef struct kprod kprod;

typedef struct kafka {
    sf_sink *s;
    const sf_kafka_cfg *c;
    rd_kafka_t *rk;
    kprod *prod; /* rk's callbacks' opaque */
    rd_kafka_queue_t *mainq;
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t timer;
    int handles;                /* open uv handles */
    int retiring;               /* producers being destroyed on worker threads */
    bool fatal;                 /* the producer raised a fatal error: replaced after the batch */
    unsigned recreate_failures; /* failed replacements in a row, retried from the timer */
    uint64_t recreate_at;       /* uv_now of the next attempt */
    sf_sink_batch *b;
    size_t next, pending, bad;
    char reason[320];
    void (*closed)(sf_sink *);
} kafka_t;

/* The opaque of one producer's callbacks: a retired producer's late callbacks (they run on
 * the thread destroying it) are ignored. */
struct kprod {
    kafka_t *k;
    bool retired;
};

typedef struct retire {
    uv_work_t work;
    kafka_t *k;
    rd_kafka_t *rk;
    kprod *p;
} retire_t;

static void serve(kafka_t *k);
static void maybe_closed(kafka_t *k);

static void set_reason(kafka_t *k, size_t i, const char *why)
{
    if (k->b->reason && !k->b->reason[i])
        k->b->reason[i] = sf_strdup(why);
}

static void finish(kafka_t *k)
{
    sf_sink_batch *b = k->b;
    if (!b || k->pending || k->next < b->n)
        return;
    k->b = NULL;
    if (k->bad)
        sf_sink_set_error(k->s, "%s", k->reason);
    sf_sink_batch_done(b);
}

/* rd_kafka_conf_set_dr_msg_cb: on the loop thread (rd_kafka_poll in serve()). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kprod *p = opaque;
    if (p->retired)
        return;
    kafka_t *k = p->k;
    uintptr_t i1 = (uintptr_t)m->_private;
    if (!k->b || i1 == 0 || i1 > k->b->n) /* a late report of a batch given up at close */
        return;
    size_t i = i1 - 1;
    sf_deliv_status st = sf_kafka_classify(m->err);
    k->b->status[i] = st;
    k->pending--;
    if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        if (!k->s->topic_missing)
            SF_ERROR("sink",
                     "sink %s: topic \"%s\" does not exist; its events are retried until "
                     "it is created",
                     k->s->name, k->c->topic);
        k->s->topic_missing = true;
    }
    if (st == SF_DELIV_OK)
        k->s->fault = SF_SINK_FAULT_NONE; /* delivered: the broker's certificate is accepted */
    if (st == SF_DELIV_OK && k->s->topic_missing) {
        SF_INFO("sink", "sink %s: topic \"%s\" exists now", k->s->name, k->c->topic);
        k->s->topic_missing = false;
    }
    if (st != SF_DELIV_OK) {
        k->bad++;
        if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE || !k->s->fault) /* else: the cause kept */
            snprintf(k->reason, sizeof k->reason, "kafka: %s (%s)", rd_kafka_err2str(m->err),
                     rd_kafka_err2name(m->err));
        if (st == SF_DELIV_REJECT)
            set_reason(k, i, k->reason);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kprod *p = opaque;
    if (p->retired)
        return;
    kafka_t *k = p->k;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char es[256];
        rd_kafka_fatal_error(rk, es, sizeof es);
        SF_ERROR("sink", "sink %s: kafka producer fatal error: %s; it is recreated", k->s->name,
                 es);
        k->fatal = true;
        return;
    }
    /* transport errors are retried by librdkafka; visible in /readyz until the next success */
    SF_WARN("sink", "sink %s: kafka: %s", k->s->name, reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
        err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL) {
        k->s->healthy = false;
        sf_sink_set_error(k->s, "kafka: %s", reason);
    }
    /* the broker's certificate cannot be verified (librdkafka: "SSL handshake failed: ...
     * certificate verify failed: broker certificate could not be verified", rdkafka_ssl.c): a
     * configuration problem (sink.h). librdkafka would hold the records until message_timeout;
     * those still queued are handed back now (purged: RETRY) so that the pipeline treats the
     * batch as such (bounded runs fail at once, follow mode retries slowly). */
    if (err == RD_KAFKA_RESP_ERR__SSL && reason && strstr(reason, "certificate verify failed")) {
        k->s->fault = SF_SINK_FAULT_TLS_VERIFY;
        snprintf(k->reason, sizeof k->reason, "kafka: %s", reason);
        if (k->rk && k->pending)
            rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE);
    }
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const kprod *p = rd_kafka_opaque(rk);
    if (p->retired)
        return;
    /* syslog levels; errors (<= 3) also come to error_cb, which logs them once */
    if (level <= 3)
        SF_DEBUG("sink", "librdkafka %s: %s", fac, buf);
    else if (level == 4)
        SF_WARN("sink", "librdkafka %s: %s", fac, buf);
    else if (level <= 6)
        SF_INFO("sink", "librdkafka %s: %s", fac, buf);
    else
        SF_DEBUG("sink", "librdkafka %s: %s", fac, buf);
}

/* Hands records to librdkafka from k->next on, up to max_inflight awaiting reports. */
static void produce(kafka_t *k)
{
    sf_sink_batch *b = k->b;
    while (b && k->next < b->n && k->pending < (size_t)k->c->max_inflight && !k->fatal) {
        size_t i = k->next;
        const sf_buf *rec = &b->records[i];
        const char *key = k->c->key == SF_KAFKA_KEY_EVENT_ID ? b->events[i]->id : NULL;
        size_t keylen = key ? strlen(key) : 0;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            k->rk, RD_KAFKA_V_TOPIC(k->c->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(rec->data, rec->len), RD_KAFKA_V_KEY(key, keylen),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(i + 1)), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && k->pending)
            break; /* more room once reports come in */
        k->next++;
        if (!err) {
            k->pending++;
            continue;
        }
        sf_deliv_status st = sf_kafka_classify(err);
        b->status[i] = st == SF_DELIV_OK ? SF_DELIV_RETRY : st;
        k->bad++;
        snprintf(k->reason, sizeof k->reason, "kafka: %s (%s)", rd_kafka_err2str(err),
                 rd_kafka_err2name(err));
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* nothing of ours in librdkafka's queue and still no room: the record alone is
             * larger than queue.buffering.max.kbytes, it never fits (permanent) */
            b->status[i] = SF_DELIV_REJECT;
            snprintf(k->reason, sizeof k->reason,
                     "kafka: record of %zu bytes larger than librdkafka's whole queue "
                     "(queue.buffering.max.kbytes) (%s)",
                     rec->len, rd_kafka_err2name(err));
        }
        if (b->status[i] == SF_DELIV_REJECT)
            set_reason(k, i, k->reason);
        if (err == RD_KAFKA_RESP_ERR__FATAL)
            k->fatal = true;
    }
    if (b && k->fatal) { /* the rest waits for a new producer */
        for (size_t i = k->next; i < b->n; i++)
            b->status[i] = SF_DELIV_RETRY;
        k->next = b->n;
    }
}

static void drain_pipe(kafka_t *k)
{
    char buf[64];
    while (read(k->pipefd[0], buf, sizeof buf) > 0)
        ;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    kafka_t *k = h->data;
    drain_pipe(k);
    serve(k);
}

static void on_tick(uv_timer_t *t)
{
    serve(t->data);
}

static int new_producer(kafka_t *k, char *err, size_t errlen);
static void retire_producer(kafka_t *k);

/* Replaces the producer after a fatal error, once every report of the old one is in (its
 * records are RETRY). A failed creation is retried from the timer, with backoff. */
static void recreate(kafka_t *k)
{
    retire_producer(k);
    char es[512];
    if (new_producer(k, es, sizeof es) == 0) {
        if (k->recreate_failures)
            SF_INFO("sink", "sink %s: kafka producer recreated", k->s->name);
        k->fatal = false;
        k->recreate_failures = 0;
        return;
    }
    int64_t ms = sf_backoff_ms(k->recreate_failures++, 1000, 60000);
    if (ms < 1000)
        ms = 1000; /* the timer's period */
    k->recreate_at = uv_now(k->s->loop) + (uint64_t)ms;
    SF_ERROR("sink", "sink %s: cannot recreate the kafka producer: %s; retried in %lld ms",
             k->s->name, es, (long long)ms);
}

static void serve(kafka_t *k)
{
    if (!k->rk) {
        if (k->fatal && !k->closed && uv_now(k->s->loop) >= k->recreate_at)
            recreate(k);
        if (!k->rk)
            return;
    }
    rd_kafka_poll(k->rk, 0);
    k->s->producer_queue = (uint64_t)rd_kafka_outq_len(k->rk);
    produce(k);
    if (k->fatal && !k->pending && !k->closed)
        recreate(k);
    finish(k);
}

static int new_producer(kafka_t *k, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = sf_kafka_conf_build(k->c, NULL, 0, NULL, err, errlen, NULL);
    if (!conf)
        return -EINVAL;
    kprod *p = calloc(1, sizeof *p);
    if (!p) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->k = k;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return -EINVAL;
    }
    k->rk = rk;
    k->prod = p;
    k->mainq = rd_kafka_queue_get_main(rk);
    rd_kafka_set_log_queue(rk, NULL); /* logs on the main queue: served on the loop */
    rd_kafka_queue_io_event_enable(k->mainq, k->pipefd[1], "1", 1);
    return 0;
}

static void retire_work(uv_work_t *w)
{
    retire_t *r = w->data;
    rd_kafka_destroy(r->rk); /* joins librdkafka's threads: off the loop */
    free(r->p);
}

static void retire_done(uv_work_t *w, int status)
{
    retire_t *r = w->data;
    kafka_t *k = r->k;
    free(r);
    k->retiring--;
    maybe_closed(k);
}

/* Stops the current producer (what it still holds is purged: those records were never
 * reported OK, so they stay RETRY) and destroys it on a worker thread. */
static void retire_producer(kafka_t *k)
{
    rd_kafka_t *rk = k->rk;
    if (!rk)
        return;
    rd_kafka_queue_io_event_enable(k->mainq, -1, NULL, 0);
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk, 0); /* the purged records' reports, as far as they are in */
    rd_kafka_queue_destroy(k->mainq);
    kprod *p = k->prod;
    p->retired = true;
    k->mainq = NULL;
    k->rk = NULL;
    k->prod = NULL;
    k->pending = 0; /* reports still to come are ignored (k->b is done or reset) */
    retire_t *r = calloc(1, sizeof *r);
    if (!r) {
        rd_kafka_destroy(rk);
        free(p);
        return;
    }
    r->k = k;
    r->rk = rk;
    r->p = p;
    r->work.data = r;
    k->retiring++;
    if (uv_queue_work(k->s->loop, &r->work, retire_work, retire_done) != 0) {
        k->retiring--;
        free(r);
        rd_kafka_destroy(rk);
        free(p);
    }
}

static int kafka_open(sf_sink *s)
{
    kafka_t *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->s = s;
    k->c = s->cfg->type_cfg;
    k->pipefd[0] = k->pipefd[1] = -1;
    char es[512];
    int rc;
    if (pipe2(k->pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
        sf_sink_set_error(s, "pipe: %s", strerror(errno));
        free(k);
        return rc;
    }
    if ((rc = new_producer(k, es, sizeof es)) != 0) {
        sf_sink_set_error(s, "kafka: %s", es);
        close(k->pipefd[0]);
        close(k->pipefd[1]);
        free(k);
        return rc;
    }
    uv_poll_init(s->loop, &k->poll, k->pipefd[0]);
    k->poll.data = k;
    uv_poll_start(&k->poll, UV_READABLE, on_readable);
    uv_timer_init(s->loop, &k->timer);
    k->timer.data = k;
    uv_timer_start(&k->timer, on_tick, 1000, 1000);
    k->handles = 2;
    s->state = k;
    s->batch_max = (size_t)k->c->max_inflight; /* queued pages fill one batch */
    return 0;
}

static int kafka_submit(sf_sink *s, sf_sink_batch *b)
{
    kafka_t *k = s->state;
    k->b = b;
    k->next = k->pending = k->bad = 0;
    k->reason[0] = '\0';
    for (size_t i = 0; i < b->n; i++)
        b->status[i] = SF_DELIV_RETRY; /* until its delivery report says otherwise */
    if (!k->rk) {
        k->next = b->n;
        k->bad = b->n;
        snprintf(k->reason, sizeof k->reason, "kafka: no producer (see the error above)");
    }
    produce(k);
    finish(k); /* everything refused at once (too large...): done now */
    return 0;
}

static void flush_cb(sf_sink *s)
{
    kafka_t *k = s->state;
    if (!k->rk)
        return;
    rd_kafka_flush(k->rk, 0); /* send what lingers now (serves the reports that are in) */
    finish(k);
}

static void maybe_closed(kafka_t *k)
{
    if (k->closed && !k->handles && !k->retiring) {
        void (*cb)(sf_sink *) = k->closed;
        k->closed = NULL;
        cb(k->s);
    }
}

static void handle_closed(uv_handle_t *h)
{
    kafka_t *k = h->data;
    k->handles--;
    maybe_closed(k);
}

static void kafka_close(sf_sink *s, void (*closed)(sf_sink *s))
{
    kafka_t *k = s->state;
    k->closed = closed;
    retire_producer(k);
    if (k->b) { /* given up: the unreported records stay RETRY (not delivered) */
        k->pending = 0;
        k->next = k->b->n;
        finish(k);
    }
    uv_close((uv_handle_t *)&k->poll, handle_closed);
    uv_close((uv_handle_t *)&k->timer, handle_closed);
}

static void kafka_destroy(sf_sink *s)
{
    kafka_t *k = s->state;
    if (!k)
        return;
    close(k->pipefd[0]);
    close(k->pipefd[1]);
    free(k);
    s->state = NULL;
}

static bool topic_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static void kafka_validate(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    const sf_kafka_cfg *c = cfg;
    size_t before = errs->n;
    if (c->topic && !topic_ok(c->topic))
        sf_cfg_error_at(errs, node, "topic",
                        "topic: a Kafka topic name is 1-249 characters of [A-Za-z0-9._-]");
    if (c->brokers.n == 0)
        sf_cfg_error_at(errs, node, "brokers", "brokers: at least one host:port");
    if (c->idempotence && c->acks != SF_KAFKA_ACKS_ALL)
        sf_cfg_error_at(errs, node, "acks",
                        "acks: the idempotent producer needs acks: all "
                        "(or idempotence: false)");
    const sf_cfg_node *sn = node ? sf_cfg_map_get(node, "sasl") : NULL;
    if (c->sasl.mechanism != SF_KAFKA_SASL_NONE && (!c->sasl.username || !c->sasl.password))
        sf_cfg_error_at(errs, sn, "mechanism", "sasl: %s needs username and password",
                        mech_values[c->sasl.mechanism]);
    if (c->sasl.mechanism == SF_KAFKA_SASL_NONE && (c->sasl.username || c->sasl.password))
        sf_cfg_error_at(errs, sn, "username", "sasl: credentials given but sasl.mechanism is none");
    if (sf_cfg_map_get(node, "tls") && c->transport != SF_KAFKA_TLS)
        sf_cfg_error_at(errs, node, "tls", "tls: only applies with transport: tls");
    const sf_cfg_node *tn = node ? sf_cfg_map_get(node, "tls") : NULL;
    sf_tls_validate(&c->tls, node, "tls", errs);
    if (c->tls.server_name && *c->tls.server_name)
        sf_cfg_error_at(errs, tn, "server_name",
                        "tls.server_name: not supported by the kafka sink (librdkafka checks "
                        "each broker's advertised name)");
    if (c->tls.min_version != SF_TLS_V1_2)
        sf_cfg_error_at(errs, tn, "min_version",
                        "tls.min_version: only 1.2 with the kafka sink (librdkafka negotiates "
                        "1.2 or later)");
    if (c->transport == SF_KAFKA_TLS && !c->tls.verify)
        sf_cfg_warn_at(errs, tn ? tn : node, "verify",
                       "tls.verify is false: the brokers' certificates are NOT checked");
    if (c->transport != SF_KAFKA_TLS && c->sasl.mechanism == SF_KAFKA_SASL_PLAIN)
        sf_cfg_warn_at(errs, node, "transport",
                       "sasl plain over transport plaintext: the password crosses the network "
                       "in clear");
    /* secrets of the pass-through are redacted like the table's SF_OPT_SECRET values */
    for (size_t i = 0; i < c->librdkafka.n; i++)
        if (sf_kafka_property_secret(c->librdkafka.k[i]))
            sf_log_add_secret(c->librdkafka.v[i]);
    /* librdkafka's own verdict on every property (unknown names, bad values, codecs this
     * build lacks), then on the whole (a producer created without brokers: what open()'s
     * rd_kafka_new checks), without the files of this machine (--syntax-only); the whole
     * only when the rest is right (librdkafka would repeat e.g. the acks error) */
    if (errs->n == before) {
        sf_kafka_conf_probe(c, node, false, errs);
    } else {
        char es[256];
        rd_kafka_conf_t *conf =
            sf_kafka_conf_build(c, node, SF_KAFKA_NO_BROKERS, errs, es, sizeof es, NULL);
        if (conf)
            rd_kafka_conf_destroy(conf);
    }
}

static void kafka_check_env(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    const sf_kafka_cfg *c = cfg;
    size_t before = errs->n;
    if (c->transport == SF_KAFKA_TLS)
        sf_tls_check_files(&c->tls, node, "tls", errs);
    if (errs->n == before) /* the whole again, with the files (TLS material, *.location) */
        sf_kafka_conf_probe(c, node, true, errs);
}

const sf_sink_ops sf_sink_kafka_ops = {
    .type = "kafka",
    .desc = "Produces records to a Kafka topic with librdkafka (idempotent, acks all), each "
            "record delivered only on its delivery report (docs/sinks-kafka.md).",
    .options = kafka_options,
    .cfg_size = sizeof(sf_kafka_cfg),
    .validate = kafka_validate,
    .check_env = kafka_check_env,
    .open = kafka_open,
    .submit = kafka_submit,
    .flush = flush_cb,
    .close = kafka_close,
    .destroy = kafka_destroy,
};
