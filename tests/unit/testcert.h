/* Throwaway PKI for TLS unit tests, made with the OpenSSL API at test time (EC P-256, valid for
 * a day): a CA, a server certificate for localhost / 127.0.0.1 signed by it, a client
 * certificate (CN sf-client) signed by it, a server certificate naming only siem.example.com, the
 * client key also encrypted with TC_KEY_PASSWORD, and an unrelated CA (verification against it must
 * fail). Header-only. */
#ifndef SF_TESTCERT_H
#define SF_TESTCERT_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TC_KEY_PASSWORD "pki-pass-3c1d"

typedef struct tc_pki {
    char ca[512], other_ca[512];
    char srv_cert[512], srv_key[512];
    char named_cert[512], named_key[512]; /* only DNS:siem.example.com */
    char cli_cert[512], cli_key[512], cli_key_enc[512];
} tc_pki;

static inline void tc_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for key, signed by ca/ca_key (self-signed when ca is NULL). */
static inline X509 *tc_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *ca,
                            EVP_PKEY *ca_key, bool is_ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : n);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
    tc_ext(x, &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca)
        tc_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san)
        tc_ext(x, &ctx, NID_subject_alt_name, san);
    ck_assert_int_gt(X509_sign(x, ca_key ? ca_key : key, EVP_sha256()), 0);
    return x;
}

static inline void tc_write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, x), 1);
    fclose(f);
}

static inline void tc_write_key(const char *path, EVP_PKEY *k, const char *password)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, k, password ? EVP_aes_128_cbc() : NULL, NULL, 0, NULL,
                                          (void *)password),
                     1);
    fclose(f);
}

static inline void tc_path(char *out, const char *dir, const char *name)
{
    int w = snprintf(out, 512, "%s/%s", dir, name);
    ck_assert(w > 0 && w < 512);
}

/* Writes the PKI into dir. */
static inline void tc_make_pki(tc_pki *p, const char *dir)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *srv_key = EVP_EC_gen("P-256");
    EVP_PKEY *cli_key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
    ck_assert(ca_key && srv_key && cli_key && other_key);
    X509 *ca = tc_cert(ca_key, "sf test CA", NULL, NULL, NULL, true);
    X509 *other = tc_cert(other_key, "other CA", NULL, NULL, NULL, true);
    X509 *srv = tc_cert(srv_key, "localhost", "DNS:localhost,IP:127.0.0.1", ca, ca_key, false);
    X509 *cli = tc_cert(cli_key, "sf-client", NULL, ca, ca_key, false);
    X509 *named = tc_cert(srv_key, "siem.example.com", "DNS:siem.example.com", ca, ca_key, false);
    tc_path(p->ca, dir, "ca.pem");
    tc_path(p->other_ca, dir, "other.pem");
    tc_path(p->srv_cert, dir, "server.pem");
    tc_path(p->srv_key, dir, "server.key");
    tc_path(p->named_cert, dir, "named.pem");
    tc_path(p->named_key, dir, "named.key");
    tc_path(p->cli_cert, dir, "client.pem");
    tc_path(p->cli_key, dir, "client.key");
    tc_path(p->cli_key_enc, dir, "client-enc.key");
    tc_write_cert(p->ca, ca);
    tc_write_cert(p->other_ca, other);
    tc_write_cert(p->srv_cert, srv);
    tc_write_key(p->srv_key, srv_key, NULL);
    tc_write_cert(p->named_cert, named);
    tc_write_key(p->named_key, srv_key, NULL);
    tc_write_cert(p->cli_cert, cli);
    tc_write_key(p->cli_key, cli_key, NULL);
    tc_write_key(p->cli_key_enc, cli_key, TC_KEY_PASSWORD);
    X509_free(ca);
    X509_free(other);
    X509_free(srv);
    X509_free(cli);
    X509_free(named);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(cli_key);
    EVP_PKEY_free(other_key);
}

#endif
