/* translate: `sysdig-forwarder translate --format NAME [FILE]` — converts events from a file or
 * stdin (JSON array, API page {"data":[...]}, or NDJSON) to one output record per line. */
#ifndef SF_TRANSLATE_H
#define SF_TRANSLATE_H

/* argv[0] == "translate". Returns the process exit code: 0 all converted, 1 some event failed
 * (each reported on stderr with its position), 2 usage or input-open error. */
int sf_translate_main(int argc, char **argv);

#endif
