/* libFuzzer target: bytes -> sf_config_load_text (YAML, ${VAR} expansion, every section, sink
 * and format validation; token_file paths may be read) -> sf_config_free. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* a couple of variables for ${VAR} / ${VAR:-default} expansion */
    setenv("SF_FUZZ_TOKEN", "tok", 1);
    setenv("SF_FUZZ_EMPTY", "", 1);
    sf_log_set_level(SF_LOG_ERROR); /* token-file mode warnings would flood the output */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sf_config cfg;
    sf_cfg_errors errs;
    memset(&errs, 0, sizeof errs);
    int rc = sf_config_load_text("fuzz.yaml", (const char *)data, size, &cfg, &errs);
    if (rc < 0 && errs.n == 0)
        abort(); /* a rejected config must say why */
    for (size_t i = 0; i < errs.n; i++)
        if (!errs.msgs[i])
            abort();
    sf_config_free(&cfg);
    sf_cfg_errors_free(&errs);
    return 0;
}
