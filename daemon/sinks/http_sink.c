/* http_sink: the shared parts of the HTTP sinks (see http_sink.h). */
#include "sinks/http_sink.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/hmac.h"
#include "core/log.h"

void sf_http_sink_validate_url(const sf_http_sink_cfg *c, const sf_cfg_node *node,
                               sf_cfg_errors *errs)
{
    int line, col;
    sf_cfg_pos(node, "url", &line, &col);
    if (!c->url)
        return;
    if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
        sf_cfg_error(errs, line, col, "url: must start with http:// or https://");
        return;
    }
    /* parsed by libcurl's URL API, as the requests will be: what passes here can be sent */
    CURLU *u = curl_url();
    if (!u) {
        sf_cfg_error(errs, line, col, "url: out of memory");
        return;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, c->url, 0);
    char *host = NULL;
    if (uc == CURLUE_OK && (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host))
        uc = CURLUE_NO_HOST;
    if (uc != CURLUE_OK)
        sf_cfg_error(errs, line, col, "url: \"%.*s\" is not a valid URL (%s)",
                     SF_CFG_MAX_VALUE_SHOWN, c->url, curl_url_strerror(uc));
    curl_free(host);
    curl_url_cleanup(u);
}

void sf_http_sink_warn_transport(const sf_http_sink_cfg *c, const sf_cfg_node *node,
                                 bool sends_credentials, sf_cfg_errors *errs)
{
    if (!c->url)
        return;
    if (strncmp(c->url, "http://", 7) == 0 && sends_credentials)
        sf_cfg_warn_at(errs, node, "url",
                       "credentials are sent over plain http:// (readable on the network): use "
                       "https://");
    if (strncmp(c->url, "https://", 8) == 0 && !c->tls.verify)
        sf_cfg_warn_at(errs, sf_cfg_map_get(node, "tls") ? sf_cfg_map_get(node, "tls") : node,
                       "verify", "tls.verify is false: the receiver's certificate is NOT checked");
}

void sf_http_sink_check_env(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    const sf_http_sink_cfg *c = cfg;
    if (c->url && strncmp(c->url, "https://", 8) == 0)
        sf_tls_check_files(&c->tls, node, "tls", errs);
}

void sf_http_sink_validate_tls(const sf_http_sink_cfg *c, const sf_cfg_node *node,
                               sf_cfg_errors *errs)
{
    sf_tls_validate(&c->tls, node, "tls", errs);
}

void sf_http_sink_validate_auth(const sf_http_auth_cfg *a, const sf_cfg_node *node,
                                sf_cfg_errors *errs, const char *none_hint)
{
    int line, col;
    sf_cfg_pos(node, "auth", &line, &col);
    switch (a->type) {
    case SF_HTTP_AUTH_BASIC:
        if (!a->username || !a->password)
            sf_cfg_error(errs, line, col, "auth: type basic needs username and password");
        break;
    case SF_HTTP_AUTH_BEARER:
        if (!a->token || !*a->token)
            sf_cfg_error(errs, line, col, "auth: type bearer needs token");
        break;
    case SF_HTTP_AUTH_HMAC:
        if (!a->secret || !*a->secret)
            sf_cfg_error(errs, line, col, "auth: type hmac needs secret");
        if (!a->sig_header || !*a->sig_header || !a->ts_header || !*a->ts_header)
            sf_cfg_error(errs, line, col, "auth: header and timestamp_header must not be empty");
        break;
    default:
        if (a->username || a->password || a->token || a->secret)
            sf_cfg_error(errs, line, col, "auth: credentials given but auth.type is none%s",
                         none_hint);
    }
}

bool sf_http_sink_json_records(const sf_sink *s)
{
    const char *fmt = s->cfg->format ? s->cfg->format->name : "raw";
    return !sf_streq(fmt, "cef") && !sf_streq(fmt, "leef");
}

int sf_http_headers_add(sf_http_headers *h, const char *fmt, ...)
{
    sf_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    int rc = sf_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    if (rc)
        return rc;
    char **v = realloc(h->v, (h->n + 1) * sizeof *v);
    if (!v) {
        sf_buf_free(&b);
        return -ENOMEM;
    }
    h->v = v;
    h->v[h->n++] = sf_buf_steal(&b);
    return 0;
}

int sf_http_headers_add_auth(sf_http_headers *h, const sf_http_auth_cfg *a)
{
    if (a->type == SF_HTTP_AUTH_BEARER)
        return sf_http_headers_add(h, "Authorization: Bearer %s", a->token);
    if (a->type != SF_HTTP_AUTH_BASIC)
        return 0;
    sf_buf up = {0}, b64 = {0};
    int rc = sf_buf_appendf(&up, "%s:%s", a->username ? a->username : "",
                            a->password ? a->password : "");
    if (!rc)
        rc = sf_base64_append(&b64, up.data, up.len);
    if (!rc)
        rc = sf_log_add_secret(b64.data);
    if (!rc)
        rc = sf_http_headers_add(h, "Authorization: Basic %s", b64.data);
    if (up.data)
        memset(up.data, 0, up.len);
    sf_buf_free(&up);
    sf_buf_free(&b64);
    return rc;
}

void sf_http_headers_free(sf_http_headers *h)
{
    for (size_t i = 0; i < h->n; i++) {
        /* headers may hold credentials: wipe before freeing */
        memset(h->v[i], 0, strlen(h->v[i]));
        free(h->v[i]);
    }
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

void sf_http_sink_request(sf_http_request *req, const sf_http_sink_cfg *c)
{
    req->timeout_ms = c->timeout_ms;
    req->connect_timeout_ms = c->connect_timeout_ms;
    req->max_response = (size_t)c->max_response;
    req->tls = &c->tls;
    req->user_agent = "sysdig-forwarder/" SF_VERSION;
}

/* ------------------------------------------------------------------------------------------ */
/* batch lifecycle                                                                             */

int sf_http_batch_fill(const sf_http_batch *hb, size_t first, const sf_http_sink_cfg *c,
                       size_t reserve, sf_buf *body,
                       int (*add)(void *ud, sf_buf *out, size_t i, bool first), void *ud,
                       size_t *count)
{
    const sf_sink_batch *b = hb->b;
    size_t n = 0;
    *count = 0;
    for (size_t i = first; i < b->n && n < (size_t)c->max_events; i++, n++) {
        size_t before = body->len;
        int rc = add(ud, body, i, n == 0);
        if (rc)
            return rc;
        if (n > 0 && body->len + reserve > c->max_bytes) {
            body->len = before;
            body->data[before] = '\0';
            break;
        }
    }
    *count = n;
    return 0;
}

void sf_http_batch_advance(sf_http_batch *hb, size_t first, size_t *count)
{
    if (*count == 0)
        *count = 1; /* on an error before counting, the record at 'first' is retried */
    hb->next = first + *count;
}

static void finish_if_done(sf_http_batch *hb)
{
    sf_sink_batch *b = hb->b;
    if (!b || hb->inflight || (hb->next < b->n && !hb->closing))
        return;
    hb->b = NULL;
    sf_sink_batch_done(b); /* the pipeline handles it (and submits the next) on a later turn */
    if (hb->closing && !hb->b && hb->closed) {
        void (*cb)(sf_sink *) = hb->closed;
        hb->closed = NULL;
        cb(hb->s);
    }
}

void sf_http_batch_answered(sf_http_batch *hb, const sf_http_response *resp, size_t first,
                            size_t count, size_t bad, bool retry_after_any_status, char *reason,
                            size_t reasonlen)
{
    sf_sink_batch *b = hb->b;
    hb->inflight--;
    /* the receiver's certificate cannot be verified: a configuration problem (sink.h) */
    if (resp->error == SF_HTTP_ETLSVERIFY)
        hb->s->fault = SF_SINK_FAULT_TLS_VERIFY;
    else if (!resp->error)
        hb->s->fault = SF_SINK_FAULT_NONE;
    if (resp->error && resp->errmsg[0]) {
        size_t l = strlen(reason);
        snprintf(reason + l, reasonlen - l, " (%s)", resp->errmsg);
    }
    if (!bad)
        return;
    sf_sink_set_error(hb->s, "%s", reason);
    if (resp->retry_after_ms > b->retry_after_ms &&
        (retry_after_any_status || resp->status == 429 || resp->status == 503 ||
         resp->status == 408))
        b->retry_after_ms = resp->retry_after_ms;
    for (size_t i = first; i < first + count; i++) {
        if (b->status[i] == SF_DELIV_REJECT && !b->reason[i])
            b->reason[i] = sf_strdup(reason); /* NULL on OOM: pipeline says "rejected" */
    }
}

void sf_http_batch_pump(sf_http_batch *hb)
{
    sf_sink_batch *b = hb->b;
    while (b && !hb->closing && hb->next < b->n && hb->inflight < hb->max_inflight) {
        int rc = hb->send(hb);
        if (rc > 0)
            break;
        if (rc) {
            sf_sink_set_error(hb->s, "cannot send request: %s",
                              rc == -ENOMEM ? "out of memory" : sf_http_strerror(rc));
            continue; /* those records stay RETRY */
        }
        hb->inflight++;
    }
    finish_if_done(hb);
}

int sf_http_sink_submit(sf_sink *s, sf_sink_batch *b)
{
    sf_http_batch *hb = s->state;
    b->retry_after_ms = 0;
    for (size_t i = 0; i < b->n; i++)
        b->status[i] = SF_DELIV_RETRY;
    hb->b = b;
    hb->next = 0;
    sf_http_batch_pump(hb);
    return 0;
}

void sf_http_sink_close(sf_sink *s, void (*closed)(sf_sink *s))
{
    sf_http_batch *hb = s->state;
    hb->closing = true;
    if (hb->b) {
        /* records not yet sent stay RETRY; the batch completes when the requests in flight
         * have answered (they have a timeout) */
        hb->closed = closed;
        finish_if_done(hb);
        return;
    }
    closed(s);
}

/* ------------------------------------------------------------------------------------------ */
/* answers and bodies (pure)                                                                   */

void sf_http_sanitize(const char *body, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    bool space = false;
    if (!outlen)
        return;
    for (size_t i = 0; body && i < len && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < outlen)
            out[o++] = ' ';
        space = false;
        out[o++] = (c >= 0x21 && c < 0x7f) ? (char)c : '?';
    }
    if (o + 1 >= outlen && len > o && o >= 3)
        memcpy(out + o - 3, "...", 3);
    out[o] = '\0';
}

static void set_all(sf_deliv_status *st, size_t from, size_t n, sf_deliv_status v)
{
    for (size_t i = from; i < n; i++)
        st[i] = v;
}

/* The generic classification by HTTP status (webhook, and HEC answers without a known code). */
size_t sf_http_classify_status(const char *peer, long http_status, int code, const char *text,
                               const char *snippet, size_t n, sf_deliv_status *st, char *reason,
                               size_t reasonlen)
{
    if (http_status >= 200 && http_status < 300 && code <= 0) {
        set_all(st, 0, n, SF_DELIV_OK);
        reason[0] = '\0';
        return 0;
    }
    if (http_status == 408 || http_status == 429 || http_status >= 500 || http_status < 400) {
        set_all(st, 0, n, SF_DELIV_RETRY);
        if (code >= 0)
            snprintf(reason, reasonlen, "%s: HTTP %ld (code %d: %s)", peer, http_status, code,
                     text);
        else
            snprintf(reason, reasonlen, "%s: HTTP %ld%s%s", peer, http_status,
                     snippet[0] ? ": " : "", snippet);
        return n;
    }
    if (code >= 0)
        snprintf(reason, reasonlen, "%s: HTTP %ld (code %d: %s)", peer, http_status, code, text);
    else if (http_status == 401 || http_status == 403)
        snprintf(reason, reasonlen, "%s: HTTP %ld (authentication refused: check auth)%s%s", peer,
                 http_status, snippet[0] ? ": " : "", snippet);
    else
        snprintf(reason, reasonlen, "%s: HTTP %ld%s%s", peer, http_status, snippet[0] ? ": " : "",
                 snippet);
    set_all(st, 0, n, SF_DELIV_REJECT);
    return n;
}

int sf_http_gzip(const sf_buf *in, sf_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uLong bound = deflateBound(&z, (uLong)in->len);
    int rc = sf_buf_reserve(out, (size_t)bound + 32);
    if (!rc) {
        z.next_in = (Bytef *)in->data;
        z.avail_in = (uInt)in->len;
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)(out->cap - out->len - 1);
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
            rc = -EIO;
        else {
            out->len += z.total_out;
            out->data[out->len] = '\0';
        }
    }
    deflateEnd(&z);
    return rc;
}
