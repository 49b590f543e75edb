/* kafka_conf: the librdkafka side of the "kafka" sink (sink_kafka.c): its configuration struct,
 * the translation of it into an rd_kafka_conf_t (used both at load time, so librdkafka's own
 * error for a bad property is a FILE:LINE:COL configuration error, and by open()), and the
 * classification of a delivery report's error into the pipeline's OK / RETRY / REJECT. */
#ifndef SF_KAFKA_CONF_H
#define SF_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "net/tls.h"
#include "sinks/sink.h"

enum { SF_KAFKA_KEY_EVENT_ID = 0, SF_KAFKA_KEY_NONE };
enum { SF_KAFKA_ACKS_ALL = 0, SF_KAFKA_ACKS_LEADER };
enum { SF_KAFKA_PLAINTEXT = 0, SF_KAFKA_TLS };
enum {
    SF_KAFKA_SASL_NONE = 0,
    SF_KAFKA_SASL_PLAIN,
    SF_KAFKA_SASL_SCRAM256,
    SF_KAFKA_SASL_SCRAM512
};

typedef struct sf_kafka_cfg {
    sf_strlist brokers;
    char *topic;
    int key, compression, acks, transport;
    bool idempotence;
    int64_t message_timeout_ms, linger_ms;
    int64_t max_inflight; /* records produced and awaiting their delivery report */
    struct {
        int mechanism;
        char *username, *password;
    } sasl;
    sf_tls_cfg tls;
    sf_kvlist librdkafka; /* pass-through, applied last */
} sf_kafka_cfg;

/* compression values, in librdkafka's spelling */
extern const char *const sf_kafka_compression_values[];

/* Whether a librdkafka property holds a secret (its value is redacted in logs and errors). */
bool sf_kafka_property_secret(const char *name);

/* What sf_kafka_conf_build leaves out (flags). */
enum {
    SF_KAFKA_NO_BROKERS = 1, /* bootstrap.servers: the producer connects to nothing */
    SF_KAFKA_NO_FILES = 2,   /* properties naming files of this machine (TLS files, *.location) */
};

/* Builds the producer configuration of c. With errs (load time), every property librdkafka
 * refuses, and every pass-through property the sink refuses (those it sets itself, those that
 * break its delivery reports: delivery.report.only.error, transactional.id), is an error at
 * the position of the key it came from in the sink's map 'node'; without (open), the first
 * refusal is written to err. *left_out (if given): SF_KAFKA_NO_FILES left something out.
 * NULL on error. */
rd_kafka_conf_t *sf_kafka_conf_build(const sf_kafka_cfg *c, const sf_cfg_node *node, int flags,
                                     sf_cfg_errors *errs, char *err, size_t errlen, bool *left_out);

/* librdkafka's checks of the configuration as a whole, those only rd_kafka_new makes
 * (properties that go together, such as idempotence and max.in.flight; TLS material): a
 * producer without brokers is created and destroyed at once. files false (load time, so
 * --check-config --syntax-only too): without the properties naming files of this machine;
 * true (the environment check): with them. A refusal is an error at the sink's librdkafka key
 * (else its map), so start-up (open) does not fail on what this could find. Returns whether
 * properties were left out (files false: the environment check must probe again). */
bool sf_kafka_conf_probe(const sf_kafka_cfg *c, const sf_cfg_node *node, bool files,
                         sf_cfg_errors *errs);

/* The pipeline's answer for a delivery report's (or a produce call's) error. */
sf_deliv_status sf_kafka_classify(rd_kafka_resp_err_t err);

#endif
