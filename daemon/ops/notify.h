/* notify: systemd service notifications (sd_notify) driven from the libuv loop.
 *
 * READY=1 once the daemon is forwarding, STATUS=... one-line state ("forwarding, lag 2s, 3 sinks
 * ok"), WATCHDOG=1 from a loop timer at half of WATCHDOG_USEC (so a stalled loop stops the
 * pings and systemd restarts the service), STOPPING=1 at the start of a graceful shutdown.
 *
 * Every call is a cheap no-op when the process does not run under systemd (no NOTIFY_SOCKET)
 * or when the build has no libsystemd (SF_HAVE_SYSTEMD undefined). Loop thread only. */
#ifndef SF_NOTIFY_H
#define SF_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "core/util.h"

/* Starts the watchdog timer if systemd asked for one (sd_watchdog_enabled). The timer is
 * unreferenced: it never keeps the loop alive and is closed with the loop's remaining handles.
 * Returns 0 (also when there is nothing to do). */
int sf_notify_init(uv_loop_t *loop);
/* True when NOTIFY_SOCKET is set and the build supports notifications. */
bool sf_notify_enabled(void);
/* Watchdog interval systemd asked for, in ms (0: none). */
int64_t sf_notify_watchdog_ms(void);
void sf_notify_ready(const char *status);
/* Sends STATUS= only when the text changed since the last call. */
void sf_notify_status(const char *fmt, ...) SF_PRINTF(1, 2);
void sf_notify_stopping(const char *status);
/* Stops and closes the watchdog timer (optional: the loop's final walk also closes it). */
void sf_notify_close(void);

#endif
