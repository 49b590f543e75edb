/* tls: the shared TLS option table, its checks, and its application to libcurl and OpenSSL.
 * See tls.h. */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/util.h"

#define OFF(f) offsetof(sf_tls_cfg, f)

const char *const sf_tls_version_names[] = {"1.2", "1.3", NULL};

const sf_cfg_option sf_tls_options[] = {
    {.name = "verify",
     .type = SF_OPT_BOOL,
     .def = "true",
     .desc = "Verify the server certificate (chain and name); false only for tests",
     .offset = OFF(verify)},
    {.name = "ca_file",
     .type = SF_OPT_STR,
     .flags = SF_OPT_PATH,
     .desc = "CA bundle (PEM) to verify the server with (default: the system store)",
     .offset = OFF(ca_file)},
    {.name = "cert_file",
     .type = SF_OPT_STR,
     .flags = SF_OPT_PATH,
     .desc = "Client certificate chain (PEM) for mutual TLS",
     .offset = OFF(cert_file)},
    {.name = "key_file",
     .type = SF_OPT_STR,
     .flags = SF_OPT_PATH,
     .desc = "Client private key (PEM; default: cert_file); needs cert_file",
     .offset = OFF(key_file)},
    {.name = "key_password",
     .type = SF_OPT_STR,
     .flags = SF_OPT_SECRET,
     .desc = "Passphrase of an encrypted client key; needs cert_file",
     .offset = OFF(key_password)},
    {.name = "server_name",
     .type = SF_OPT_STR,
     .desc = "Name sent as SNI and checked in the certificate (default: the host of the url or "
             "address). HTTP: the request is addressed to this name (Host header too) while the "
             "connection goes to the url's host and port",
     .offset = OFF(server_name)},
    {.name = "min_version",
     .type = SF_OPT_ENUM,
     .def = "1.2",
     .enum_values = sf_tls_version_names,
     .desc = "Lowest TLS version accepted",
     .offset = OFF(min_version)},
    {0},
};

bool sf_tls_is_ip_literal(const char *s)
{
    unsigned char tmp[16];
    return s && (inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1);
}

/* A DNS name (letters, digits, '-', '_', dots) or an IP address literal. */
static bool valid_server_name(const char *s)
{
    size_t n = strlen(s);
    if (n > 253)
        return false;
    if (sf_tls_is_ip_literal(s))
        return true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

int sf_tls_validate(const sf_tls_cfg *t, const sf_cfg_node *parent, const char *path,
                    sf_cfg_errors *errs)
{
    const sf_cfg_node *tls = parent ? sf_cfg_map_get(parent, "tls") : NULL;
    size_t before = errs->n;
    if (!tls || tls->kind != SF_NODE_MAP)
        return 0; /* defaults only (a wrong kind was reported by the engine) */
    if (t->key_file && !t->cert_file)
        sf_cfg_error_at(errs, tls, "key_file", "%s.key_file needs %s.cert_file", path, path);
    if (t->key_password && !t->cert_file)
        sf_cfg_error_at(errs, tls, "key_password",
                        "%s.key_password needs %s.cert_file (it unlocks the client key)", path,
                        path);
    if (t->server_name && *t->server_name && !valid_server_name(t->server_name))
        sf_cfg_error_at(errs, tls, "server_name",
                        "%s.server_name: \"%.*s\" is not a host name or an IP address", path,
                        SF_CFG_MAX_VALUE_SHOWN, t->server_name);
    return (int)(errs->n - before);
}

const char *sf_tls_peer_name(const sf_tls_cfg *t, const char *host)
{
    return t && t->server_name && *t->server_name ? t->server_name : host;
}

/* ---- libcurl ---- */

/* For server_name over https: the URL with server_name as its host, and the CONNECT_TO entry
 * "server_name:port:host:port" that sends the connection to the original host. */
static int connect_to_url(const sf_tls_cfg *t, const char *url, char **new_url, char **entry)
{
    int rc = -ENOMEM;
    char *scheme = NULL, *host = NULL, *port = NULL;
    *new_url = *entry = NULL;
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        rc = -EINVAL;
        goto out;
    }
    rc = 0;
    if (strcasecmp(scheme, "https") != 0)
        goto out; /* no TLS: nothing to name */
    rc = -EINVAL;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    rc = 0;
    if (strcasecmp(host, t->server_name) == 0)
        goto out;
    rc = -ENOMEM;
    sf_buf name = {0}, e = {0};
    bool v6 = strchr(t->server_name, ':') != NULL;
    if (sf_buf_appendf(&name, v6 ? "[%s]" : "%s", t->server_name) ||
        sf_buf_appendf(&e, "%s:%s:%s:%s", name.data, port, host, port)) {
        sf_buf_free(&name);
        sf_buf_free(&e);
        goto out;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_HOST, name.data, 0);
    sf_buf_free(&name);
    if (uc != CURLUE_OK || curl_url_get(u, CURLUPART_URL, new_url, 0) != CURLUE_OK) {
        sf_buf_free(&e);
        rc = uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
        goto out;
    }
    *entry = sf_buf_steal(&e);
    rc = *entry ? 0 : -ENOMEM;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        CURLcode c_ = curl_easy_setopt(e, opt, val);                                               \
        if (c_ != CURLE_OK)                                                                        \
            return c_ == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;                                  \
    } while (0)

int sf_tls_curl_setup(const sf_tls_cfg *t, void *easy, const char *url,
                      struct curl_slist **connect_to)
{
    static const sf_tls_cfg defaults = {.verify = true};
    CURL *e = easy;
    *connect_to = NULL;
    if (!t)
        t = &defaults;
    SETOPT(CURLOPT_SSL_VERIFYPEER, t->verify ? 1L : 0L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, t->verify ? 2L : 0L);
    if (t->ca_file)
        SETOPT(CURLOPT_CAINFO, t->ca_file);
    if (t->cert_file)
        SETOPT(CURLOPT_SSLCERT, t->cert_file);
    if (t->key_file)
        SETOPT(CURLOPT_SSLKEY, t->key_file);
    if (t->key_password)
        SETOPT(CURLOPT_KEYPASSWD, t->key_password);
    SETOPT(CURLOPT_SSLVERSION, t->min_version == SF_TLS_V1_3 ? (long)CURL_SSLVERSION_TLSv1_3
                                                             : (long)CURL_SSLVERSION_TLSv1_2);
    if (!t->server_name || !*t->server_name)
        return 0;
    char *new_url, *entry;
    int rc = connect_to_url(t, url, &new_url, &entry);
    if (rc || !new_url)
        return rc;
    struct curl_slist *l = curl_slist_append(NULL, entry);
    free(entry);
    CURLcode c = l ? curl_easy_setopt(e, CURLOPT_URL, new_url) : CURLE_OUT_OF_MEMORY;
    curl_free(new_url);
    if (c == CURLE_OK)
        c = curl_easy_setopt(e, CURLOPT_CONNECT_TO, l);
    if (c != CURLE_OK) {
        curl_slist_free_all(l);
        return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
    }
    *connect_to = l;
    return 0;
}

/* ---- OpenSSL ---- */

void sf_tls_errstr(char *out, size_t outlen)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(out, outlen, "unknown TLS error");
        return;
    }
    ERR_error_string_n(e, out, outlen);
    ERR_clear_error();
}

/* The context for t; on failure NULL, *bad the tls key at fault (ca_file, cert_file,
 * key_file, or "" if none), *file the file and err OpenSSL's reason. */
static SSL_CTX *ctx_build(const sf_tls_cfg *t, const char **bad, const char **file, char *err,
                          size_t errlen)
{
    ERR_clear_error();
    *bad = *file = "";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx,
                                  t->min_version == SF_TLS_V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (t->verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = t->ca_file ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(ctx);
        if (!ok) {
            *bad = "ca_file";
            *file = t->ca_file ? t->ca_file : "(system)";
            goto fail;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (t->cert_file) {
        const char *key = t->key_file ? t->key_file : t->cert_file;
        if (t->key_password)
            SSL_CTX_set_default_passwd_cb_userdata(ctx, t->key_password);
        if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
            *bad = "cert_file";
            *file = t->cert_file;
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            *bad = t->key_file ? "key_file" : "cert_file";
            *file = key;
            goto fail;
        }
        SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    }
    return ctx;
fail:
    sf_tls_errstr(err, errlen);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    SSL_CTX_free(ctx);
    return NULL;
}

struct ssl_ctx_st *sf_tls_ctx_new(const sf_tls_cfg *t, char *err, size_t errlen)
{
    const char *bad, *file;
    char es[200];
    SSL_CTX *ctx = ctx_build(t, &bad, &file, es, sizeof es);
    if (!ctx && *bad)
        snprintf(err, errlen, "tls.%s %s: %s", bad, file, es);
    else if (!ctx)
        snprintf(err, errlen, "%s", es);
    return ctx;
}

int sf_tls_check_files(const sf_tls_cfg *t, const sf_cfg_node *parent, const char *path,
                       sf_cfg_errors *errs)
{
    if (!t->cert_file && !(t->verify && t->ca_file))
        return 0; /* nothing of ours to load */
    const char *bad, *file;
    char es[200];
    SSL_CTX *ctx = ctx_build(t, &bad, &file, es, sizeof es);
    if (ctx) {
        SSL_CTX_free(ctx);
        return 0;
    }
    const sf_cfg_node *tls = parent ? sf_cfg_map_get(parent, "tls") : NULL;
    sf_cfg_error_at(errs, tls ? tls : parent, *bad ? bad : "tls", "%s.%s: %s: %s", path,
                    *bad ? bad : "", file, es);
    return 1;
}

int sf_tls_ssl_setup(struct ssl_st *ssl, const sf_tls_cfg *t, const char *host)
{
    const char *name = sf_tls_peer_name(t, host);
    bool ip = sf_tls_is_ip_literal(name);
    if (!ip && !SSL_set_tlsext_host_name(ssl, name))
        return -1;
    if (!t || t->verify) {
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                    : SSL_set1_host(ssl, name);
        if (!ok)
            return -1;
    }
    return 0;
}
