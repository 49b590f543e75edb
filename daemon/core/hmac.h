/* hmac: HMAC-SHA256 through OpenSSL's EVP_MAC (no hand-written crypto), hex output, and
 * base64 through EVP_EncodeBlock. */
#ifndef SF_HMAC_H
#define SF_HMAC_H

#include <stddef.h>

#include "core/util.h"

#define SF_HMAC_SHA256_HEX_LEN 64

/* HMAC-SHA256(key, parts[0] || parts[1] || ...) as lower-case hex into out (>= 65 bytes).
 * Returns 0 or -EINVAL (OpenSSL failure). */
int sf_hmac_sha256_hex(const void *key, size_t keylen, const void *const *parts, const size_t *lens,
                       size_t nparts, char *out);

/* Appends the standard base64 (RFC 4648, padded, no newlines) of p to out. 0 or -ENOMEM. */
int sf_base64_append(sf_buf *out, const void *p, size_t n);

#endif
