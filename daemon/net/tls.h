/* tls: the one TLS client configuration of the daemon, declared once.
 *
 * Every TLS user (the source, the HTTP sinks webhook / splunk_hec / kafka_rest, the syslog sink)
 * embeds an sf_tls_cfg and declares its "tls" section with the shared table:
 *
 *     {.name = "tls", .type = SF_OPT_SECTION, .sub = sf_tls_options,
 *      .offset = offsetof(my_cfg, tls), .desc = "TLS settings"},
 *
 * (section sub-tables take offsets relative to the section's .offset, config/cfg.h), checks it
 * with sf_tls_validate() from its validate step, and applies it with sf_tls_curl_setup() (HTTP,
 * through net/http.c) or sf_tls_ctx_new() + sf_tls_ssl_setup() (raw streams, net/stream.c).
 * A new sink gets TLS by declaring the section. */
#ifndef SF_TLS_H
#define SF_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/cfg.h"

/* tls.min_version */
enum { SF_TLS_V1_2 = 0, SF_TLS_V1_3 = 1 };

typedef struct sf_tls_cfg {
    bool verify;        /* peer certificate chain and name (default true) */
    char *ca_file;      /* PEM bundle; NULL: the system store */
    char *cert_file;    /* client certificate chain (PEM), mutual TLS */
    char *key_file;     /* client private key (PEM); NULL: in cert_file */
    char *key_password; /* passphrase of an encrypted key (a secret: redacted in logs) */
    char *server_name;  /* SNI and the name checked in the certificate; NULL/"": the host */
    int min_version;    /* SF_TLS_V1_2 (default) or SF_TLS_V1_3 */
} sf_tls_cfg;

/* The "tls" section's keys: verify, ca_file, cert_file, key_file, key_password, server_name,
 * min_version. Offsets are relative to sf_tls_cfg. */
extern const sf_cfg_option sf_tls_options[];
/* The values of min_version ("1.2", "1.3"), NULL-terminated. */
extern const char *const sf_tls_version_names[];

/* Cross-field checks of a loaded sf_tls_cfg: key_file and key_password need cert_file,
 * server_name must be a host name or an IP address. 'parent' is the map holding the "tls" key
 * (a sink's map, the source section); errors are reported at the offending key with
 * sf_cfg_error_at, their text prefixed with 'path' ("tls", "source.tls"). Returns the number
 * of errors added. */
int sf_tls_validate(const sf_tls_cfg *t, const sf_cfg_node *parent, const char *path,
                    sf_cfg_errors *errs);

/* Loads what t names (ca_file when verifying, cert_file, key_file with key_password) as a
 * connection would, so a file that is missing, unreadable, not PEM, or a key that does not
 * match its certificate is a configuration error (FILE:LINE:COL at the key) instead of a
 * failure at the first connection. Returns the number of errors added. */
int sf_tls_check_files(const sf_tls_cfg *t, const sf_cfg_node *parent, const char *path,
                       sf_cfg_errors *errs);

/* The name a connection to 'host' sends as SNI and checks the certificate against. */
const char *sf_tls_peer_name(const sf_tls_cfg *t, const char *host);
/* Whether s is an IPv4 or IPv6 address literal (no brackets). */
bool sf_tls_is_ip_literal(const char *s);

/* ---- libcurl (HTTP users, through net/http.c) ---- */
struct curl_slist;
/* Applies t (NULL: the defaults) to a curl easy handle (a CURL *) whose request goes to url:
 * CURLOPT_SSL_VERIFYPEER/VERIFYHOST, CAINFO, SSLCERT, SSLKEY, KEYPASSWD, SSLVERSION. With a
 * server_name and an https:// url, the URL's host is replaced by server_name (SNI, certificate
 * name and Host header) and CURLOPT_CONNECT_TO sends the connection to the URL's own host and
 * port; *connect_to then holds the list, which the caller frees (curl_slist_free_all) after
 * the transfer. 0, -ENOMEM or -EINVAL. */
int sf_tls_curl_setup(const sf_tls_cfg *t, void *easy, const char *url,
                      struct curl_slist **connect_to);

/* ---- OpenSSL (raw streams, net/stream.c) ---- */
struct ssl_ctx_st;
struct ssl_st;
/* A client SSL_CTX for t: minimum version, verification (ca_file or the system store), client
 * certificate and key (decrypted with key_password). NULL with a message in err (which names
 * the tls.* key at fault). Free with SSL_CTX_free. */
struct ssl_ctx_st *sf_tls_ctx_new(const sf_tls_cfg *t, char *err, size_t errlen);
/* Per connection: SNI (a host name, not an IP literal) and, with verify, the name or IP
 * address the certificate must carry, from sf_tls_peer_name(t, host). 0 or -1. */
int sf_tls_ssl_setup(struct ssl_st *ssl, const sf_tls_cfg *t, const char *host);
/* The oldest queued OpenSSL error as text (queue cleared), "unknown TLS error" if none. */
void sf_tls_errstr(char *out, size_t outlen);

#endif
