/* A scripted TCP / TLS server on its own thread (blocking sockets), for unit tests of the
 * network layer: it accepts one connection on 127.0.0.1 and then reads everything, closes at
 * once, stays silent, half-closes on request, or answers one HTTP request. Header-only. */
#ifndef SF_TESTSERVER_H
#define SF_TESTSERVER_H

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/util.h"

typedef enum {
    SRV_READ_ALL,      /* read until the end (TLS: close_notify, answered), then close */
    SRV_CLOSE_AT_ONCE, /* close right after accept (TLS: after the handshake, close_notify) */
    SRV_SILENT,        /* never read, never close (until stopped) */
    SRV_FIN_UNREAD,    /* never read; on srv_go: shutdown(SHUT_WR), then hold */
    SRV_HTTP,          /* read one request head into got, answer 200 "ok", close */
} srv_mode;

typedef struct srv {
    int lfd, port;
    srv_mode mode;
    SSL_CTX *ctx; /* TLS when set */
    int ctl[2];   /* test -> thread: 'g' go, 'q' quit */
    pthread_t th;
    sf_buf got;
    char client_cn[64];
    char sni[256]; /* the server name the client sent (TLS) */
    bool handshake_ok;
} srv_t;

/* Waits until fd is readable (1) or the test says quit (0); 'g' sets *go. */
static inline int srv_wait(srv_t *sv, int fd, bool *go)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = sv->ctl[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
        if (poll(p, fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
            return 0;
        if (p[0].revents & POLLIN) {
            char c = 0;
            if (read(sv->ctl[0], &c, 1) != 1 || c == 'q')
                return 0;
            if (go)
                *go = true;
            return 2;
        }
        if (fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            return 1;
    }
}

static inline void *srv_main(void *arg)
{
    srv_t *sv = arg;
    if (srv_wait(sv, sv->lfd, NULL) != 1)
        return NULL;
    int fd = accept(sv->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = NULL;
    char buf[65536];
    if (sv->ctx) {
        ssl = SSL_new(sv->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {
            SSL_free(ssl);
            close(fd);
            return NULL;
        }
        sv->handshake_ok = true;
        const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        snprintf(sv->sni, sizeof sv->sni, "%s", sni ? sni : "");
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (peer) {
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, sv->client_cn,
                                      sizeof sv->client_cn);
            X509_free(peer);
        }
    }
    bool go = false;
    switch (sv->mode) {
    case SRV_READ_ALL:
        for (;;) {
            if (!(ssl && SSL_pending(ssl)) && srv_wait(sv, fd, NULL) != 1)
                break;
            int r = ssl ? SSL_read(ssl, buf, sizeof buf) : (int)read(fd, buf, sizeof buf);
            if (r > 0) {
                sf_buf_append(&sv->got, buf, (size_t)r);
                continue;
            }
            if (ssl && SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN)
                SSL_shutdown(ssl); /* answer the close_notify */
            break;
        }
        break;
    case SRV_HTTP:
        while (!(sv->got.len >= 4 && memmem(sv->got.data, sv->got.len, "\r\n\r\n", 4))) {
            if (!(ssl && SSL_pending(ssl)) && srv_wait(sv, fd, NULL) != 1)
                break;
            int r = ssl ? SSL_read(ssl, buf, sizeof buf) : (int)read(fd, buf, sizeof buf);
            if (r <= 0)
                break;
            sf_buf_append(&sv->got, buf, (size_t)r);
        }
        if (sv->got.len) {
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                     "Connection: close\r\n\r\nok";
            if (ssl) {
                SSL_write(ssl, ok, sizeof ok - 1);
                SSL_shutdown(ssl);
            } else if (write(fd, ok, sizeof ok - 1) < 0) {
                break;
            }
        }
        break;
    case SRV_CLOSE_AT_ONCE:
        if (ssl)
            SSL_shutdown(ssl);
        break;
    case SRV_SILENT:
        srv_wait(sv, -1, NULL);
        break;
    case SRV_FIN_UNREAD:
        if (srv_wait(sv, -1, &go) == 2 && go) {
            shutdown(fd, SHUT_WR);
            srv_wait(sv, -1, NULL);
        }
        break;
    }
    if (ssl)
        SSL_free(ssl);
    close(fd);
    return NULL;
}

/* Listens on 127.0.0.1 (rcvbuf > 0: its receive buffer, inherited by the connection). */
static inline void srv_start(srv_t *sv, srv_mode mode, SSL_CTX *ctx, int rcvbuf)
{
    memset(sv, 0, sizeof *sv);
    sv->mode = mode;
    sv->ctx = ctx;
    ck_assert_int_eq(pipe(sv->ctl), 0);
    sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(sv->lfd, 0);
    int one = 1;
    setsockopt(sv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (rcvbuf > 0)
        setsockopt(sv->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(sv->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(sv->lfd, 4), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(sv->lfd, (struct sockaddr *)&a, &len), 0);
    sv->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

static inline void srv_send(srv_t *sv, char c)
{
    ck_assert_int_eq(write(sv->ctl[1], &c, 1), 1);
}

/* Stops the thread (if it has not ended) and waits for it; sv->got is then complete. */
static inline void srv_join(srv_t *sv)
{
    srv_send(sv, 'q');
    pthread_join(sv->th, NULL);
}

static inline void srv_free(srv_t *sv)
{
    close(sv->lfd);
    close(sv->ctl[0]);
    close(sv->ctl[1]);
    sf_buf_free(&sv->got);
    if (sv->ctx)
        SSL_CTX_free(sv->ctx);
}

static inline void srv_stop(srv_t *sv)
{
    srv_join(sv);
    srv_free(sv);
}

/* A port nothing listens on. */
static inline int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

#endif
