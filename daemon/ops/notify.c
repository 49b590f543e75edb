/* notify: systemd notifications from the loop. See notify.h. */
#include "ops/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SF_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "core/log.h"

static struct {
    uv_timer_t timer;
    bool timer_init;
    bool enabled;
    bool checked;
    int64_t watchdog_ms;
    char last_status[256];
} N;

static bool check_enabled(void)
{
    if (!N.checked) {
        N.checked = true;
#ifdef SF_HAVE_SYSTEMD
        const char *s = getenv("NOTIFY_SOCKET");
        N.enabled = s && *s;
#else
        N.enabled = false;
#endif
    }
    return N.enabled;
}

bool sf_notify_enabled(void)
{
    return check_enabled();
}

int64_t sf_notify_watchdog_ms(void)
{
    return N.watchdog_ms;
}

static void send_text(const char *text)
{
#ifdef SF_HAVE_SYSTEMD
    if (!check_enabled())
        return;
    int rc = sd_notify(0, text);
    if (rc < 0)
        SF_DEBUG("notify", "sd_notify failed: %s", strerror(-rc));
#else
    (void)text;
#endif
}

static void watchdog_cb(uv_timer_t *t)
{
    (void)t;
    send_text("WATCHDOG=1");
}

int sf_notify_init(uv_loop_t *loop)
{
#ifdef SF_HAVE_SYSTEMD
    if (!check_enabled() || N.timer_init)
        return 0;
    uint64_t usec = 0;
    /* 0: keep WATCHDOG_USEC/WATCHDOG_PID for a possible re-exec; >0 only if meant for us */
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    N.watchdog_ms = (int64_t)(usec / 1000u);
    uint64_t every = usec / 2000u; /* half the interval, in ms */
    if (every == 0)
        every = 1;
    if (uv_timer_init(loop, &N.timer) != 0)
        return 0;
    N.timer_init = true;
    uv_timer_start(&N.timer, watchdog_cb, every, every);
    uv_unref((uv_handle_t *)&N.timer);
    send_text("WATCHDOG=1");
    SF_DEBUG("notify", "systemd watchdog every %llums", (unsigned long long)every);
#else
    (void)loop;
#endif
    return 0;
}

void sf_notify_ready(const char *status)
{
    if (!check_enabled())
        return;
    char buf[320];
    if (status && *status) {
        snprintf(buf, sizeof buf, "READY=1\nSTATUS=%s", status);
        snprintf(N.last_status, sizeof N.last_status, "%s", status);
    } else {
        snprintf(buf, sizeof buf, "READY=1");
    }
    send_text(buf);
}

void sf_notify_status(const char *fmt, ...)
{
    if (!check_enabled())
        return;
    char st[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st, sizeof st, fmt, ap);
    va_end(ap);
    for (char *p = st; *p; p++)
        if (*p == '\n')
            *p = ' ';
    if (strcmp(st, N.last_status) == 0)
        return;
    memcpy(N.last_status, st, sizeof st);
    char buf[280];
    snprintf(buf, sizeof buf, "STATUS=%s", st);
    send_text(buf);
}

void sf_notify_stopping(const char *status)
{
    if (!check_enabled())
        return;
    char buf[320];
    snprintf(buf, sizeof buf, "STOPPING=1\nSTATUS=%s", status && *status ? status : "stopping");
    send_text(buf);
}

void sf_notify_close(void)
{
    if (N.timer_init) {
        N.timer_init = false;
        uv_timer_stop(&N.timer);
        if (!uv_is_closing((uv_handle_t *)&N.timer))
            uv_close((uv_handle_t *)&N.timer, NULL);
    }
}
