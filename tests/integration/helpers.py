"""Shared helpers for the integration tests (not a test itself)."""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SF_SRC") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "fakeapi"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakeapi"))

from sysdig_api import (EVENTS_PATH, LEGACY_PATH, NS, STATUS_PATH,  # noqa: E402,F401
                        FakeSysdig, rfc3339_ns)

SF_BIN = os.environ.get("SF_BIN")
CANARY = "CANARY-tok-8f3e2a"
KEEP_TMP = os.environ.get("SF_KEEP_TMP") == "1"


def need_bin(testcase_cls):
    """Class decorator: skip (clearly) only when SF_BIN is unset."""
    if not SF_BIN:
        return unittest.skip("SF_BIN is not set: the daemon binary is needed for e2e tests")(
            testcase_cls)
    return testcase_cls


# ---------------------------------------------------------------- scratch directories
def _remove(path, first_daemon=0):
    """Removes a scratch directory (or keeps it: SF_KEEP_TMP=1), after stopping the daemons
    started since it was made that are still running (a test that failed before stopping
    one): they would write into it again."""
    _kill_daemons(first_daemon)
    if KEEP_TMP:
        print("SF_KEEP_TMP=1: kept %s" % path, file=sys.stderr, flush=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def scratch_dir(testcase, prefix):
    """A fresh directory under $TMPDIR, removed when the test ends, passed or failed (by
    testcase.addCleanup, which runs after tearDown). With SF_KEEP_TMP=1 it is kept and its
    path printed on stderr."""
    d = tempfile.mkdtemp(prefix=prefix)
    testcase.addCleanup(_remove, d, len(_daemons))
    return d


def class_scratch_dir(cls, prefix):
    """scratch_dir for setUpClass: removed after the class's last test (addClassCleanup)."""
    d = tempfile.mkdtemp(prefix=prefix)
    cls.addClassCleanup(_remove, d, len(_daemons))
    return d


# ---------------------------------------------------------------- HTTP (urllib)
def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server the test starts)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, path, params=None, token=None, timeout=10):
    """Returns (status, headers dict, body bytes). params: dict or list of pairs."""
    q = urllib.parse.urlencode(params or {}, doseq=True)
    req = urllib.request.Request(url + path + ("?" + q if q else ""))
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    req.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def http_control(url, **req):
    data = json.dumps(req).encode()
    r = urllib.request.Request(url + "/_control", data=data, method="POST",
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=10) as resp:
        return json.loads(resp.read())


# ---------------------------------------------------------------- config / daemon
def write_config(d, url, api="legacy", page_size=50, poll_interval="1s", lookback="1h",
                 overlap="60s", request_timeout="5s", retry_initial="100ms", retry_max="2s",
                 token="${SYSDIG_SECURE_API_TOKEN}", out_name="events.ndjson", extra_source="",
                 extra="", name="config.yaml"):
    """Writes a daemon config in directory d. Returns (config path, output path, checkpoint)."""
    out = os.path.join(d, out_name)
    cp = os.path.join(d, "checkpoint.json")
    text = f"""source:
  url: {url}
  api: {api}
  token: {token}
  page_size: {page_size}
  poll_interval: {poll_interval}
  lookback: {lookback}
  overlap: {overlap}
  request_timeout: {request_timeout}
  retry: {{ initial: {retry_initial}, max: {retry_max} }}
{extra_source}checkpoint: {{ path: {cp} }}
sinks:
  - name: archive
    type: file
    format: raw
    path: {out}
log: {{ level: info, format: text }}
{extra}"""
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path, out, cp


def daemon_env(token=CANARY, **extra):
    env = dict(os.environ)
    env["SYSDIG_SECURE_API_TOKEN"] = token
    env.update(extra)
    return env


def run(args, env=None, timeout=60, cwd=None):
    """Runs SF_BIN with args, hard timeout (kills it). Returns CompletedProcess (text) with
    .timed_out."""
    p = subprocess.Popen([SF_BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env or daemon_env(), cwd=cwd, text=True, errors="replace")
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        p.kill()
        out, err = p.communicate()
    cp = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    cp.timed_out = timed_out
    return cp


_daemons = []  # every Daemon started by this process, in order
_exit_dirs = []  # log directories of Daemons given no logdir: removed when the process exits


def _kill_daemons(first=0):
    """Stops the daemons started since _daemons[first] that are still running (SIGTERM, so
    that they remove their own temporary files; SIGKILL if one hangs)."""
    for d in _daemons[first:]:
        if d.alive():
            d.term(10)
        d._close()


@atexit.register
def _at_exit():
    for d in _exit_dirs:
        _remove(d)
    _kill_daemons()


class Daemon:
    """A background daemon with stderr/stdout captured to files in logdir, a directory the
    caller removes (e.g. a scratch_dir: the logs stay readable after term()). Without one it
    makes its own, removed when the test process exits."""

    def __init__(self, args, env=None, logdir=None, tag="daemon"):
        if not logdir:
            logdir = tempfile.mkdtemp(prefix="sf-daemon-")
            _exit_dirs.append(logdir)
        self.logdir = logdir
        self.errpath = os.path.join(self.logdir, tag + ".stderr")
        self.outpath = os.path.join(self.logdir, tag + ".stdout")
        self._err = open(self.errpath, "ab")
        self._out = open(self.outpath, "ab")
        self._err_start = self._err.tell()  # the log may hold earlier daemons' output
        self.p = subprocess.Popen([SF_BIN] + list(args), stdout=self._out, stderr=self._err,
                                  env=env or daemon_env())
        _daemons.append(self)

    def alive(self):
        return self.p.poll() is None

    def kill9(self):
        if self.alive():
            self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)
        self._close()

    def term(self, timeout=20):
        """SIGTERM, wait; SIGKILL if it hangs. Returns (returncode, hung)."""
        hung = False
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                hung = True
                self.p.kill()
                self.p.wait(10)
        self._close()
        return self.p.returncode, hung

    def _close(self):
        for f in (self._err, self._out):
            try:
                f.close()
            except OSError:
                pass

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def own_stderr(self):
        """What this process wrote (a log shared with earlier daemons holds theirs too)."""
        with open(self.errpath, "rb") as f:
            f.seek(self._err_start)
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        with open(self.outpath, "rb") as f:
            return f.read().decode("utf-8", "replace")


# ---------------------------------------------------------------- output parsing
_EV_START = re.compile(r'\{"id":')


def read_output(path):
    """Parses a raw ndjson sink file. Returns (ids list in file order, torn line count).
    A line that is not one JSON object (e.g. torn by SIGKILL and then appended to) is scanned
    for complete event objects so that a torn prefix does not hide the event after it."""
    ids, torn = [], 0
    if not os.path.exists(path):
        return ids, torn
    dec = json.JSONDecoder()
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line:
                continue
            try:
                obj = json.loads(line)
                if isinstance(obj, dict) and "id" in obj:
                    ids.append(obj["id"])
                    continue
            except ValueError:
                pass
            torn += 1
            for m in _EV_START.finditer(line):
                try:
                    obj, _ = dec.raw_decode(line, m.start())
                except ValueError:
                    continue
                if isinstance(obj, dict) and "id" in obj:
                    ids.append(obj["id"])
    return ids, torn


def dup_count(ids):
    return len(ids) - len(set(ids))


def wait_for(pred, timeout, interval=0.2):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()


class OutputReader:
    """Incremental reader of a raw ndjson sink file (cheap to poll: only new complete lines
    are parsed, so polling does not starve the in-process fake API of the GIL)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.ids = []
        self.idset = set()
        self.torn = 0
        self._dec = json.JSONDecoder()

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.ids
        end = data.rfind(b"\n")
        if end < 0:
            return self.ids
        self.offset += end + 1
        for raw in data[:end].split(b"\n"):
            line = raw.decode("utf-8", "replace")
            if not line:
                continue
            try:
                obj = json.loads(line)
                if isinstance(obj, dict) and "id" in obj:
                    self.ids.append(obj["id"])
                    self.idset.add(obj["id"])
                    continue
            except ValueError:
                pass
            self.torn += 1
            for m in _EV_START.finditer(line):
                try:
                    obj, _ = self._dec.raw_decode(line, m.start())
                except ValueError:
                    continue
                if isinstance(obj, dict) and "id" in obj:
                    self.ids.append(obj["id"])
                    self.idset.add(obj["id"])
        return self.ids


def wait_output_covers(path, expected, timeout, daemon=None, reader=None):
    """Waits until every id of 'expected' is in the output file (or the daemon died).
    Returns (ids, torn) from a full final read."""
    expected = set(expected)
    reader = reader or OutputReader(path)

    def ok():
        if daemon is not None and not daemon.alive():
            return True
        reader.poll()
        return expected.issubset(reader.idset)
    wait_for(ok, timeout, 1.0)
    return read_output(path)


def main(module_name="__main__"):
    """unittest main with a one-line summary; exit status 0 only if everything passed."""
    prog = unittest.main(module=module_name, exit=False, verbosity=2)
    r = prog.result
    print("SUMMARY: ran=%d failures=%d errors=%d skipped=%d -> %s" % (
        r.testsRun, len(r.failures), len(r.errors), len(r.skipped),
        "OK" if r.wasSuccessful() else "FAILED"), flush=True)
    sys.exit(0 if r.wasSuccessful() else 1)
