/* stream: one client connection on the libuv loop — name resolution (uv_getaddrinfo, every
 * address tried in turn), TCP connect, optional TLS (OpenSSL over memory BIOs), a connect
 * timeout (resolution + connection + handshake), writes with a completion callback and a write
 * timeout, a graceful close that proves the peer read everything, and a hard close. Also a
 * connected UDP socket (datagram: one write = one datagram; no TLS, no reading, no graceful
 * close), so a sink that offers udp:// shares the resolution and error path.
 *
 * Lifecycle: sf_stream_open() starts connecting; then exactly one of connected / failed; after
 * connected, at most one of failed / drained; then closed, after which the stream is freed.
 * Every accepted write gets its written callback (status 0, or UV_ECANCELED when the stream
 * closed first), always before closed. After sf_stream_close() (idempotent; also allowed after
 * failed or drained) only written and closed follow.
 *
 * Callbacks never run inside a call the owner made: sf_stream_open/write/shutdown/close never
 * call back (an error they detect is returned, and reported by failed on a later loop turn
 * unless the owner closes the stream first); every callback comes from its own libuv turn.
 *
 * Graceful close (sf_stream_shutdown): TLS close_notify, then shutdown(SHUT_WR) after the
 * queued writes; the peer closing its side afterwards confirms (drained) only if our FIN went
 * out first and the peer's TCP acknowledged every byte we sent (SIOCOUTQ == 0): a receiver
 * that stops with our bytes unread resets the connection or leaves them unacknowledged. */
#ifndef SF_STREAM_H
#define SF_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/tls.h"

typedef struct sf_stream sf_stream;

typedef struct sf_stream_opts {
    const char *host; /* DNS name or IP literal (no brackets); copied */
    const char *port; /* copied */
    bool datagram;    /* connected UDP instead of TCP */
    /* TLS over TCP when set (sf_tls_ctx_new); not owned, must outlive the stream */
    struct ssl_ctx_st *tls_ctx;
    const sf_tls_cfg *tls;      /* server_name and verify for tls_ctx (NULL: host, verify) */
    int64_t connect_timeout_ms; /* resolution + connect + handshake, all addresses; 0: none */
    int64_t write_timeout_ms;   /* each write is handed to the kernel within this; 0: none */
    int64_t close_timeout_ms;   /* after sf_stream_shutdown, the peer closes within; 0: none */
} sf_stream_opts;

typedef struct sf_stream_cbs {
    /* connected (TLS: handshake done, certificate verified) */
    void (*connected)(sf_stream *s, void *ud);
    /* one per accepted write, in order: 0 (handed to the kernel) or a libuv error */
    void (*written)(sf_stream *s, void *ud, void *wud, int status);
    /* bytes from the peer (TLS: decrypted); optional, NULL ignores them */
    void (*received)(sf_stream *s, void *ud, const char *data, size_t len);
    /* could not connect (every address tried), or lost: why is a human sentence */
    void (*failed)(sf_stream *s, void *ud, const char *why);
    /* sf_stream_shutdown confirmed: the peer read everything and closed its side */
    void (*drained)(sf_stream *s, void *ud);
    /* nothing of the stream remains open; s is freed when this returns */
    void (*closed)(sf_stream *s, void *ud);
} sf_stream_cbs;

/* Starts connecting. NULL only when out of memory (then no callback comes). */
sf_stream *sf_stream_open(uv_loop_t *loop, const sf_stream_opts *o, const sf_stream_cbs *cb,
                          void *ud);

/* sf_stream_write flags: the stream owns data (malloc'd) from the call on, and frees it. */
enum { SF_STREAM_TAKE = 1 };

/* Queues len bytes once connected. Without SF_STREAM_TAKE, data must stay valid until its
 * written callback (TLS copies it at once). Returns 0 (written follows), UV_ENOTCONN (not
 * connected or closing: the stream is unchanged), or another libuv error: the stream failed
 * (sf_stream_error says why; failed follows unless the owner closes it). */
int sf_stream_write(sf_stream *s, const void *data, size_t len, unsigned flags, void *wud);

/* Graceful close (TCP/TLS, once connected): drained or failed follows. Errors as for write;
 * UV_ENOTSUP on a datagram stream. */
int sf_stream_shutdown(sf_stream *s);

/* Hard close: writes not yet handed to the kernel complete with UV_ECANCELED; then closed. */
void sf_stream_close(sf_stream *s);

/* Why the stream failed (the text failed carries), or "". */
const char *sf_stream_error(const sf_stream *s);

/* The stream failed (or is failing) because a peer's TLS certificate could not be verified
 * (unknown CA, wrong name, expired): a configuration problem, not an outage. When an address
 * failed that way, failed carries that reason even if later addresses failed otherwise. */
bool sf_stream_tls_verify_failed(const sf_stream *s);

#endif
