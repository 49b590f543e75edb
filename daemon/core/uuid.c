/* uuid: UUIDv5 = SHA-1(namespace bytes || name), truncated to 16 bytes, version and variant set;
 * UUIDv4 = 122 random bits. */
#include "core/uuid.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sf_uuid_parse(const char *s, sf_uuid *out)
{
    size_t n = 0;
    if (!s || strlen(s) != SF_UUID_STR_LEN)
        return -EINVAL;
    for (size_t i = 0; i < SF_UUID_STR_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -EINVAL;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out->b[n++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    return 0;
}

int sf_uuid_v4(sf_uuid *out)
{
    if (RAND_bytes(out->b, (int)sizeof out->b) != 1)
        return -EIO;
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40);
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
    return 0;
}

/* SHA-1, fetched from the provider once: SHA1() and EVP_sha1() fetch it on every digest, and
 * the fetch (a locked lookup) cost more than hashing a STIX id's name. Kept for the process's
 * life; NULL if the fetch failed (then every digest fails: -EIO). */
static EVP_MD *sha1_md;

static void fetch_sha1(void)
{
    sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
}

int sf_uuid_v5(const sf_uuid *ns, const void *name, size_t len, sf_uuid *out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = -EIO;
    pthread_once(&once, fetch_sha1);
    if (!sha1_md)
        return -EIO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    if (EVP_DigestInit_ex(ctx, sha1_md, NULL) != 1 ||
        EVP_DigestUpdate(ctx, ns->b, sizeof ns->b) != 1 ||
        (len && EVP_DigestUpdate(ctx, name, len) != 1) ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16)
        goto out;
    memcpy(out->b, md, 16);
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x50);
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

void sf_uuid_format(const sf_uuid *u, char out[SF_UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u->b[i] >> 4];
        out[o++] = hex[u->b[i] & 15];
    }
    out[o] = '\0';
}
