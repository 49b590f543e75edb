#!/usr/bin/python3
"""syslog sink against a real rsyslogd on loopback: UDP, TCP (octet-counting and LF framing)
and TLS (ossl stream driver, test CA made here with the openssl CLI), RFC 5424 and RFC 3164.
Every event id must arrive intact, as a message that parses as valid RFC 5424 / RFC 3164 (raw
bytes checked here; rsyslog's own parse checked too). Also: rsyslog stopped (SIGTERM) right
after events were written, and killed while frozen with unread events in its socket buffer,
then restarted -> nothing lost (the sink's resend window)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, Daemon, FakeSysdig, http_get, main, need_bin, run,  # noqa: E402
                     scratch_dir, wait_for)

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
SEP = "\x1f"  # field separator in rsyslog's parsed view
PROBE = "<13>1 - - - - - - sf-probe"

# RFC 5424 (sect. 6) with our structured data element; MSG is the rest.
RE_5424 = re.compile(
    r'^<(?P<pri>\d{1,3})>1 '
    r'(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z) '
    r'(?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) '
    r'(?P<msgid>[!-~]{1,32}) '
    r'(?P<sd>-|(?:\[[^ =\]"]{1,32}(?: [^ =\]"]{1,32}="(?:[^"\\\]]|\\["\\\]])*")*\])+) '
    r'(?P<msg>.*)$', re.S)
RE_3164 = re.compile(
    r'^<(?P<pri>\d{1,3})>(?P<ts>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) '
    r'[ 123]\d \d\d:\d\d:\d\d) (?P<host>[!-~]+) (?P<tag>[A-Za-z0-9_.-]{1,32}): (?P<msg>.*)$',
    re.S)


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_certs(d):
    """Test CA + server certificate for 127.0.0.1 / localhost. Returns (ca, cert, key)."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=d, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=sf test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    # a second, unrelated CA (verification must fail against it)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out",
         "other.pem", "-days", "2", "-subj", "/CN=other CA")
    return (os.path.join(d, "ca.pem"), os.path.join(d, "server.pem"),
            os.path.join(d, "server.key"))


class Rsyslog:
    """A foreground rsyslogd with its own config, pid file and work directory."""

    def __init__(self, d, transport, port, certs=None):
        self.d = d
        self.transport = transport
        self.port = port
        self.work = os.path.join(d, "rsyslog-work")
        os.makedirs(self.work, exist_ok=True)
        self.raw = os.path.join(d, "raw.log")
        self.parsed = os.path.join(d, "parsed.log")
        self.conf = os.path.join(d, "rsyslog.conf")
        self.pidfile = os.path.join(d, "rsyslog.pid")
        g = 'workDirectory="%s" maxMessageSize="64k"' % self.work
        if transport == "udp":
            # UDP has no flow control: a busy CI machine would overflow the default socket
            # buffer while rsyslog is descheduled; give the receiver room (we run as root, so
            # rsyslog can force it beyond rmem_max)
            inp = ('module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="%d" '
                   'rcvbufSize="32m")' % port)
        elif transport == "tcp":
            inp = ('module(load="imtcp")\n'
                   'input(type="imtcp" address="127.0.0.1" port="%d")' % port)
        else:
            ca, cert, key = certs
            g += (' defaultNetstreamDriver="ossl" defaultNetstreamDriverCAFile="%s"'
                  ' defaultNetstreamDriverCertFile="%s" defaultNetstreamDriverKeyFile="%s"'
                  % (ca, cert, key))
            inp = ('module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1"'
                   ' streamDriver.authMode="anon")\n'
                   'input(type="imtcp" address="127.0.0.1" port="%d")' % port)
        fields = ["%PRI%", "%HOSTNAME%", "%APP-NAME%", "%PROCID%", "%MSGID%",
                  "%STRUCTURED-DATA%", "%programname%", "%msg%"]
        with open(self.conf, "w") as f:
            f.write("""global(%s)
%s
template(name="sfraw" type="string" string="%%rawmsg%%\\n")
template(name="sfparsed" type="string" string="%s\\n")
action(type="omfile" file="%s" template="sfraw")
action(type="omfile" file="%s" template="sfparsed")
""" % (g, inp, SEP.join(fields).replace("\x1f", "\\x1f").replace("\\x1f", SEP), self.raw,
                self.parsed))
        self.p = None
        self.log = open(os.path.join(d, "rsyslogd.out"), "ab")

    def start(self):
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        self.p = subprocess.Popen([RSYSLOGD, "-n", "-f", self.conf, "-i", self.pidfile],
                                  stdout=self.log, stderr=self.log)
        if self.transport == "udp":
            ok = wait_for(self._udp_probe, 10, 0.2)
        else:
            ok = wait_for(self._connectable, 10, 0.1)
        if not ok or self.p.poll() is not None:
            raise RuntimeError("rsyslogd did not start:\n" + self.output())

    def _udp_probe(self):
        """rsyslog is ready once a probe datagram shows up in its output (probes are not
        counted by the checks)."""
        if self.p.poll() is not None:
            return True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(PROBE.encode(), ("127.0.0.1", self.port))
        time.sleep(0.1)
        if not os.path.exists(self.raw):
            return False
        with open(self.raw, "rb") as f:
            return b"sf-probe" in f.read()

    def _connectable(self):
        if self.p.poll() is not None:
            return True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.p = None

    def output(self):
        self.log.flush()
        with open(os.path.join(self.d, "rsyslogd.out"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def lines(self, path):
        if not os.path.exists(path):
            return []
        with open(path, "rb") as f:
            return [ln.decode("utf-8") for ln in f.read().split(b"\n")
                    if ln and b"sf-probe" not in ln]


@need_bin
class SyslogSinkTest(unittest.TestCase):
    N = 60

    def setUp(self):
        self.dir = scratch_dir(self, "sf-syslog-")
        self.fake = FakeSysdig(token=CANARY, seed=7)
        self.fake.generate(self.N, span_s=900)
        self.fake.start()
        self.rs = None

    def tearDown(self):
        if self.rs:
            self.rs.stop()
            self.rs.log.close()
        self.fake.stop()

    def config(self, sink, name="config.yaml", retry="{ initial: 100ms, max: 1s }"):
        text = """source:
  url: %s
  api: legacy
  token: ${SYSDIG_SECURE_API_TOKEN}
  page_size: 25
  poll_interval: 1s
  lookback: 1h
  request_timeout: 5s
  retry: { initial: 100ms, max: 1s }
checkpoint: { path: %s }
# 64: during the outages below the pipeline must not fill up: the pipeline's "space" callback
# is one-shot and the source registers it only once (core bug, reported), so a second
# pipeline-full episode stalls the source regardless of the sink.
pipeline: { max_inflight_pages: 64 }
log: { level: %s, format: text }
sinks:
  - name: siem
    type: syslog
    retry: %s
%s""" % (self.fake.url, os.path.join(self.dir, "checkpoint.json"),
         os.environ.get("SF_TEST_LOG", "info"), retry,
         "".join("    " + ln + "\n" for ln in sink.strip("\n").split("\n")))
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_rsyslog(self, transport, certs=None):
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.rs = Rsyslog(self.dir, transport, free_port(kind), certs)
        self.rs.start()
        return self.rs

    def wait_ids(self, ids, timeout):
        wait_for(lambda: set(ids) <= self.received_ids(), timeout, 0.3)
        return self.received_ids()

    def received_ids(self):
        got = set()
        for ln in self.rs.lines(self.rs.raw):
            i = ln.find("{")
            if i < 0:
                continue
            try:
                got.add(json.loads(ln[i:])["id"])
            except ValueError:
                pass
        return got

    def check_messages(self, rfc, expect_ids, app="sysdig-forwarder", host="sf-test-host"):
        """Every received raw message parses; the body is the exact raw event; rsyslog's own
        parse agrees. Returns the parsed raw messages by id."""
        raws = self.rs.lines(self.rs.raw)
        self.assertTrue(raws, "rsyslog received nothing:\n" + self.rs.output())
        byid = {}
        rx = RE_5424 if rfc == 5424 else RE_3164
        for ln in raws:
            m = rx.match(ln)
            self.assertIsNotNone(m, "not a valid RFC %d message: %r" % (rfc, ln[:300]))
            pri = int(m.group("pri"))
            self.assertEqual(pri // 8, 16, "facility local0 expected: %r" % ln[:80])
            self.assertIn(pri % 8, (2, 3, 4, 5, 6))
            self.assertEqual(m.group("host"), host)
            obj = json.loads(m.group("msg"))  # the body is the raw JSON record, intact
            byid[obj["id"]] = (m, obj)
            if rfc == 5424:
                self.assertEqual(m.group("app"), app)
                self.assertEqual(m.group("msgid"), "sysdig-event")
                self.assertIn('[sysdig@32473 id="%s"' % obj["id"], m.group("sd"))
            else:
                self.assertEqual(m.group("tag"), app)
        missing = set(expect_ids) - set(byid)
        self.assertFalse(missing, "%d events missing at rsyslog" % len(missing))
        # rsyslog's parsed view agrees with ours
        parsed = self.rs.lines(self.rs.parsed)
        self.assertEqual(len(parsed), len(raws))
        for ln in parsed:
            f = ln.split(SEP)
            self.assertEqual(len(f), 8, ln[:200])
            obj = json.loads(f[7].lstrip(" "))
            m, _ = byid[obj["id"]]
            self.assertEqual(f[0], m.group("pri"))
            self.assertEqual(f[1], host)
            if rfc == 5424:
                self.assertEqual(f[2], app)
                self.assertEqual(f[4], "sysdig-event")
                self.assertTrue(f[5].startswith('[sysdig@32473 id="%s"' % obj["id"]), f[5])
            else:
                self.assertEqual(f[6], app)
        return byid

    def run_once(self, sink, rfc, transport, certs=None, extra_check=None):
        self.start_rsyslog(transport, certs)
        cfg = self.config(sink.replace("PORT", str(self.rs.port)))
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertFalse(r.timed_out, "daemon timed out:\n" + r.stderr[-3000:])
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertNotIn(CANARY, r.stderr + r.stdout)
        if transport != "udp":
            # the end of --once settles the resend window by a graceful close (TLS too)
            self.assertIn("receiver confirmed reading all", r.stderr)
        ids = self.fake.all_ids()
        self.wait_ids(ids, 10)
        self.rs.stop()  # flushes its files
        return self.check_messages(rfc, ids)

    # ------------------------------------------------------------------ transports
    def test_udp_5424(self):
        byid = self.run_once("""
address: udp://127.0.0.1:PORT
hostname: sf-test-host
max_message_size: 60000
""", 5424, "udp")
        self.assertEqual(len(byid), self.N)

    def test_tcp_octet_counting_5424(self):
        byid = self.run_once("""
address: tcp://127.0.0.1:PORT
hostname: sf-test-host
framing: octet-counting
""", 5424, "tcp")
        # timestamps: the event time with microseconds, UTC
        for eid, (m, obj) in byid.items():
            ts = obj["timestamp"]
            self.assertEqual(m.group("ts"), ts[:26] + "Z", eid)

    def test_once_confirms_by_graceful_close(self):
        """--once ends by half-closing the connection; rsyslog closing its side confirms it
        read everything, so the run neither waits out resend_window nor leaves the last
        messages unconfirmed."""
        self.start_rsyslog("tcp")
        cfg = self.config("""
address: tcp://127.0.0.1:%d
hostname: sf-test-host
resend_window: 10m
""" % self.rs.port)
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("receiver confirmed reading all", r.stderr)
        ids = self.fake.all_ids()
        self.assertFalse(set(ids) - self.wait_ids(ids, 10))
        # the checkpoint moved: a second run has nothing new to send
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertNotIn("receiver confirmed", r.stderr)

    def test_once_with_a_frozen_receiver_fails_then_resends(self):
        """--once against a receiver that takes the bytes but never reads or closes: the run
        does not hang; after pipeline.shutdown_timeout the unconfirmed events fail (exit 1,
        checkpoint before them) and the next run delivers them."""
        self.start_rsyslog("tcp")
        cfg = self.config("""
address: tcp://127.0.0.1:%d
hostname: sf-test-host
write_timeout: 2s
""" % self.rs.port)
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("pipeline: { max_inflight_pages: 64 }",
                                 "pipeline: { max_inflight_pages: 64, shutdown_timeout: 3s }"))
        self.rs.p.send_signal(signal.SIGSTOP)
        try:
            r = run(["-c", cfg, "--once"], timeout=90)
        finally:
            self.rs.p.send_signal(signal.SIGCONT)
        self.assertFalse(r.timed_out, "--once hung:\n" + r.stderr[-3000:])
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        self.assertRegex(r.stderr, r"not confirmed within pipeline.shutdown_timeout|"
                                   r"still not accepted after")
        r = run(["-c", cfg, "--once"], timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = self.fake.all_ids()
        self.assertFalse(set(ids) - self.wait_ids(ids, 15))

    def test_full_window_waits_instead_of_dropping(self):
        """A window smaller than the backlog: batches wait for the oldest messages to settle
        (backpressure) and everything still arrives, nothing settled early."""
        self.start_rsyslog("tcp")
        cfg = self.config("""
address: tcp://127.0.0.1:%d
hostname: sf-test-host
resend_window: 300ms
resend_window_bytes: 16KiB
""" % self.rs.port)
        r = run(["-c", cfg, "--once"], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("resend window full", r.stderr)
        ids = self.fake.all_ids()
        self.assertFalse(set(ids) - self.wait_ids(ids, 10))

    def test_receiver_crash_then_daemon_kill_loses_nothing(self):
        """The double fault: rsyslog frozen while the sink writes into its socket buffer, the
        daemon SIGKILLed before the connection broke, then rsyslog killed too. The messages
        never left the resend window, so the checkpoint did not move past them and the
        restarted daemon reads them again."""
        self.start_rsyslog("tcp")
        cfg = self.config("""
address: tcp://127.0.0.1:%d
hostname: sf-test-host
resend_window: 5m
""" % self.rs.port)
        mport = free_port()
        with open(cfg, "a") as f:
            f.write("server: { listen: 127.0.0.1:%d }\n" % mport)
        murl = "http://127.0.0.1:%d" % mport

        def delivered():
            try:
                body = http_get(murl, "/metrics")[2].decode()
            except OSError:
                return -1
            m = re.search(r'^sysdig_forwarder_events_delivered_total\{sink="siem"\} (\d+)',
                          body, re.M)
            return int(m.group(1)) if m else -1

        d = Daemon(["-c", cfg], logdir=self.dir)
        d2 = None
        try:
            first = self.fake.all_ids()
            self.assertFalse(set(first) - self.wait_ids(first, 30), d.stderr()[-2000:])
            self.rs.p.send_signal(signal.SIGSTOP)
            self.fake.add_events(20)
            # the next poll writes them into the frozen receiver's socket buffer: "delivered"
            self.assertTrue(wait_for(lambda: delivered() >= len(first) + 20, 15),
                            d.stderr()[-2000:])
            d.kill9()
            self.rs.p.send_signal(signal.SIGKILL)  # its unread socket buffer is gone
            self.rs.p.wait(5)
            self.rs.p = None
            self.rs.start()
            d2 = Daemon(["-c", cfg], logdir=self.dir, tag="daemon2")
            expected = self.fake.all_ids()
            got = self.wait_ids(expected, 30)
            missing = set(expected) - got
            self.assertFalse(missing, "%d events lost (receiver crash + daemon SIGKILL):\n%s"
                             % (len(missing), d2.stderr()[-3000:]))
        finally:
            if d.alive():
                d.kill9()
            if d2:
                rc, hung = d2.term(20)
                self.assertFalse(hung)
                self.assertEqual(rc, 0, d2.stderr()[-3000:])

    def test_sighup_reconnects_after_a_confirmed_close(self):
        """SIGHUP with messages in the window closes the connection gracefully (the receiver
        confirms it read them, so they settle); the next batch reconnects and is delivered."""
        self.start_rsyslog("tcp")
        cfg = self.config("""
address: tcp://127.0.0.1:%d
hostname: sf-test-host
resend_window: 10m
""" % self.rs.port)
        d = Daemon(["-c", cfg], logdir=self.dir)
        try:
            first = self.fake.all_ids()
            self.assertFalse(set(first) - self.wait_ids(first, 30), d.stderr()[-2000:])
            d.p.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "receiver confirmed reading all" in d.stderr(), 15),
                            d.stderr()[-2000:])
            self.fake.add_events(10)
            expected = self.fake.all_ids()
            self.assertFalse(set(expected) - self.wait_ids(expected, 30), d.stderr()[-2000:])
            self.assertEqual(d.stderr().count("connected to tcp://"), 2, d.stderr()[-2000:])
        finally:
            rc, hung = d.term(20)
        self.assertFalse(hung)
        self.assertEqual(rc, 0, d.stderr()[-3000:])

    def test_tcp_lf_3164(self):
        self.run_once("""
address: tcp://127.0.0.1:PORT
hostname: sf-test-host
framing: lf
rfc: 3164
max_message_size: 64KiB
""", 3164, "tcp")

    def test_tls_5424(self):
        certs = make_certs(self.dir)
        self.run_once("""
address: tls://127.0.0.1:PORT
hostname: sf-test-host
tls: { ca_file: %s }
""" % certs[0], 5424, "tls", certs)

    def test_tls_wrong_ca_is_refused(self):
        certs = make_certs(self.dir)
        self.start_rsyslog("tls", certs)
        cfg = self.config("""
address: tls://localhost:%d
hostname: sf-test-host
tls: { ca_file: %s }
""" % (self.rs.port, os.path.join(self.dir, "other.pem")), retry="{ initial: 50ms, max: 100ms }")
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate verification failed", r.stderr)
        self.assertEqual(self.received_ids(), set())

    def test_oversize_reject_and_truncate(self):
        # reject: every event is larger than 600 bytes -> dead letters, nothing sent
        self.start_rsyslog("tcp")
        cfg = self.config("""
address: tcp://127.0.0.1:%d
hostname: sf-test-host
max_message_size: 600
oversize: reject
""" % self.rs.port)
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn("dead-lettered", r.stderr)
        self.assertIn("max_message_size", r.stderr)
        # truncate: 600-byte messages arrive, cut
        os.unlink(os.path.join(self.dir, "checkpoint.json"))
        cfg = self.config("""
address: tcp://127.0.0.1:%d
hostname: sf-test-host
max_message_size: 600
""" % self.rs.port, name="c2.yaml")
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        wait_for(lambda: len(self.rs.lines(self.rs.raw)) >= self.N, 10)
        self.rs.stop()
        raws = self.rs.lines(self.rs.raw)
        self.assertEqual(len(raws), self.N)
        for ln in raws:
            self.assertIsNotNone(RE_5424.match(ln), ln[:200])
            self.assertEqual(len(ln.encode()), 600)

    def test_config_errors(self):
        cfg = self.config("""
address: tls://127.0.0.1:6514
framing: lf
facility: local9
""")
        r = run(["-c", cfg, "--check-config"], timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        out = r.stdout + r.stderr
        self.assertRegex(out, r"config\.yaml:\d+:\d+: .*framing")
        self.assertRegex(out, r"config\.yaml:\d+:\d+: .*facility")
        cfg = self.config("address: tcp://127.0.0.1\n", name="c2.yaml")
        r = run(["-c", cfg, "--check-config"], timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stdout + r.stderr, r"c2\.yaml:\d+:\d+: .*port")

    # ------------------------------------------------------------------ peer down
    def test_peer_down_at_start_then_restart_mid_stream(self):
        port = free_port()
        cfg = self.config("""
address: tcp://127.0.0.1:%d
hostname: sf-test-host
connect_timeout: 2s
""" % port)
        d = Daemon(["-c", cfg], logdir=self.dir)
        try:
            time.sleep(1.5)  # rsyslog not there yet: connect refused -> RETRY, backoff
            self.assertTrue(d.alive(), d.stderr()[-2000:])
            self.rs = Rsyslog(self.dir, "tcp", port)
            self.rs.start()
            first = self.fake.all_ids()
            got = self.wait_ids(first, 30)
            self.assertFalse(set(first) - got, "backlog not delivered after the peer came up")
            # stop rsyslog right after events were written to it: what sat unread in its socket
            # buffer was "written" (OK, checkpointed) and must come again from the sink's
            # resend window once rsyslog is back
            self.fake.add_events(15)
            wait_for(lambda: len(self.received_ids()) > len(first), 5, 0.05)
            time.sleep(0.3)
            self.rs.stop()  # SIGTERM
            self.fake.add_events(15)
            time.sleep(1.5)
            self.rs.start()
            self.fake.add_events(10)
            expected = self.fake.all_ids()
            got = self.wait_ids(expected, 30)
            missing = set(expected) - got
            self.assertFalse(missing, "%d events lost across the rsyslog restart (SIGTERM):\n%s"
                             % (len(missing), d.stderr()[-3000:]))
            # the worst case, deterministic: rsyslog frozen (reads nothing) while the sink
            # writes a batch into the kernel buffer, then killed (a crash): without the resend
            # window these events were lost
            self.rs.p.send_signal(signal.SIGSTOP)
            self.fake.add_events(20)
            time.sleep(2.5)  # next poll (1s) + write into the socket buffer
            self.rs.p.send_signal(signal.SIGKILL)
            self.rs.p.wait(5)
            self.rs.p = None
            time.sleep(0.5)
            self.rs.start()
            self.fake.add_events(5)
            expected = self.fake.all_ids()
            got = self.wait_ids(expected, 30)
            missing = set(expected) - got
            self.assertFalse(missing, "%d events lost across an rsyslog crash:\n%s"
                             % (len(missing), d.stderr()[-3000:]))
            self.assertRegex(d.stderr(), r"connection lost; re-sending \d+ messages written "
                             r"in the last")
        finally:
            rc, hung = d.term(20)
        self.assertFalse(hung)
        self.assertEqual(rc, 0, d.stderr()[-3000:])
        self.assertIn("connection", d.stderr())  # the loss was noticed and logged


if __name__ == "__main__":
    main()
