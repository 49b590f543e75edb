#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "sinks/kafka_rest_parse.h"

/* the case table leaves 'missing' out where it is 0 */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

typedef struct {
    int api, flavor;
    long partition, status;
    int err;
    const char *body;
    const char *expect; /* per record: O ok, R retry, X reject */
    const char *reason_has;
    int missing; /* 1: the answer says the topic does not exist (sf_kr_info.topic_missing) */
} kcase;

#define V2 SF_KR_API_V2
#define V3 SF_KR_API_V3
#define AUTO SF_KR_AUTO
#define CONF SF_KR_CONFLUENT
#define RP SF_KR_REDPANDA

static const kcase cases[] = {
    /* Confluent v2, one entry per record in order */
    {V2, AUTO, -1, 200, 0,
     "{\"offsets\":[{\"partition\":0,\"offset\":1,\"error_code\":null,\"error\":null},"
     "{\"partition\":0,\"offset\":2}],\"key_schema_id\":null,\"value_schema_id\":null}",
     "OO", NULL},
    {V2, AUTO, -1, 200, 0,
     "{\"offsets\":[{\"partition\":0,\"offset\":1,\"error_code\":null},"
     "{\"partition\":null,\"offset\":null,\"error_code\":50003,\"error\":\"timeout\"},"
     "{\"partition\":null,\"offset\":null,\"error_code\":40101,\"error\":\"denied\"},"
     "{\"offset\":null,\"error_code\":2},{\"offset\":null,\"error_code\":1},"
     "{\"offset\":null,\"error_code\":50002},{\"offset\":null,\"error_code\":40301}],"
     "\"key_schema_id\":null}",
     "ORXRXXX", "error_code 50003"},
    {V2, CONF, -1, 200, 0, "{\"offsets\":[{\"offset\":5},{\"offset\":-1,\"error_code\":null}]}",
     "OR", NULL},
    {V2, AUTO, -1, 200, 0, "{\"offsets\":[{\"partition\":2,\"offset\":9}]}", "O", NULL},
    /* Redpanda per partition: all ok */
    {V2, AUTO, -1, 200, 0,
     "{\"offsets\":[{\"partition\":0,\"offset\":3},{\"partition\":1,\"offset\":7}]}", "OOO", NULL},
    /* ambiguous mapping, a retriable raw Kafka code: the whole request is retried */
    {V2, AUTO, -1, 200, 0,
     "{\"offsets\":[{\"partition\":0,\"offset\":3},{\"partition\":1,\"offset\":-1,"
     "\"error_code\":7}]}",
     "RRR", "cannot be mapped"},
    /* ambiguous, only non-retriable failures (29 topic authorization): rejected */
    {V2, RP, -1, 200, 0, "{\"offsets\":[{\"partition\":1,\"offset\":-1,\"error_code\":29}]}", "XX",
     "error_code 29"},
    /* Redpanda with n entries == n records is still per partition */
    {V2, RP, -1, 200, 0,
     "{\"offsets\":[{\"partition\":0,\"offset\":3},{\"partition\":1,\"offset\":-1,"
     "\"error_code\":3}]}",
     "RR", NULL},
    /* explicit partition: that entry decides */
    {V2, RP, 1, 200, 0, "{\"offsets\":[{\"partition\":1,\"offset\":40}]}", "OOO", NULL},
    {V2, RP, 1, 200, 0, "{\"offsets\":[{\"partition\":1,\"offset\":-1,\"error_code\":6}]}", "RRR",
     NULL},
    {V2, RP, 1, 200, 0, "{\"offsets\":[{\"partition\":1,\"offset\":-1,\"error_code\":10}]}", "XX",
     "error_code 10"},
    /* garbage 200 bodies: never assumed delivered */
    {V2, AUTO, -1, 200, 0, "<html>ok</html>", "RR", "without an offsets list"},
    {V2, AUTO, -1, 200, 0, "{\"offsets\":[]}", "R", NULL},
    {V2, AUTO, -1, 200, 0, "", "R", "empty body"},
    {V2, AUTO, -1, 200, 0, "{\"offsets\":[{\"offset\":1}", "RR", NULL},
    /* whole-request errors */
    /* 40401: the producer's TimeoutException "not present in metadata" (rest-utils
     * KafkaExceptionMapper), retriable in Kafka: retried, flagged */
    {V2, AUTO, -1, 404, 0, "{\"error_code\":40401,\"message\":\"Topic x not found.\"}", "RR",
     "40401 (topic not found): Topic x not found.", 1},
    {V2, AUTO, -1, 404, 0, "{\"error_code\":40402,\"message\":\"Partition 9 not found.\"}", "X",
     "partition not found"},
    {V2, AUTO, -1, 422, 0, "{\"error_code\":42201,\"message\":\"bad\"}", "XX",
     "invalid request payload"},
    {V2, AUTO, -1, 404, 0, "{\"error_code\":40404,\"message\":\"leader\"}", "RR",
     "leader not available"},
    {V2, AUTO, -1, 500, 0, "{\"error_code\":50001,\"message\":\"x\"}", "R", NULL},
    {V2, AUTO, -1, 500, 0, "{\"error_code\":50003,\"message\":\"x\"}", "R", NULL},
    {V2, AUTO, -1, 503, 0, "{\"error_code\":50302,\"message\":\"x\"}", "R", NULL},
    {V2, AUTO, -1, 429, 0, "<html>Too Many Requests</html>", "RR", "rate limited"},
    {V2, AUTO, -1, 502, 0, "", "R", "HTTP 502"},
    {V2, AUTO, -1, 401, 0, "{\"error_code\":40101,\"message\":\"Unauthorized\"}", "X",
     "unauthorized"},
    {V2, AUTO, -1, 415, 0, "", "X", "HTTP 415"},
    {V2, AUTO, -1, 0, SF_HTTP_ECONNECT, NULL, "RR", "connect"},
    /* v3: concatenated reports */
    {V3, AUTO, -1, 200, 0,
     "{\"error_code\":200,\"partition_id\":0,\"offset\":1}\n{\"error_code\":200,\"offset\":2}",
     "OO", NULL},
    {V3, AUTO, -1, 200, 0,
     "{\"error_code\":200,\"offset\":1}{\"error_code\":500,\"message\":\"timeout\"}\r\n"
     "{\"error_code\":400,\"message\":\"bad record\"} {\"error_code\":429}"
     "{\"error_code\":50003}{\"error_code\":40101}",
     "ORXRRX", "error_code 500: timeout"},
    {V3, AUTO, -1, 200, 0, "{\"error_code\":200,\"offset\":1}", "ORR", "2 of 3"},
    {V3, AUTO, -1, 200, 0, "{\"error_code\":200}{garbage", "ORR", NULL},
    {V3, AUTO, -1, 200, 0, "{\"offset\":1}", "R", NULL},
    {V3, AUTO, -1, 429, 0, "<html><body>429</body></html>", "RR", "HTTP 429"},
    {V3, AUTO, -1, 404, 0, "{\"error_code\":40401,\"message\":\"no topic\"}", "R", "40401", 1},

    /* --- issue 12: the servers as their source says they answer --- */
    /* Confluent v2: a record failing authorization makes the whole answer 403 (401 for
     * authentication) with every record's entry in the body: the others are still per record */
    {V2, AUTO, -1, 403, 0,
     "{\"offsets\":[{\"partition\":0,\"offset\":4,\"error_code\":null,\"error\":null},"
     "{\"partition\":null,\"offset\":null,\"error_code\":40301,\"error\":\"Not authorized\"},"
     "{\"partition\":null,\"offset\":null,\"error_code\":50003,\"error\":\"Expiring 1 "
     "record(s)\"},{\"partition\":1,\"offset\":9,\"error_code\":null,\"error\":null}],"
     "\"key_schema_id\":null,\"value_schema_id\":null}",
     "OXRO", "error_code 40301 (forbidden): Not authorized"},
    {V2, CONF, -1, 401, 0,
     "{\"offsets\":[{\"partition\":null,\"offset\":null,\"error_code\":40101,\"error\":\"x\"},"
     "{\"partition\":2,\"offset\":1}]}",
     "XO", "40101"},
    /* 401/403 without offsets: the whole request */
    {V2, AUTO, -1, 403, 0, "{\"error_code\":40301,\"message\":\"denied\"}", "XX", "forbidden"},
    /* Confluent v2, current releases: a missing topic is 200 with every entry 50003 "Topic X not
     * present in metadata after N ms." (KafkaProducer.waitOnMetadata): retried, flagged */
    {V2, AUTO, -1, 200, 0,
     "{\"offsets\":[{\"partition\":null,\"offset\":null,\"error_code\":50003,\"error\":"
     "\"Topic nope not present in metadata after 60000 ms.\"},{\"partition\":null,\"offset\":"
     "null,\"error_code\":50003,\"error\":\"Topic nope not present in metadata after 60000 "
     "ms.\"}],\"key_schema_id\":null,\"value_schema_id\":null}",
     "RR", "(topic not found): Topic nope not present in metadata", 1},
    /* whole-request codes (rest-utils KafkaExceptionMapper, kafka-rest KafkaRestExceptionMapper) */
    {V2, AUTO, -1, 500, 0, "{\"error_code\":50002,\"message\":\"Kafka error\"}", "XX",
     "50002 (Kafka error (not retriable))"},
    {V2, AUTO, -1, 500, 0, "{\"error_code\":500,\"message\":\"Internal Server Error\"}", "R", NULL},
    {V2, AUTO, -1, 429, 0, "{\"error_code\":42901,\"message\":\"quota\"}", "R", "throttled"},
    {V2, AUTO, -1, 400, 0, "{\"error_code\":40002,\"message\":\"bad\"}", "X", "bad request"},
    {V2, AUTO, -1, 408, 0, "{\"error_code\":40801,\"message\":\"serializer\"}", "R", NULL},
    {V2, AUTO, -1, 413, 0, "{\"error_code\":413,\"message\":\"too large\"}", "X",
     "batch.max_bytes"},
    {V2, AUTO, -1, 404, 0,
     "{\"error_code\":40403,\"message\":\"This server does not host "
     "this topic-partition.\"}",
     "RR", "unknown topic or partition", 1},
    /* a path the server does not route (seastar's routes.cc answer; Confluent Cloud without
     * /kafka): rejected, with the hint */
    {V2, AUTO, -1, 404, 0, "{\"message\":\"Not found\",\"code\":404}", "X", "/kafka"},
    /* Redpanda: a missing topic is 200 with UNKNOWN_TOPIC_OR_PARTITION (3), offset -1, on the
     * partition(s) produced to (pandaproxy_test.py test_produce_topic): retried, flagged */
    {V2, AUTO, -1, 200, 0, "{\"offsets\":[{\"partition\":0,\"error_code\":3,\"offset\":-1}]}",
     "RRR", "unknown topic or partition", 1},
    {V2, RP, 2, 200, 0, "{\"offsets\":[{\"partition\":2,\"error_code\":3,\"offset\":-1}]}", "RR",
     NULL, 1},
    {V2, RP, 2, 200, 0, "{\"offsets\":[{\"partition\":2,\"error_code\":55,\"offset\":-1}]}", "RR",
     NULL},
    /* v3: per-record codes are Confluent's (KafkaExceptionMapper is StreamingResponse's default
     * mapper) */
    {V3, AUTO, -1, 200, 0,
     "{\"error_code\":40401,\"message\":\"Topic t not present in metadata after 60000 ms.\"}\n"
     "{\"error_code\":40401,\"message\":\"Topic t not present in metadata after 60000 ms.\"}",
     "RR", "40401 (topic not found)", 1},
    {V3, AUTO, -1, 200, 0,
     "{\"error_code\":50002,\"message\":\"x\"}{\"error_code\":408,\"message\":\"Streaming "
     "connection open for longer than allowed: Connection will be closed.\"}",
     "XR", "50002"},
    /* v3 stream cut part-way: the reports received count, the rest is retried */
    {V3, AUTO, -1, 200, SF_HTTP_EOTHER,
     "{\"error_code\":200,\"offset\":1}\n{\"error_code\":50003,\"message\":\"t\"}\n"
     "{\"error_code\":200,\"offset\":3}\n{\"error_code\":2",
     "ORORR", "error_code 50003"},
    {V3, AUTO, -1, 200, SF_HTTP_ECONNECT, "{\"error_code\":200,\"offset\":1}\n{\"err", "ORR",
     "cut after 1 of 3"},
    {V3, AUTO, -1, 0, SF_HTTP_ETIMEOUT, "", "RR", "timeout"},
    {V3, AUTO, -1, 500, SF_HTTP_EOTHER, "{\"error_code\":200}", "RR", NULL},
    /* a cut v2 answer cannot be read: everything retried */
    {V2, CONF, -1, 200, SF_HTTP_EOTHER, "{\"offsets\":[{\"offset\":1},{\"offset\":2}]}", "RR",
     NULL},
};

START_TEST(classify)
{
    const kcase *c = &cases[_i];
    size_t n = strlen(c->expect);
    sf_deliv_status st[16];
    char reason[320] = "";
    sf_kr_info info = {.topic_missing = !c->missing}; /* must be set either way */
    size_t bad = sf_kr_classify(c->api, c->flavor, c->partition, c->status, c->err, c->body,
                                c->body ? strlen(c->body) : 0, n, st, reason, sizeof reason, &info);
    size_t want_bad = 0;
    for (size_t i = 0; i < n; i++) {
        sf_deliv_status want = c->expect[i] == 'O'   ? SF_DELIV_OK
                               : c->expect[i] == 'R' ? SF_DELIV_RETRY
                                                     : SF_DELIV_REJECT;
        want_bad += want != SF_DELIV_OK;
        ck_assert_msg(st[i] == want, "case %d record %zu: got %d want %d (%s)", _i, i, st[i], want,
                      reason);
    }
    ck_assert_uint_eq(bad, want_bad);
    ck_assert_msg(info.topic_missing == (c->missing == 1), "case %d: topic_missing %d (%s)", _i,
                  info.topic_missing, reason);
    if (c->reason_has)
        ck_assert_msg(strstr(reason, c->reason_has), "case %d: reason '%s' lacks '%s'", _i, reason,
                      c->reason_has);
}
END_TEST

START_TEST(code_table)
{
    ck_assert_int_eq(sf_kr_code_status(0, false), SF_DELIV_OK);
    ck_assert_int_eq(sf_kr_code_status(50003, false), SF_DELIV_RETRY);
    ck_assert_int_eq(sf_kr_code_status(2, false), SF_DELIV_RETRY);
    ck_assert_int_eq(sf_kr_code_status(1, false), SF_DELIV_REJECT);
    ck_assert_int_eq(sf_kr_code_status(50002, false), SF_DELIV_REJECT);
    ck_assert_int_eq(sf_kr_code_status(40101, true), SF_DELIV_REJECT);
    ck_assert_int_eq(sf_kr_code_status(40301, false), SF_DELIV_REJECT);
    /* raw Kafka codes */
    ck_assert_int_eq(sf_kr_code_status(2, true), SF_DELIV_RETRY);   /* CORRUPT_MESSAGE */
    ck_assert_int_eq(sf_kr_code_status(6, true), SF_DELIV_RETRY);   /* NOT_LEADER */
    ck_assert_int_eq(sf_kr_code_status(19, true), SF_DELIV_RETRY);  /* NOT_ENOUGH_REPLICAS */
    ck_assert_int_eq(sf_kr_code_status(10, true), SF_DELIV_REJECT); /* MESSAGE_TOO_LARGE */
    ck_assert_int_eq(sf_kr_code_status(29, true), SF_DELIV_REJECT); /* TOPIC_AUTHORIZATION */
    ck_assert_int_eq(sf_kr_code_status(-1, true), SF_DELIV_RETRY);  /* UNKNOWN_SERVER_ERROR */
    /* Kafka's RetriableException subclasses (Errors.java) */
    ck_assert_int_eq(sf_kr_code_status(3, true), SF_DELIV_RETRY);   /* UNKNOWN_TOPIC_OR_PART. */
    ck_assert_int_eq(sf_kr_code_status(9, true), SF_DELIV_RETRY);   /* REPLICA_NOT_AVAILABLE */
    ck_assert_int_eq(sf_kr_code_status(74, true), SF_DELIV_RETRY);  /* FENCED_LEADER_EPOCH */
    ck_assert_int_eq(sf_kr_code_status(8, true), SF_DELIV_REJECT);  /* BROKER_NOT_AVAILABLE */
    ck_assert_int_eq(sf_kr_code_status(87, true), SF_DELIV_REJECT); /* INVALID_RECORD */
    ck_assert_int_eq(sf_kr_code_status(55, true), SF_DELIV_RETRY);  /* Redpanda: not attempted */
    /* Confluent codes */
    ck_assert_int_eq(sf_kr_code_status(40403, false), SF_DELIV_RETRY);
    ck_assert_int_eq(sf_kr_code_status(40401, false), SF_DELIV_RETRY);
    ck_assert_int_eq(sf_kr_code_status(40402, false), SF_DELIV_REJECT);
    ck_assert_int_eq(sf_kr_code_status(42901, false), SF_DELIV_RETRY);
    ck_assert_int_eq(sf_kr_code_status(429001, false), SF_DELIV_RETRY);
    ck_assert_int_eq(sf_kr_code_status(40801, false), SF_DELIV_RETRY);
    ck_assert_int_eq(sf_kr_code_status(40002, false), SF_DELIV_REJECT);
    ck_assert_int_eq(sf_kr_code_status(50302, false), SF_DELIV_RETRY);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kafka_rest_parse");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, classify, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, code_table);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
