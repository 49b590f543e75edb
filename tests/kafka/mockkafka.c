/* mockkafka: a Kafka cluster for the tests, librdkafka's mock cluster (rdkafka_mock.h: a real
 * Kafka protocol peer over loopback TCP, the one librdkafka's own test suite uses).
 *
 *   mockkafka [BROKERS]
 *
 * prints "bootstrap HOST:PORT,..." and then serves until stdin closes, reading one command a
 * line and answering "ok" (or "error ...") to each:
 *
 *   topic NAME PARTITIONS        create a topic (replication factor 1)
 *   errors COUNT CODE            the next COUNT Produce requests fail with Kafka error CODE
 *                                (rd_kafka_mock_push_request_errors)
 *   down ID / up ID              take broker ID (1..BROKERS) down / bring it back
 *   consume TOPIC                every record of TOPIC, from the start of every partition:
 *                                "msg PARTITION OFFSET KEYHEX VALUEHEX" lines ("-" for no key),
 *                                then "ok"
 *   quit                         exit */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const void *p, size_t n)
{
    const unsigned char *b = p;
    if (!p) {
        fputs("-", stdout);
        return;
    }
    if (!n)
        fputs("=", stdout);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
}

static int consume(const char *bootstrap, const char *topic)
{
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, es, sizeof es) ||
        rd_kafka_conf_set(conf, "group.id", "mockkafka", es, sizeof es) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", es, sizeof es) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", es, sizeof es)) {
        printf("error %s\n", es);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof es);
    if (!rk) {
        printf("error %s\n", es);
        return -1;
    }
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        printf("error metadata: %s\n", rd_kafka_err2str(err             ? err
                                                        : md->topic_cnt ? md->topics[0].err
                                                                        : 3));
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return -1;
    }
    int np = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int eofs = 0, idle = 0;
    while (eofs < np && idle < 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        idle = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eofs++;
        else if (m->err)
            fprintf(stderr, "mockkafka: consume: %s\n", rd_kafka_message_errstr(m));
        else {
            printf("msg %d %lld ", (int)m->partition, (long long)m->offset);
            hex(m->key, m->key_len);
            putchar(' ');
            hex(m->payload, m->len);
            putchar('\n');
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (eofs < np) {
        printf("error only %d of %d partitions read to their end\n", eofs, np);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = argc > 1 ? atoi(argv[1]) : 1;
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", es, sizeof es); /* no bootstrap.servers: fine */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    if (!rk) {
        fprintf(stderr, "mockkafka: %s\n", es);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers < 1 ? 1 : brokers);
    if (!mc) {
        fprintf(stderr, "mockkafka: cannot create the mock cluster\n");
        return 1;
    }
    char *bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(mc));
    printf("bootstrap %s\n", bootstrap);
    fflush(stdout);
    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        char a[512] = "";
        long n = 0, code = 0;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (sscanf(line, "topic %511s %ld", a, &n) == 2)
            err = rd_kafka_mock_topic_create(mc, a, (int)n, 1);
        else if (sscanf(line, "errors %ld %ld", &n, &code) == 2) {
            for (long i = 0; i < n; i++)
                rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 1,
                                                  (rd_kafka_resp_err_t)code);
        } else if (sscanf(line, "down %ld", &n) == 1)
            err = rd_kafka_mock_broker_set_down(mc, (int32_t)n);
        else if (sscanf(line, "up %ld", &n) == 1)
            err = rd_kafka_mock_broker_set_up(mc, (int32_t)n);
        else if (sscanf(line, "consume %511s", a) == 1) {
            if (consume(bootstrap, a) != 0) {
                fflush(stdout);
                continue;
            }
        } else if (strncmp(line, "quit", 4) == 0)
            break;
        else {
            printf("error unknown command\n");
            fflush(stdout);
            continue;
        }
        if (err)
            printf("error %s\n", rd_kafka_err2str(err));
        else
            printf("ok\n");
        fflush(stdout);
    }
    free(bootstrap);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
