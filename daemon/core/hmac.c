#include "core/hmac.h"

#include <errno.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

int sf_hmac_sha256_hex(const void *key, size_t keylen, const void *const *parts, const size_t *lens,
                       size_t nparts, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    int rc = -EINVAL;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    /* EVP_MAC_init treats a NULL key as "reuse the previous one": give it a valid pointer */
    static const unsigned char empty_key[1];
    if (!ctx || !EVP_MAC_init(ctx, keylen ? key : empty_key, keylen, params))
        goto out;
    for (size_t i = 0; i < nparts; i++)
        if (lens[i] && !EVP_MAC_update(ctx, parts[i], lens[i]))
            goto out;
    if (!EVP_MAC_final(ctx, mac, &maclen, sizeof mac) || maclen != 32)
        goto out;
    for (size_t i = 0; i < maclen; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[2 * maclen] = '\0';
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return rc;
}

int sf_base64_append(sf_buf *out, const void *p, size_t n)
{
    /* EVP_EncodeBlock takes an int length: encode in chunks that are multiples of 3 */
    const unsigned char *s = p;
    enum { CHUNK = 3 * 1024 * 1024 };
    if (n == 0)
        return out->data ? 0 : sf_buf_append(out, "", 0);
    while (n > 0) {
        size_t take = n > CHUNK ? CHUNK : n;
        size_t enc = 4 * ((take + 2) / 3);
        int rc = sf_buf_reserve(out, enc + 1);
        if (rc)
            return rc;
        int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, s, (int)take);
        if (w < 0 || (size_t)w != enc)
            return -EINVAL;
        out->len += enc;
        out->data[out->len] = '\0';
        s += take;
        n -= take;
    }
    return 0;
}
