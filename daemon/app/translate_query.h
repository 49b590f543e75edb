/* translate-query: `sysdig-forwarder translate-query [--json] [--now T] PATTERN` prints the
 * Secure Events queries for a STIX pattern (query/sysdig_query.h), one per line in
 * stix-shifter's form from=<ns>&to=<ns>&filter=<filter>, or {"queries":[...]} with --json. */
#ifndef SF_TRANSLATE_QUERY_H
#define SF_TRANSLATE_QUERY_H

/* argv[0] == "translate-query". Returns the exit code: 0 translated, 2 usage error or a
 * pattern it cannot translate (the position and the reason on stderr). */
int sf_translate_query_main(int argc, char **argv);

#endif
