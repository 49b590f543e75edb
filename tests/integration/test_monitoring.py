"""The shipped dashboard (deploy/grafana/sysdig-forwarder.json) and alert rules
(deploy/prometheus/sysdig-forwarder.rules.yaml), tested:

- `promtool check rules` is clean and `promtool test rules` passes the rules' unit tests
  (deploy/prometheus/sysdig-forwarder.rules.test.yaml: each alert fires after its `for` in a
  series built for it, and stays quiet on a healthy one).
- Against real data: a real Prometheus (Debian's prometheus package; loopback, 1 s scrape and
  rule evaluation, temporary storage) scrapes a running daemon that reads the fake API
  (tests/fakeapi). Every panel's query and every alert's expression is evaluated through
  Prometheus's HTTP API (/api/v1/query): each parses; each panel returns a series; each alert's
  signal (its expression without the thresholds) returns a series, and the alert itself
  returns nothing in a healthy run. Then a scenario built to trigger them: three restarts, a
  sink that is down (with a spool that fills), a sink that rejects everything (dead letters),
  the API refusing the token, and finally the daemon gone: the matching alerts' expressions
  return series, and those without `for` are reported firing by Prometheus's rule engine
  (/api/v1/alerts). Alerts that need minutes of real time to trigger (lag > 15 min, no
  successful poll for 10 min, ...) are covered by the promtool unit tests only."""
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
import unittest
import urllib.parse
import urllib.request

from helpers import (CANARY, SRC, Daemon, FakeSysdig, NS, free_port, main, need_bin,
                     scratch_dir, wait_for, write_config)
from sysdig_api import now_ns

RULES = os.path.join(SRC, "deploy", "prometheus", "sysdig-forwarder.rules.yaml")
RULE_TESTS = os.path.join(SRC, "deploy", "prometheus", "sysdig-forwarder.rules.test.yaml")
DASHBOARD = os.path.join(SRC, "deploy", "grafana", "sysdig-forwarder.json")
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def rules():
    """[(alert name, expr)] from the rules file (PyYAML is a test dependency already)."""
    import yaml
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    return [(r["alert"], r["expr"]) for g in doc["groups"] for r in g["rules"]]


def panel_queries():
    """[(panel title, expr)] with the dashboard's variables resolved for one Prometheus."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []
    for p in dash["panels"]:
        for t in p["targets"]:
            out.append((p["title"], t["expr"].replace("$instance", ".*")))
    return out


def signal(expr):
    """The expression without its thresholds: what it compares (must always have data)."""
    return re.sub(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.]+", "", expr)


class Reject400(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that refuses every event for good (HTTP 400: dead letters)."""

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(400)
        self.send_header("Content-Length", "0")
        self.end_headers()


@unittest.skipUnless(PROMTOOL, "promtool missing (Debian package prometheus, install-deps.sh)")
class PromtoolTest(unittest.TestCase):
    def test_check_rules(self):
        p = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS: %d rules found" % len(rules()), p.stdout)

    def test_rule_unit_tests(self):
        p = subprocess.run([PROMTOOL, "test", "rules", os.path.basename(RULE_TESTS)],
                           cwd=os.path.dirname(RULE_TESTS), capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)

    def test_every_alert_is_unit_tested(self):
        with open(RULE_TESTS) as f:
            text = f.read()
        for name, _ in rules():
            # fires somewhere (an alert_rule_test with exp_alerts listed) and quiet somewhere
            self.assertRegex(text, r"alertname: %s\n\s+exp_alerts:\n\s+- exp_labels" % name)
            self.assertRegex(text, r"alertname: %s, exp_alerts: \[\]" % name)


@need_bin
@unittest.skipUnless(PROMETHEUS, "prometheus missing (Debian package, install-deps.sh)")
class LivePrometheusTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-monitoring-")
        self.fake = FakeSysdig(token=CANARY, seed=5)
        self.fake.generate(300, span_s=1200)
        self.fake.start()
        self.port = free_port()
        self.rx = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Reject400)
        threading.Thread(target=self.rx.serve_forever, daemon=True).start()
        self.prom = None
        self.daemon = None

    def tearDown(self):
        if self.daemon and self.daemon.alive():
            self.daemon.kill9()
        if self.prom and self.prom.poll() is None:
            self.prom.terminate()
            try:
                self.prom.wait(10)
            except subprocess.TimeoutExpired:
                self.prom.kill()
                self.prom.wait(10)
        self.fake.stop()
        self.rx.shutdown()
        self.rx.server_close()

    # ---- helpers
    def start_prometheus(self):
        self.prom_port = free_port()
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [{RULES}]
scrape_configs:
  - job_name: sysdig-forwarder
    static_configs:
      - targets: ["127.0.0.1:{self.port}"]
""")
        log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        self.prom = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(self.dir, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % self.prom_port,
             "--storage.tsdb.retention.time=1h"], stdout=log, stderr=log)
        self.assertTrue(wait_for(lambda: self.api("/-/ready", raw=True) == 200, 30),
                        "prometheus did not start: " + self.prom_log())

    def prom_log(self):
        with open(os.path.join(self.dir, "prometheus.log"), errors="replace") as f:
            return f.read()[-3000:]

    def api(self, path, raw=False, **params):
        url = "http://127.0.0.1:%d%s" % (self.prom_port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status if raw else json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code if raw else json.loads(e.read())
        except OSError:
            return None

    def query(self, expr):
        """The result list; fails the test if Prometheus cannot evaluate expr."""
        r = self.api("/api/v1/query", query=expr)
        self.assertEqual(r and r.get("status"), "success", "%s: %r" % (expr, r))
        return r["data"]["result"]

    def firing(self):
        r = self.api("/api/v1/alerts") or {}
        return {a["labels"]["alertname"] for a in r.get("data", {}).get("alerts", [])
                if a["state"] == "firing"}

    def config(self, trouble=False):
        extra = "server: { listen: 127.0.0.1:%d }\n" % self.port
        cfg, out, cp = write_config(self.dir, self.fake.url, api="events", page_size=100,
                                    poll_interval="1s", lookback="30m", extra=extra)
        sinks = """  - name: high
    type: file
    path: %s
    filter: { severity: high }
""" % os.path.join(self.dir, "high.ndjson")
        if trouble:
            sinks += """  - name: rejecting
    type: webhook
    url: http://127.0.0.1:%d/hook
    retry: { initial: 100ms, max: 500ms }
  - name: down
    type: webhook
    url: http://127.0.0.1:%d/hook
    retry: { initial: 100ms, max: 500ms }
    spool: { path: %s }
""" % (self.rx.server_address[1], free_port(), os.path.join(self.dir, "spool"))
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("log: {", sinks + "log: {", 1))
        return cfg

    def start_daemon(self, cfg, tag):
        self.daemon = Daemon(["-c", cfg], logdir=self.dir, tag=tag)
        return self.daemon

    def samples(self, expr):
        return [float(s["value"][1]) for s in self.query(expr)]

    # ---- the test
    def test_panels_and_alerts_against_a_running_daemon(self):
        t0 = time.time()
        self.start_prometheus()
        d = self.start_daemon(self.config(), "healthy")
        # healthy: scraped a few times, everything delivered, ready
        self.assertTrue(wait_for(lambda: self.samples(
            'count_over_time(sysdig_forwarder_ready[1m]) >= 4 and sysdig_forwarder_ready == 1'),
            30), "no healthy scrapes:\n" + d.stderr()[-2000:] + self.prom_log())
        for title, expr in panel_queries():
            self.assertTrue(self.query(expr), "panel %r: %s returns no series" % (title, expr))
        for name, expr in rules():
            self.assertEqual(self.query(expr), [], "alert %s not quiet in a healthy run" % name)
            sig = signal(expr)
            self.assertTrue(self.query(sig), "alert %s: %s returns no series" % (name, sig))
        starts = set(self.samples("process_start_time_seconds"))  # this run's start
        self.assertEqual(len(starts), 1)
        rc, hung = d.term()
        self.assertEqual((rc, hung), (0, False), d.stderr()[-2000:])

        # trouble: three restarts seen by Prometheus, then sinks refusing, then the API
        for i in range(3):
            d = self.start_daemon(self.config(trouble=True), "restart%d" % i)

            def seen():
                v = self.samples("process_start_time_seconds")
                return v and v[0] not in starts and v[0]
            self.assertTrue(wait_for(seen, 15), "restart %d not scraped" % i)
            starts.add(seen())
            if i < 2:
                d.term()
        self.fake.start_producer(rate=20.0, late_fraction=0.0)
        self.addCleanup(self.fake.stop_producer)
        expect = {
            "SysdigForwarderNotReady": 'sysdig_forwarder_ready == 0',
            "SysdigForwarderSinkDown": None, "SysdigForwarderDeadLetters": None,
            "SysdigForwarderSpoolFilling": None, "SysdigForwarderRestarting": None,
        }
        exprs = dict(rules())
        for name in expect:
            self.assertTrue(wait_for(lambda: self.query(exprs[name]), 20),
                            "alert %s never triggered:\n%s" % (name, d.stderr()[-2000:]))
            if expect[name]:
                self.assertTrue(self.query(expect[name]))
        self.assertEqual({s["metric"]["sink"] for s in self.query(
            exprs["SysdigForwarderSinkDown"])}, {"down"})
        self.assertEqual({s["metric"]["sink"] for s in self.query(
            exprs["SysdigForwarderDeadLetters"])}, {"rejecting"})
        # the API refuses the token
        self.fake.token = "rotated-" + CANARY
        self.assertTrue(wait_for(lambda: self.query(exprs["SysdigForwarderAuthFailing"]), 20),
                        "auth alert never triggered:\n" + d.stderr()[-2000:])
        # alerts without `for` go through Prometheus's own rule engine to firing
        self.assertTrue(wait_for(lambda: {"SysdigForwarderDeadLetters",
                                          "SysdigForwarderRestarting",
                                          "SysdigForwarderAuthFailing"} <= self.firing(), 15),
                        "firing: %r" % self.firing())
        # the daemon gone: up == 0
        d.term()
        self.assertTrue(wait_for(lambda: self.query(exprs["SysdigForwarderDown"]), 10),
                        "down alert never triggered")
        print("monitoring: %d panel queries, %d alerts, %.1f s" % (
            len(panel_queries()), len(exprs), time.time() - t0))


if __name__ == "__main__":
    main()
