#!/usr/bin/python3
"""bench/driver.py: the measurements behind bench/run.sh (see bench/README.md).

Phases: translate, catchup (with the sequential bound), floor (curl), steady. Prints a table,
writes results JSON and the catch-up plot (gnuplot). Every child process is killed and the
work directory left to run.sh's trap on exit, Ctrl-C included."""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOUBLE = os.path.join(HERE, "fakeapi_fast.py")
TOKEN = "bench-token"
FORMATS = ["raw", "stix", "stix21", "cef", "leef"]
APIS = {"events": {"page_size": 200, "path": "/secure/events/v1/events"},
        "legacy": {"page_size": 999, "path": "/api/v1/secureEvents"}}
CLK_TCK = os.sysconf("SC_CLK_TCK")
STIX_SHIFTER_REF = 7700  # events/s of stix-shifter's batch translate() (issue 13), not measured
# A routing filter (sinks[].filter, issue 16) every generated event passes, with every kind of
# key: severity names and a range, a glob, a regex, a list, and a not.
FILTER_ALL = {"severity": ["high", "medium", "6..7"], "source": ["syscall", "aws_*", "/^k8s/",
                                                               "auditTrail"],
              "not": {"policy": "/^no such policy$/"}}

TARGETS = {"filter_ratio": 0.5, "raw_eps": 150000, "stix_eps": 10 * STIX_SHIFTER_REF, "x_bound_100ms": 4.0,
           "floor_ratio": 0.5, "rss_mib_1m": 32, "idle_cpu_pct": 0.5}

CHILDREN = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


PIDFILE = None  # run.sh's trap kills the process groups listed here if we die hard


def spawn(argv, **kw):
    """Starts a child in its own process group (its own children go with it)."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    CHILDREN.append(p)
    if PIDFILE:
        with open(PIDFILE, "a") as f:
            f.write("%d\n" % p.pid)
    return p


def reap(p, timeout=10):
    """Stops one child group we started (SIGTERM, then SIGKILL) and forgets it."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        except ProcessLookupError:
            pass
    else:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # anything it left behind in its group
        except (ProcessLookupError, PermissionError):
            pass
    if p in CHILDREN:
        CHILDREN.remove(p)


def cleanup():
    for p in list(CHILDREN):
        try:
            reap(p, 3)
        except OSError:
            pass


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw).stdout.strip()


# ------------------------------------------------------------------ machine / versions
def machine_info(binary):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    cache = os.path.join(os.path.dirname(binary), "CMakeCache.txt")
    build_type = ""
    if os.path.exists(cache):
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", open(cache).read(), re.M)
        build_type = m.group(1) if m else ""
    return {
        "nproc": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
        "memory": mem, "hostname": platform.node(), "loadavg_start": os.getloadavg(),
        "versions": {
            "daemon": sh("'%s' --version" % binary),
            "build_type": build_type,
            "git": sh("git -C '%s' describe --always --dirty" % ROOT),
            "git_branch": sh("git -C '%s' rev-parse --abbrev-ref HEAD" % ROOT),
            "cc": sh("grep -m1 '^CMAKE_C_COMPILER:' '%s' | cut -d= -f2 | xargs -r -I{} {} "
                     "--version | head -1" % cache) if os.path.exists(cache) else "",
            "curl": sh("curl --version | head -1"),
            "python": platform.python_version(),
            "gnuplot": sh("gnuplot --version 2>/dev/null"),
        },
    }


# ------------------------------------------------------------------ the API double
class Double:
    def __init__(self, work, events, span_s):
        self.port_file = os.path.join(work, "api.port")
        self.log = open(os.path.join(work, "api.log"), "w")
        t = time.monotonic()
        self.p = spawn([sys.executable, DOUBLE, "--port-file", self.port_file, "--token", TOKEN,
                        "--events", str(events), "--span", str(span_s)],
                       stdout=self.log, stderr=subprocess.STDOUT)
        while not os.path.exists(self.port_file):
            if self.p.poll() is not None:
                raise RuntimeError("the API double exited: see %s" % self.log.name)
            if time.monotonic() - t > 300:
                raise RuntimeError("the API double did not start")
            time.sleep(0.1)
        self.port = int(open(self.port_file).read())
        self.url = "http://127.0.0.1:%d" % self.port
        log("  API double: %d events ready in %.1fs on %s" % (events, time.monotonic() - t,
                                                             self.url))

    def ctl(self, **req):
        r = urllib.request.Request(self.url + "/_control", data=json.dumps(req).encode())
        with urllib.request.urlopen(r, timeout=60) as f:
            out = json.loads(f.read())
        if not out.get("ok"):
            raise RuntimeError("control %r: %r" % (req, out))
        return out

    def cpu_s(self):
        return proc_cpu_s(self.p.pid)

    def stop(self):
        reap(self.p)
        self.log.close()


def proc_cpu_s(pid):
    """CPU seconds of pid (all threads): schedstat (ns) when the kernel has it, else stat."""
    try:
        tot = 0
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                tot += int(f.read().split()[0])
        return tot / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_rss_kib(pid, key="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def timed(argv, timefile, timeout=None, **kw):
    """Runs argv under /usr/bin/time: (rc, wall_s, user_s, sys_s, maxrss_kib); rc "timeout"
    if it had to be killed after timeout seconds."""
    t = time.monotonic()
    p = spawn(["/usr/bin/time", "-f", "%e %U %S %M", "-o", timefile] + argv, **kw)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = "timeout"
    reap(p, 5)
    wall = time.monotonic() - t
    try:
        last = open(timefile).read().strip().splitlines()[-1].split()
        return rc, wall, float(last[1]), float(last[2]), int(last[3])
    except (OSError, IndexError, ValueError):
        return rc, wall, None, None, None


# ------------------------------------------------------------------ translate
def bench_translate(a, res):
    n = a.translate_events
    path = os.path.join(a.work, "events.ndjson")
    with open(path, "wb") as f:
        subprocess.run([sys.executable, DOUBLE, "--dump", str(n), "--api", "legacy"], stdout=f,
                       check=True)
    size = os.path.getsize(path)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    out = {"events": n, "input_bytes": size, "shape": "legacy API objects, NDJSON",
           "pinned": " ".join(pin) or "no (taskset missing)", "repeat": a.repeat,
           "stix_shifter_reference_eps": STIX_SHIFTER_REF, "formats": {}}
    for fmt in FORMATS:
        runs = []
        for _ in range(a.repeat):
            with open(os.devnull, "w") as devnull, \
                    open(os.path.join(a.work, "translate.err"), "w") as err:
                rc, wall, u, s, rss = timed(pin + [a.bin, "translate", "--format", fmt, path],
                                            os.path.join(a.work, "time.txt"), stdout=devnull,
                                            stderr=err)
            runs.append({"rc": rc, "wall_s": wall, "cpu_s": (u or 0) + (s or 0),
                         "user_s": u, "sys_s": s, "max_rss_kib": rss})
        best = min(runs, key=lambda r: r["cpu_s"])
        cpu = max(best["cpu_s"], 1e-3)
        out["formats"][fmt] = {"events_per_s": n / cpu, "ns_per_event": cpu * 1e9 / n,
                               "cpu_s": best["cpu_s"], "wall_s": best["wall_s"],
                               "ok": all(r["rc"] == 0 for r in runs), "runs": runs}
        log("  translate %-7s %9.0f events/s %7.0f ns/event" % (
            fmt, n / cpu, cpu * 1e9 / n))
    # raw again, through a sink's routing filter (issue 16) that every event passes but that
    # exercises every kind of key: the filter's own cost (the output is the same)
    cfg = os.path.join(a.work, "filter.yaml")
    with open(cfg, "w") as f:
        json.dump({"source": {"url": "http://127.0.0.1:1", "token": TOKEN},
                   "checkpoint": {"path": os.path.join(a.work, "cp-f.json")},
                   "sinks": [{"name": "f", "type": "stdout", "filter": FILTER_ALL}]}, f)
    runs = []
    for _ in range(a.repeat):
        with open(os.devnull, "w") as devnull, \
                open(os.path.join(a.work, "translate.err"), "w") as err:
            rc, wall, u, s, rss = timed(pin + [a.bin, "translate", "--filter-sink", "f", "-c",
                                               cfg, path],
                                        os.path.join(a.work, "time.txt"), stdout=devnull,
                                        stderr=err)
        with open(os.path.join(a.work, "translate.err")) as err:
            passed = ("%d of %d events pass" % (n, n)) in err.read()
        runs.append({"rc": rc if passed else 1, "wall_s": wall, "cpu_s": (u or 0) + (s or 0),
                     "user_s": u, "sys_s": s, "max_rss_kib": rss})
    best = min(runs, key=lambda r: r["cpu_s"])
    cpu = max(best["cpu_s"], 1e-3)
    out["filter"] = {"filter": FILTER_ALL, "events_per_s": n / cpu,
                     "ns_per_event": cpu * 1e9 / n, "cpu_s": best["cpu_s"],
                     "ok": all(r["rc"] == 0 for r in runs), "runs": runs}
    log("  translate raw+filter %9.0f events/s %7.0f ns/event" % (n / cpu, cpu * 1e9 / n))
    res["translate"] = out


# ------------------------------------------------------------------ catch-up
def write_config(path, a, double, api, conc, work, extra_source=None, follow=False,
                 sink_filter=None):
    src = {"url": double.url, "api": api, "token": TOKEN,
           "page_size": APIS[api]["page_size"], "lookback": "%dh" % (a.span_h + 2)}
    if conc is not None:
        src["max_concurrency"] = conc
    if follow:
        src["lookback"] = "5m"
        src["poll_interval"] = a.poll_interval
    src.update(extra_source or {})
    cfg = {"source": src, "checkpoint": {"path": os.path.join(work, "cp.json")},
           "sinks": [{"name": "f", "type": "file", "path": os.path.join(work, "out.ndjson")}],
           "log": {"level": "warn"}}
    if sink_filter:
        cfg["sinks"][0]["filter"] = sink_filter
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)  # JSON is YAML
    return cfg


def concurrency_supported(a, double):
    d = os.path.join(a.work, "probe")
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "cfg.yaml")
    write_config(cfg, a, double, "events", 2, d)
    p = subprocess.run([a.bin, "-c", cfg, "--check-config"], capture_output=True, text=True)
    msg = (p.stdout + p.stderr).strip()
    return p.returncode == 0, p.returncode, msg


def count_ids(path):
    """(lines, distinct ids): a raw line starts with {"id":"<32 hex>" (byte-faithful)."""
    if not os.path.exists(path):
        return 0, 0
    lines = int(sh("wc -l < '%s'" % path) or 0)
    distinct = int(sh("LC_ALL=C cut -c1-40 '%s' | LC_ALL=C sort -u -S 256M -T '%s' | "
                      "grep -c '^{\"id\":\"[0-9a-f]\\{32\\}\"$'" % (path, os.path.dirname(path)))
                   or 0)
    return lines, distinct


def measure_rtt(a, double, api, n):
    """Median round trip of one full first page (curl, keep-alive), as the bound's divisor."""
    w = double.ctl(op="window")
    url = "%s%s?from=%d&to=%d&limit=%d" % (double.url, APIS[api]["path"], w["oldest"],
                                           w["newest"], APIS[api]["page_size"])
    cfg = os.path.join(a.work, "rtt.cfg")
    with open(cfg, "w") as f:
        f.write('header = "Authorization: Bearer %s"\n' % TOKEN)
        for _ in range(n):
            f.write('url = "%s"\noutput = "/dev/null"\n' % url)
    out = subprocess.run(["curl", "-s", "-K", cfg, "-w", "%{http_code} %{time_total}\n"],
                         capture_output=True, text=True).stdout.split("\n")
    times = [float(x.split()[1]) for x in out if x.startswith("200 ")]
    return statistics.median(times) if times else None


def backlog_for(a, api, lat):
    if lat == 0:
        return a.backlog_0ms
    return a.backlog_events if api == "events" else a.backlog_legacy


def bench_catchup(a, res, double):
    ok, rc, msg = concurrency_supported(a, double)
    res["catchup_meta"] = {
        "mode": "--once (catch up from no checkpoint to now, deliver, checkpoint, exit)",
        "sink": "file, format raw, fsync always (defaults)", "backlog_span_h": a.span_h,
        "max_concurrency_supported": ok,
        "max_concurrency_probe": {"rc": rc, "output": msg[-500:]},
        "rate_limit_rps": a.rate_limit, "rate_limit_applies_to": "latency > 0 ms",
        "pinned": "no (the daemon and the double share the machine's cores)"}
    log("  source.max_concurrency: %s" % ("supported" if ok else
                                          "not supported by this build (rc %d)" % rc))
    runs = []
    res["catchup"] = runs
    for api in a.apis:
        for lat in a.latencies:
            n = backlog_for(a, api, lat)
            rl = a.rate_limit if lat > 0 else 0
            double.ctl(op="reset", latency_ms=lat, rate_limit=0, backlog=n)
            rtt = measure_rtt(a, double, api, 10 if lat else 30)
            bound = APIS[api]["page_size"] / rtt if rtt else None
            for c in a.concurrency:
                run = {"api": api, "page_size": APIS[api]["page_size"], "latency_ms": lat,
                       "backlog": n, "max_concurrency": c, "rate_limit_rps": rl,
                       "rtt_s": rtt, "sequential_bound_eps": bound}
                runs.append(run)
                if c != 1 and not ok:
                    run["status"] = "n/a (not supported by this build)"
                    continue
                d = os.path.join(a.work, "run")
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                cfg = os.path.join(d, "cfg.yaml")
                write_config(cfg, a, double, api, c if ok else None, d)
                double.ctl(op="reset", latency_ms=lat, rate_limit=rl, backlog=n)
                dcpu0 = double.cpu_s()
                with open(os.path.join(d, "daemon.log"), "w") as lf:
                    rc, wall, u, s, rss = timed([a.bin, "-c", cfg, "--once"],
                                                os.path.join(d, "time.txt"), stdout=lf,
                                                stderr=subprocess.STDOUT, timeout=a.run_timeout)
                dcpu = double.cpu_s() - dcpu0
                st = double.ctl(op="stats")
                lines, distinct = count_ids(os.path.join(d, "out.ndjson"))
                tail = open(os.path.join(d, "daemon.log"), errors="replace").read()[-600:]
                why = [w for w, bad in (("rc %s" % rc, rc != 0), ("lost %d" % (n - distinct),
                                                                   distinct != n),
                                        ("%d over the limit" % st["over_limit"],
                                         st["over_limit"] > 0)) if bad]
                run.update({
                    "status": "ok" if not why else "FAILED: " + ", ".join(why),
                    "rc": rc, "wall_s": wall, "events_per_s": distinct / wall if wall else None,
                    "x_bound": (distinct / wall) / bound if bound and wall else None,
                    "cpu_s": (u or 0) + (s or 0) if u is not None else None,
                    "peak_rss_kib": rss, "lines": lines, "distinct_ids": distinct,
                    "lost": n - distinct, "duplicates": lines - distinct,
                    "requests": st["requests"], "over_limit_429": st["over_limit"],
                    "by_status": st["by_status"], "events_served": st["events_served"],
                    "double_cpu_s": dcpu, "double_busy_pct": 100 * dcpu / wall if wall else None,
                    "daemon_log_tail": tail if rc != 0 else ""})
                log("  catch-up %-6s %3d ms c=%-2d %8d events %7.1fs %8.0f events/s (bound "
                    "%.0f) cpu %.1fs rss %.1f MiB 429s %d lost %d %s" % (
                        api, lat, c, n, wall, run["events_per_s"] or 0, bound or 0,
                        run["cpu_s"] or 0, (rss or 0) / 1024, st["over_limit"], n - distinct,
                        run["status"]))
                shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ catch-up with a filter
def bench_filter(a, res, double):
    """The 0 ms catch-up of the events API (conc 4), without and with a routing filter that
    every event passes (FILTER_ALL): with a filter the source keeps the parsed trees for it."""
    n, out = a.backlog_0ms, {"api": "events", "latency_ms": 0, "max_concurrency": 4,
                             "backlog": a.backlog_0ms, "filter": FILTER_ALL, "runs": {}}
    for label, flt in (("without", None), ("with", FILTER_ALL)):
        d = os.path.join(a.work, "run-filter")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        cfg = os.path.join(d, "cfg.yaml")
        write_config(cfg, a, double, "events", 4, d, sink_filter=flt)
        double.ctl(op="reset", latency_ms=0, rate_limit=0, backlog=n)
        with open(os.path.join(d, "daemon.log"), "w") as lf:
            rc, wall, u, s_, rss = timed([a.bin, "-c", cfg, "--once"],
                                         os.path.join(d, "time.txt"), stdout=lf,
                                         stderr=subprocess.STDOUT, timeout=a.run_timeout)
        lines, distinct = count_ids(os.path.join(d, "out.ndjson"))
        out["runs"][label] = {"rc": rc, "wall_s": wall, "distinct_ids": distinct,
                              "events_per_s": distinct / wall if wall else None,
                              "cpu_s": (u or 0) + (s_ or 0) if u is not None else None,
                              "peak_rss_kib": rss, "ok": rc == 0 and distinct == n}
        log("  catch-up %s filter: %.1fs %8.0f events/s cpu %.1fs rss %.1f MiB %s" % (
            label, wall, out["runs"][label]["events_per_s"] or 0,
            out["runs"][label]["cpu_s"] or 0, (rss or 0) / 1024,
            "ok" if out["runs"][label]["ok"] else "FAILED"))
        shutil.rmtree(d, ignore_errors=True)
    w, f = out["runs"]["without"], out["runs"]["with"]
    out["ratio"] = (f["events_per_s"] / w["events_per_s"]
                    if f["events_per_s"] and w["events_per_s"] else None)
    res["filter"] = out


# ------------------------------------------------------------------ fetch floor
def bench_floor(a, res, double):
    out = {}
    res["floor"] = out
    for api in a.apis:
        n = a.backlog_0ms
        double.ctl(op="reset", latency_ms=0, rate_limit=0, backlog=n)
        w = double.ctl(op="window")
        urls = double.ctl(op="cursors", api=api, **{"from": w["oldest"], "to": w["newest"]},
                          limit=APIS[api]["page_size"])["urls"]
        cfg = os.path.join(a.work, "floor.cfg")
        with open(cfg, "w") as f:
            f.write('header = "Authorization: Bearer %s"\n' % TOKEN)
            for u in urls:
                f.write('url = "%s%s"\noutput = "/dev/null"\n' % (double.url, u))
        double.ctl(op="reset", latency_ms=0, rate_limit=0, backlog=n)
        dcpu0 = double.cpu_s()
        t = time.monotonic()
        p = subprocess.run(["curl", "-s", "-K", cfg, "-w", "%{http_code}\n"],
                           capture_output=True, text=True)
        wall = time.monotonic() - t
        dcpu = double.cpu_s() - dcpu0
        st = double.ctl(op="stats")
        codes = p.stdout.split()
        ok = codes.count("200") == len(urls) and st["served_distinct"] == n
        # the double's capacity: the same pages over 4 connections at once
        double.ctl(op="reset", latency_ms=0, rate_limit=0, backlog=n)
        dcpu0 = double.cpu_s()
        t = time.monotonic()
        p4 = subprocess.run(["curl", "-s", "--parallel", "--parallel-max", "4", "-K", cfg, "-w",
                             "%{http_code}\n"], capture_output=True, text=True)
        wall4 = time.monotonic() - t
        dcpu4 = double.cpu_s() - dcpu0
        st4 = double.ctl(op="stats")
        cap = {"events_per_s": st4["served_distinct"] / wall4,
               "requests_per_s": len(urls) / wall4, "mb_per_s": st4["bytes"] / wall4 / 1e6,
               "double_busy_pct": 100 * dcpu4 / wall4,
               "ok": p4.stdout.split().count("200") == len(urls)}
        log("  double capacity %-6s (curl --parallel-max 4): %.0f events/s %.0f req/s, "
            "double busy %.0f%%" % (api, cap["events_per_s"], cap["requests_per_s"],
                                    cap["double_busy_pct"]))
        out[api] = {"events": n, "pages": len(urls), "wall_s": wall, "double_capacity": cap,
                    "events_per_s": st["served_distinct"] / wall, "requests_per_s":
                    len(urls) / wall, "mb_per_s": st["bytes"] / wall / 1e6,
                    "bytes": st["bytes"], "double_cpu_s": dcpu,
                    "double_busy_pct": 100 * dcpu / wall, "ok": ok,
                    "client": "curl -K (one process, sequential, keep-alive, output /dev/null)"}
        log("  floor %-6s %d pages %.2fs %.0f events/s %.0f req/s %.0f MB/s double busy %.0f%%"
            " %s" % (api, len(urls), wall, st["served_distinct"] / wall, len(urls) / wall,
                     st["bytes"] / wall / 1e6, 100 * dcpu / wall, "ok" if ok else "FAILED"))


# ------------------------------------------------------------------ steady state
class Watcher(threading.Thread):
    """Tails the sink file: the first time each id is seen there (time.time_ns)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.seen = {}
        self.stop_ev = threading.Event()

    def run(self):
        f = None
        buf = b""
        while not self.stop_ev.is_set():
            if f is None:
                try:
                    f = open(self.path, "rb")
                except OSError:
                    time.sleep(0.01)
                    continue
            chunk = f.read()
            if chunk:
                now = time.time_ns()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    eid = line[7:39].decode("ascii", "replace")
                    self.seen.setdefault(eid, now)
            else:
                time.sleep(0.01)
        if f:
            f.close()


def sample_phase(pid, seconds):
    """CPU % and RSS (KiB: mean, max) of pid over seconds."""
    c0, t0 = proc_cpu_s(pid), time.monotonic()
    rss = []
    end = t0 + seconds
    while time.monotonic() < end:
        r = proc_rss_kib(pid)
        if r:
            rss.append(r)
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    c1, t1 = proc_cpu_s(pid), time.monotonic()
    return {"seconds": t1 - t0, "cpu_s": c1 - c0, "cpu_pct": 100 * (c1 - c0) / (t1 - t0),
            "rss_kib_mean": statistics.mean(rss) if rss else None,
            "rss_kib_max": max(rss) if rss else None}


def pct(v, q):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * (len(v) - 1)))))]


def bench_steady(a, res, double):
    d = os.path.join(a.work, "steady")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    double.ctl(op="reset", latency_ms=0, rate_limit=0, backlog=0)
    cfg = os.path.join(d, "cfg.yaml")
    write_config(cfg, a, double, a.steady_api, None, d, follow=True)
    out_path = os.path.join(d, "out.ndjson")
    w = Watcher(out_path)
    w.start()
    lf = open(os.path.join(d, "daemon.log"), "w")
    p = spawn([a.bin, "-c", cfg], stdout=lf, stderr=subprocess.STDOUT)
    try:
        time.sleep(3)
        if p.poll() is not None:
            raise RuntimeError("daemon exited: %s" % open(lf.name).read()[-500:])
        log("  steady: idle %ds" % a.idle_seconds)
        idle = sample_phase(p.pid, a.idle_seconds)
        log("  steady: %g events/s for %ds" % (a.steady_rate, a.steady_seconds))
        double.ctl(op="producer", rate=a.steady_rate)
        load = sample_phase(p.pid, a.steady_seconds)
        double.ctl(op="producer", rate=0)
        live = double.ctl(op="live")["live"]
        deadline = time.monotonic() + a.poll_interval_s + 10
        while time.monotonic() < deadline and any(i not in w.seen for i, _ in live):
            time.sleep(0.1)
        hwm = proc_rss_kib(p.pid, "VmHWM")
    finally:
        reap(p, 30)
        lf.close()
        w.stop_ev.set()
        w.join(2)
    lat = [(w.seen[i] - v) / 1e9 for i, v in live if i in w.seen]
    res["steady"] = {
        "api": a.steady_api, "poll_interval": a.poll_interval, "rate_eps": a.steady_rate,
        "idle": idle, "load": load, "peak_rss_kib": hwm, "produced": len(live),
        "delivered": len(lat), "lost": len(live) - len(lat),
        "latency_s": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99),
                      "max": max(lat) if lat else None, "mean": statistics.mean(lat)
                      if lat else None},
        "latency_definition": "sink line seen (file polled every 10 ms) minus the time the "
                              "event became visible in the API double"}
    s = res["steady"]
    log("  steady: idle %.2f%% CPU %.1f MiB; load %.2f%% CPU %.1f MiB; latency p50 %.2fs p99 "
        "%.2fs; %d/%d delivered" % (idle["cpu_pct"], (idle["rss_kib_max"] or 0) / 1024,
                                    load["cpu_pct"], (load["rss_kib_max"] or 0) / 1024,
                                    s["latency_s"]["p50"] or -1, s["latency_s"]["p99"] or -1,
                                    len(lat), len(live)))


# ------------------------------------------------------------------ report
def fnum(v, fmt="{:,.0f}"):
    return "-" if v is None else fmt.format(v)


def verdict(ok):
    return "ok" if ok else "MISS"


def report(a, res):
    L = []
    m = res["machine"]
    L.append("sysdig-forwarder bench (%s run, %s)" % (res["mode"], res["finished"]))
    L.append("machine: %d x %s, %s, Linux %s; load average %.2f at start, %.2f at end" % (
        m["nproc"], m["cpu_model"], m["memory"], m["kernel"], m["loadavg_start"][0],
        m.get("loadavg_end", [0])[0]))
    L.append("daemon: %s (%s, %s)" % (m["versions"]["daemon"].split(" (")[0],
                                      m["versions"]["build_type"], m["versions"]["git"]))
    t = res.get("translate")
    if t:
        L.append("")
        L.append("translate: %s events (%s), one core (%s), CPU time, best of %d" % (
            "{:,}".format(t["events"]), t["shape"], t["pinned"], t["repeat"]))
        L.append("  %-8s %12s %10s  %s" % ("format", "events/s", "ns/event", "target"))
        for f, r in t["formats"].items():
            tgt = ""
            if f == "raw":
                tgt = ">= %s: %s" % ("{:,}".format(TARGETS["raw_eps"]),
                                     verdict(r["events_per_s"] >= TARGETS["raw_eps"]))
            if f == "stix":
                tgt = ">= 10x stix-shifter (%s, recorded, not run here): %s" % (
                    "{:,}".format(STIX_SHIFTER_REF),
                    verdict(r["events_per_s"] >= TARGETS["stix_eps"]))
            L.append("  %-8s %12s %10s  %s%s" % (f, fnum(r["events_per_s"]),
                                                fnum(r["ns_per_event"]), tgt,
                                                "" if r["ok"] else "  (translate FAILED)"))
        fr, raw = t.get("filter"), t["formats"].get("raw")
        if fr and raw:
            ratio = fr["events_per_s"] / raw["events_per_s"]
            L.append("  %-8s %12s %10s  %.0f%% of raw, target >= %.0f%%: %s%s" % (
                "raw+filter", fnum(fr["events_per_s"]), fnum(fr["ns_per_event"]), 100 * ratio,
                100 * TARGETS["filter_ratio"], verdict(ratio >= TARGETS["filter_ratio"]),
                "" if fr["ok"] else "  (translate FAILED)"))
            L.append("  (raw+filter: --filter-sink with a filter every event passes: %s)" %
                     json.dumps(fr["filter"]))
    runs = res.get("catchup")
    if runs:
        meta = res["catchup_meta"]
        L.append("")
        L.append("catch-up: %s; %s; rate limit %s req/s at latency > 0" % (
            meta["mode"].split(" (")[0], meta["sink"],
            meta["rate_limit_rps"] or "none"))
        L.append("  %-6s %4s %5s %9s %4s %7s %9s %10s %6s %6s %7s %6s %7s %4s %6s  %s" % (
            "api", "page", "lat", "backlog", "conc", "time s", "events/s", "seq bound",
            "xbound", "RTT ms", "CPU s", "RSS MiB", "requests", "429", "lost", "check"))
        for r in runs:
            head = "  %-6s %4d %3dms %9s %4d" % (r["api"], r["page_size"], r["latency_ms"],
                                                "{:,}".format(r["backlog"]),
                                                r["max_concurrency"])
            if r.get("status", "").startswith("n/a"):
                L.append(head + "  " + r["status"])
                continue
            L.append(head + " %7.1f %9s %10s %6s %6s %7s %6s %7s %4d %6d  %s" % (
                r["wall_s"], fnum(r["events_per_s"]), fnum(r["sequential_bound_eps"]),
                fnum(r["x_bound"], "{:.2f}"), fnum(r["rtt_s"] and r["rtt_s"] * 1000, "{:.1f}"),
                fnum(r["cpu_s"], "{:.1f}"), fnum(r["peak_rss_kib"] and r["peak_rss_kib"] / 1024,
                                                 "{:.1f}"),
                r["requests"], r["over_limit_429"], r["lost"], r["status"]))
    fl = res.get("floor")
    if fl:
        L.append("")
        L.append("fetch floor: the same backlog's pages by curl alone (sequential, keep-alive, "
                 "0 ms)")
        L.append("  %-6s %9s %6s %7s %9s %7s %6s %7s  %s" % (
            "api", "events", "pages", "time s", "events/s", "req/s", "MB/s", "double",
            "daemon conc 1 (best) / floor"))
        for api, f in fl.items():
            d1 = [r for r in runs or [] if r["api"] == api and r["latency_ms"] == 0 and
                  r.get("events_per_s")]
            c1 = next((r["events_per_s"] for r in d1 if r["max_concurrency"] == 1), None)
            best = max((r["events_per_s"] for r in d1), default=None)
            ratio = "-" if c1 is None else "%.0f%% (%.0f%%), target >= %.0f%%: %s" % (
                100 * c1 / f["events_per_s"], 100 * best / f["events_per_s"],
                100 * TARGETS["floor_ratio"],
                verdict(best / f["events_per_s"] >= TARGETS["floor_ratio"]))
            L.append("  %-6s %9s %6d %7.2f %9s %7s %6s %6.0f%%  %s%s" % (
                api, "{:,}".format(f["events"]), f["pages"], f["wall_s"],
                fnum(f["events_per_s"]), fnum(f["requests_per_s"]), fnum(f["mb_per_s"]),
                f["double_busy_pct"], ratio, "" if f["ok"] else "  FAILED"))
        L.append("  (double: CPU share of one core the API double used; near 100% means the "
                 "double, not curl, is the floor's limit)")
        L.append("  the double alone (curl --parallel-max 4): " + "; ".join(
            "%s %s events/s, %s req/s, busy %.0f%%" % (
                api, fnum(f["double_capacity"]["events_per_s"]),
                fnum(f["double_capacity"]["requests_per_s"]),
                f["double_capacity"]["double_busy_pct"]) for api, f in fl.items()))
    s = res.get("steady")
    if s:
        L.append("")
        L.append("steady state: api %s, poll_interval %s, %g events/s live for %.0fs" % (
            s["api"], s["poll_interval"], s["rate_eps"], s["load"]["seconds"]))
        L.append("  idle:  CPU %.3f%% (target < %.1f%%: %s), RSS %.1f MiB" % (
            s["idle"]["cpu_pct"], TARGETS["idle_cpu_pct"],
            verdict(s["idle"]["cpu_pct"] < TARGETS["idle_cpu_pct"]),
            (s["idle"]["rss_kib_max"] or 0) / 1024))
        L.append("  load:  CPU %.3f%%, RSS %.1f MiB (peak %.1f MiB)" % (
            s["load"]["cpu_pct"], (s["load"]["rss_kib_max"] or 0) / 1024,
            (s["peak_rss_kib"] or 0) / 1024))
        la = s["latency_s"]
        tgt = a.poll_interval_s + 1
        L.append("  delivery latency: p50 %s s, p90 %s s, p99 %s s, max %s s (target p99 <= "
                 "poll_interval + 1 s = %g s: %s); delivered %d/%d" % (
                     fnum(la["p50"], "{:.2f}"), fnum(la["p90"], "{:.2f}"),
                     fnum(la["p99"], "{:.2f}"), fnum(la["max"], "{:.2f}"), tgt,
                     verdict(la["p99"] is not None and la["p99"] <= tgt and s["lost"] == 0),
                     s["delivered"], s["produced"]))
    L += filter_report(res)
    L += targets(a, res)
    return "\n".join(L) + "\n"


def filter_report(res):
    fl = res.get("filter")
    if not fl:
        return []
    L = ["", "catch-up with a routing filter: events API, 0 ms, conc 4, %s events, --once" %
         "{:,}".format(fl["backlog"])]
    for k in ("without", "with"):
        r = fl["runs"][k]
        L.append("  %-7s filter: %6.1f s %10s events/s  CPU %5.1f s  RSS %6.1f MiB  %s" % (
            k, r["wall_s"] or 0, fnum(r["events_per_s"]), r["cpu_s"] or 0,
            (r["peak_rss_kib"] or 0) / 1024, "ok" if r["ok"] else "FAILED"))
    if fl["ratio"] is not None:
        L.append("  with / without: %.0f%% (target >= %.0f%%: %s)" % (
            100 * fl["ratio"], 100 * TARGETS["filter_ratio"],
            verdict(fl["ratio"] >= TARGETS["filter_ratio"])))
    return L


def targets(a, res):
    L = ["", "targets (issue 13):"]
    runs = [r for r in res.get("catchup") or [] if r.get("status") == "ok"]
    for api in a.apis:
        rr = [r for r in runs if r["api"] == api and r["latency_ms"] == 100]
        if rr:
            b = max(rr, key=lambda r: r["x_bound"] or 0)
            L.append("  catch-up 100 ms %-6s >= 4x bound, 0 lost, 0 over limit: %.2fx at "
                     "conc %d: %s" % (api, b["x_bound"], b["max_concurrency"],
                                      verdict(b["x_bound"] >= 4)))
    big = [r for r in runs if r["latency_ms"] == 0]
    if big:
        r = max(big, key=lambda r: r["peak_rss_kib"] or 0)
        L.append("  peak RSS <= 32 MiB over a %s-event catch-up: %.1f MiB (%s, conc %d): %s" % (
            "{:,}".format(r["backlog"]), r["peak_rss_kib"] / 1024, r["api"],
            r["max_concurrency"], verdict(r["peak_rss_kib"] / 1024 <= 32)))
    return L


# ------------------------------------------------------------------ plot
def plot(a, res, png):
    """One panel per API: events/s vs max_concurrency, a line per latency, the sequential
    bound of each latency as a dashed horizontal line of the same colour."""
    runs = [r for r in res.get("catchup") or [] if r.get("events_per_s")]
    if not runs or not shutil.which("gnuplot"):
        return False
    dat = os.path.join(a.work, "catchup.dat")
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    panels = []
    k = 0
    with open(dat, "w") as f:
        for api in a.apis:
            plots = []
            for j, lat in enumerate(a.latencies):
                pts = sorted((r["max_concurrency"], r["events_per_s"]) for r in runs
                             if r["api"] == api and r["latency_ms"] == lat)
                if not pts:
                    continue
                bound = next(r["sequential_bound_eps"] for r in runs if r["api"] == api and
                             r["latency_ms"] == lat)
                f.write("# %s %d ms\n" % (api, lat))
                for c, e in pts:
                    f.write("%d %f\n" % (c, e))
                f.write("\n\n")
                col = colors[j % len(colors)]
                plots.append("'%s' index %d using 1:2 with linespoints lw 2 pt 7 ps 1.2 "
                             "lc rgb '%s' title '%d ms'" % (dat, k, col, lat))
                if bound:
                    plots.append("%f with lines dt 2 lw 1.5 lc rgb '%s' title '%d ms: "
                                 "sequential bound %s/s'" % (bound, col, lat, fnum(bound)))
                k += 1
            rl = (res.get("catchup_meta") or {}).get("rate_limit_rps")
            if plots and rl and any(x > 0 for x in a.latencies):
                plots.append("%f with lines dt 3 lw 1.5 lc rgb '#555555' title 'rate limit cap "
                             "(%d req/s x %d events, latency > 0)'" % (
                                 rl * APIS[api]["page_size"], rl, APIS[api]["page_size"]))
            if plots:
                panels.append((api, plots))
    if not panels:
        return False
    m = res["machine"]
    meta = res.get("catchup_meta", {})
    gp = os.path.join(a.work, "catchup.gp")
    cairo = "pngcairo" in sh("gnuplot -e 'set terminal' 2>&1 | grep -o pngcairo | head -1")
    with open(gp, "w") as f:
        f.write("set terminal %s size %d,620 noenhanced%s\n" % (
            "pngcairo" if cairo else "png", 700 * len(panels), " font ',10'" if cairo else ""))
        f.write("set output '%s'\n" % png)
        f.write("set multiplot layout 1,%d title \"catch-up events/s vs source.max_concurrency "
                "(%s run %s; %d x %s; rate limit %s req/s at latency > 0)%s\"\n" % (
                    len(panels), res["mode"], res["finished"][:10], m["nproc"], m["cpu_model"],
                    meta.get("rate_limit_rps") or "none",
                    "" if meta.get("max_concurrency_supported", True) else
                    "\\nmax_concurrency > 1: n/a (not supported by this build)"))
        f.write("set xlabel 'source.max_concurrency'\nset ylabel 'events/s'\n"
                "set logscale x 2\nset logscale y 10\nset xrange [0.8:20]\n"
                "set xtics (1,2,4,8,16)\nset format y '%.0s%c'\nset grid\n"
                "set key below maxrows 4\n")
        for api, plots in panels:
            f.write("set title '%s API, page_size %d'\n" % (api, APIS[api]["page_size"]))
            f.write("plot " + ", \\\n     ".join(plots) + "\n")
        f.write("unset multiplot\n")
    p = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if p.returncode != 0:
        log("gnuplot failed: " + p.stderr[-400:])
        return False
    return True


def update_readme(path, table, png_name):
    if not os.path.exists(path):
        return
    text = open(path).read()
    b, e = "<!-- results:begin -->", "<!-- results:end -->"
    if b not in text or e not in text:
        return
    block = "%s\n```\n%s```\n\n![catch-up events/s vs max_concurrency](%s)\n%s" % (
        b, table, png_name, e)
    text = text[:text.index(b)] + block + text[text.index(e) + len(e):]
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------------ main
def duration_s(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", v)
    if not m:
        raise argparse.ArgumentTypeError("duration like 1s, 500ms, 2m")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True, help="scratch directory (removed by run.sh)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="translate,catchup,filter,floor,steady")
    ap.add_argument("--results", required=True)
    ap.add_argument("--png", required=True)
    ap.add_argument("--readme", help="README to put the table into (full runs)")
    ap.add_argument("--apis", default="events,legacy")
    ap.add_argument("--latencies", default="0,50,100")
    ap.add_argument("--concurrency", default="1,2,4,8,16")
    ap.add_argument("--rate-limit", type=int, default=50)
    ap.add_argument("--backlog-0ms", type=int)
    ap.add_argument("--backlog-events", type=int)
    ap.add_argument("--backlog-legacy", type=int)
    ap.add_argument("--translate-events", type=int)
    ap.add_argument("--repeat", type=int)
    ap.add_argument("--span-h", type=int, default=72)
    ap.add_argument("--steady-api", default="events", choices=list(APIS))
    ap.add_argument("--steady-rate", type=float, default=50)
    ap.add_argument("--steady-seconds", type=int)
    ap.add_argument("--idle-seconds", type=int)
    ap.add_argument("--poll-interval", default="1s")
    ap.add_argument("--run-timeout", type=int, default=900)
    a = ap.parse_args()
    q = a.quick
    dflt = {"backlog_0ms": 100000 if q else 1000000, "backlog_events": 10000 if q else 40000,
            "backlog_legacy": 50000 if q else 200000, "translate_events": 20000 if q else 100000,
            "repeat": 1 if q else 3, "steady_seconds": 15 if q else 60,
            "idle_seconds": 10 if q else 30}
    for k, v in dflt.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.apis = [x for x in a.apis.split(",") if x]
    a.latencies = [int(x) for x in a.latencies.split(",") if x]
    a.concurrency = [int(x) for x in a.concurrency.split(",") if x]
    a.poll_interval_s = duration_s(a.poll_interval)
    only = set(a.only.split(","))
    a.bin = os.path.abspath(a.bin)
    global PIDFILE
    PIDFILE = os.path.join(a.work, "pids")

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    t0 = time.time()
    res = {"mode": "quick" if q else "full",
           "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": machine_info(a.bin),
           "options": {k: v for k, v in vars(a).items() if k not in ("work",)},
           "targets": TARGETS}
    double = None
    try:
        if "translate" in only:
            log("translate ...")
            bench_translate(a, res)
        if only & {"catchup", "filter", "floor", "steady"}:
            log("API double ...")
            need = max([a.backlog_0ms if 0 in a.latencies or only & {"floor", "filter"}
                        else 0] +
                       [a.backlog_events if "events" in a.apis else 0] +
                       [a.backlog_legacy if "legacy" in a.apis else 0])
            double = Double(a.work, need, a.span_h * 3600)
        if "catchup" in only:
            log("catch-up ...")
            bench_catchup(a, res, double)
        if "filter" in only:
            log("catch-up with a routing filter ...")
            bench_filter(a, res, double)
        if "floor" in only:
            log("fetch floor ...")
            bench_floor(a, res, double)
        if "steady" in only:
            log("steady state ...")
            bench_steady(a, res, double)
    finally:
        if double:
            double.stop()
        cleanup()
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    res["duration_s"] = time.time() - t0
    table = report(a, res)
    res["table"] = table
    with open(a.results, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    sys.stdout.write("\n" + table)
    if plot(a, res, a.png):
        print("plot: %s" % os.path.relpath(a.png, ROOT))
    print("results: %s (%.0f s)" % (os.path.relpath(a.results, ROOT), res["duration_s"]))
    if a.readme:
        update_readme(a.readme, table, os.path.basename(a.png))
    bad = [r for r in res.get("catchup") or [] if r.get("status", "").startswith("FAILED")]
    if bad or any(not f["ok"] for f in (res.get("floor") or {}).values()):
        print("some runs FAILED verification (see the table)")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        cleanup()
        sys.exit(130)
