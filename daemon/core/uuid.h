/* uuid: name-based UUIDv5 (RFC 9562 §5.5, SHA-1 via OpenSSL's EVP API) and random UUIDv4
 * (RFC 9562 §5.4, OpenSSL's RAND_bytes). */
#ifndef SF_UUID_H
#define SF_UUID_H

#include <stddef.h>
#include <stdint.h>

#define SF_UUID_STR_LEN 36 /* without the NUL */

typedef struct sf_uuid {
    uint8_t b[16];
} sf_uuid;

/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (any case). Returns 0 or -EINVAL. */
int sf_uuid_parse(const char *s, sf_uuid *out);
/* UUIDv5 of name (len bytes) in namespace ns. Returns 0 or -ENOMEM / -EIO (OpenSSL failure). */
int sf_uuid_v5(const sf_uuid *ns, const void *name, size_t len, sf_uuid *out);
/* Random UUIDv4. Returns 0 or -EIO (no randomness from OpenSSL). */
int sf_uuid_v4(sf_uuid *out);
/* Lower-case text form; out must hold SF_UUID_STR_LEN + 1 bytes. */
void sf_uuid_format(const sf_uuid *u, char out[SF_UUID_STR_LEN + 1]);

#endif
