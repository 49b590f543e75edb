/* failplugin: a librdkafka plugin (plugin.library.paths; librdkafka's rdkafka_plugin.c calls
 * its conf_init for every configuration that names it) that makes creating a producer fail
 * while the file named by $SF_TEST_PLUGIN_FAIL exists: how test_sink_kafka makes the
 * re-creation of a producer fail at run time (and then succeed) without touching the daemon. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

rd_kafka_resp_err_t conf_init(rd_kafka_conf_t *conf, void **plug_opaquep, char *errstr,
                              size_t errstr_size);

rd_kafka_resp_err_t conf_init(rd_kafka_conf_t *conf, void **plug_opaquep, char *errstr,
                              size_t errstr_size)
{
    const char *f = getenv("SF_TEST_PLUGIN_FAIL");
    if (f && access(f, F_OK) == 0) {
        snprintf(errstr, errstr_size, "failplugin: %s exists", f);
        return RD_KAFKA_RESP_ERR__FAIL;
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}
