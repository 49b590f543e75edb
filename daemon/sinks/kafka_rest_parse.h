/* kafka_rest_parse: pure interpretation of Kafka REST proxy answers (Confluent v2 and v3,
 * Redpanda's v2 variant) into per-record delivery statuses. See docs/sinks-http.md. */
#ifndef SF_KAFKA_REST_PARSE_H
#define SF_KAFKA_REST_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "sinks/sink.h"

enum { SF_KR_API_V2 = 0, SF_KR_API_V3 = 1 };
/* v2 answer flavour: auto (per record only when it is certain), Confluent (one offsets entry
 * per record, in order), Redpanda (one entry per partition, raw Kafka error codes). */
enum { SF_KR_AUTO = 0, SF_KR_CONFLUENT = 1, SF_KR_REDPANDA = 2 };

/* Status of one error code: codes >= 1000 are Confluent's (50003 retriable; 50002, 40101,
 * 40301 not), 1 and 2 are Confluent's legacy codes unless raw_kafka, small codes otherwise are
 * Kafka protocol codes (retriable ones per Kafka's RetriableException list). */
sf_deliv_status sf_kr_code_status(long code, bool raw_kafka);

/* Classifies one request of n records. api: SF_KR_API_*; flavor: SF_KR_*; partition: the
 * partition the records were explicitly sent to, or -1. transport_error: SF_HTTP_* or 0.
 * Fills st[0..n-1] and reason (the first problem, for logs and dead letters). Returns the
 * number of records not OK. */
size_t sf_kr_classify(int api, int flavor, int64_t partition, long http_status, int transport_error,
                      const char *body, size_t len, size_t n, sf_deliv_status *st, char *reason,
                      size_t reasonlen);

#endif
