/* stix_pattern: a recursive-descent parser for STIX 2.x patterns (OASIS STIX Patterning, the
 * grammar of stix2-patterns' STIXPattern.g4) into a small tree. It knows nothing of Sysdig: the
 * translator (query/sysdig_query.h) decides what it supports.
 *
 * Precedence, lowest first: FOLLOWEDBY, observation OR, observation AND, qualifiers (START/STOP,
 * WITHIN, REPEATS) on an observation; inside [...]: OR, AND, then one comparison
 * (`path [NOT] op value`, `EXISTS path` or a parenthesised expression). Keywords are upper case,
 * as in the grammar. Every node keeps the byte offset of its text so errors can point at it.
 *
 * The tree lives in one arena, freed with sf_stix_pattern_free. */
#ifndef SF_STIX_PATTERN_H
#define SF_STIX_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An error and where: pos is a byte offset into the pattern (shown 1-based as "position"). */
typedef struct sf_sp_error {
    size_t pos;
    char msg[256];
} sf_sp_error;

typedef enum {
    SF_SP_LIT_STR,   /* s/len: the unescaped text */
    SF_SP_LIT_INT,   /* i */
    SF_SP_LIT_FLOAT, /* s/len: the source text */
    SF_SP_LIT_BOOL,  /* i: 0 or 1 */
    SF_SP_LIT_TIME,  /* i: ns since the Unix epoch (exact, integer arithmetic) */
    SF_SP_LIT_BIN,   /* s/len: the base64 text between the quotes */
    SF_SP_LIT_HEX,   /* s/len: the hex text between the quotes */
} sf_sp_lit_kind;

typedef struct sf_sp_lit {
    sf_sp_lit_kind kind;
    const char *s; /* NUL-terminated (arena) */
    size_t len;
    int64_t i;
    size_t pos;
} sf_sp_lit;

typedef enum {
    SF_SP_EQ,
    SF_SP_NE,
    SF_SP_LT,
    SF_SP_LE,
    SF_SP_GT,
    SF_SP_GE,
    SF_SP_IN,
    SF_SP_LIKE,
    SF_SP_MATCHES,
    SF_SP_ISSUBSET,
    SF_SP_ISSUPERSET,
} sf_sp_op;

/* "=", "!=", ..., "IN", "LIKE" */
const char *sf_sp_op_name(sf_sp_op op);

typedef enum { SF_SP_TEST, SF_SP_EXISTS, SF_SP_AND, SF_SP_OR } sf_sp_cmp_kind;

typedef struct sf_sp_cmp {
    sf_sp_cmp_kind kind;
    size_t pos;
    struct sf_sp_cmp *l, *r; /* AND, OR */
    /* TEST, EXISTS: object type ("x-ibm-finding") and property path in canonical text
     * ("severity", "extensions.'x-oca-container-ext'.container_id", "values[*]") */
    const char *object, *path;
    size_t path_pos;
    bool negated; /* `NOT` before the operator */
    sf_sp_op op;
    size_t op_pos;
    sf_sp_lit *vals; /* one value; IN: the set's elements (nvals may be 0) */
    size_t nvals;
} sf_sp_cmp;

typedef enum { SF_SP_Q_START_STOP, SF_SP_Q_WITHIN, SF_SP_Q_REPEATS } sf_sp_qual_kind;

typedef struct sf_sp_qual {
    sf_sp_qual_kind kind;
    size_t pos;
    int64_t start_ns, stop_ns; /* START_STOP */
    sf_sp_lit n;               /* WITHIN seconds (int or float), REPEATS times (int) */
} sf_sp_qual;

/* OBS_GROUP: "( ... )" with qualifiers of its own around an expression that had some already
 * (child l); other groups are their inner expression (qualifiers go on its node). */
typedef enum {
    SF_SP_OBS,
    SF_SP_OBS_AND,
    SF_SP_OBS_OR,
    SF_SP_FOLLOWEDBY,
    SF_SP_OBS_GROUP
} sf_sp_obs_kind;

typedef struct sf_sp_obs {
    sf_sp_obs_kind kind;
    size_t pos;
    struct sf_sp_obs *l, *r; /* OBS_AND, OBS_OR, FOLLOWEDBY; OBS_GROUP: l */
    sf_sp_cmp *cmp;          /* OBS: the [...] */
    sf_sp_qual *quals;       /* qualifiers written after this observation expression, in order */
    size_t nquals;
} sf_sp_obs;

typedef struct sf_stix_pattern sf_stix_pattern;

/* Parses text[0..len). Returns 0 and *out, -EINVAL with *err (position and message), or
 * -ENOMEM. */
int sf_stix_pattern_parse(const char *text, size_t len, sf_stix_pattern **out, sf_sp_error *err);
const sf_sp_obs *sf_stix_pattern_root(const sf_stix_pattern *p);
void sf_stix_pattern_free(sf_stix_pattern *p);

#endif
