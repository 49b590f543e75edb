/* kafka_rest_parse: pure interpretation of Kafka REST proxy answers (Confluent v2 and v3,
 * Redpanda's v2 variant) into per-record delivery statuses. See docs/sinks-http.md; the
 * servers' behaviour, with its sources, is emulated by tests/fakekafka/kafka_rest.py. */
#ifndef SF_KAFKA_REST_PARSE_H
#define SF_KAFKA_REST_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sinks/sink.h"

enum { SF_KR_API_V2 = 0, SF_KR_API_V3 = 1 };
/* v2 answer flavour: auto (per record only when it is certain), Confluent (one offsets entry
 * per record, in order), Redpanda (one entry per partition, raw Kafka error codes). */
enum { SF_KR_AUTO = 0, SF_KR_CONFLUENT = 1, SF_KR_REDPANDA = 2 };

/* Status of one error code. Codes >= 1000 are Confluent's (rest-utils' KafkaExceptionMapper,
 * kafka-rest's Errors.java): 40401 / 40403 (topic missing), 40404, 40801, 429xx, 50003, other
 * 5xxxx retriable; 50002, 40002, 40101, 40301, 40402, 422xx and the other 4xxxx not. 1 and 2
 * are Confluent's legacy codes unless raw_kafka; small codes otherwise are Kafka protocol codes
 * (retriable: Kafka's RetriableException subclasses, plus -1 and 55 as Redpanda's proxy uses
 * them). */
sf_deliv_status sf_kr_code_status(long code, bool raw_kafka);

/* What an answer said beyond the per-record statuses. */
typedef struct sf_kr_info {
    bool topic_missing; /* the topic does not exist (or the proxy cannot see it): retried */
} sf_kr_info;

/* Classifies one request of n records. api: SF_KR_API_*; flavor: SF_KR_*; partition: the
 * partition the records were explicitly sent to, or -1. transport_error: SF_HTTP_* or 0; with
 * one, http_status and body are what arrived before the failure (sf_http_response's
 * partial_status and body): a v3 stream cut part-way keeps the reports received. Fills
 * st[0..n-1], reason (the first problem, for logs and dead letters) and *info (may be NULL).
 * Returns the number of records not OK. */
size_t sf_kr_classify(int api, int flavor, int64_t partition, long http_status, int transport_error,
                      const char *body, size_t len, size_t n, sf_deliv_status *st, char *reason,
                      size_t reasonlen, sf_kr_info *info);

#endif
