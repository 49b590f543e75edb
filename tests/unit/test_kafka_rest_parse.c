#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "sinks/kafka_rest_parse.h"

typedef struct {
    int api, flavor;
    long partition, status;
    int err;
    const char *body;
    const char *expect; /* per record: O ok, R retry, X reject */
    const char *reason_has;
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
    {V2, AUTO, -1, 404, 0, "{\"error_code\":40401,\"message\":\"Topic x not found.\"}", "XX",
     "40401 (topic not found): Topic x not found."},
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
    {V3, AUTO, -1, 404, 0, "{\"error_code\":40401,\"message\":\"no topic\"}", "X", "40401"},
};

START_TEST(classify)
{
    const kcase *c = &cases[_i];
    size_t n = strlen(c->expect);
    sf_deliv_status st[16];
    char reason[320] = "";
    size_t bad = sf_kr_classify(c->api, c->flavor, c->partition, c->status, c->err, c->body,
                                c->body ? strlen(c->body) : 0, n, st, reason, sizeof reason);
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
