#!/usr/bin/python3
"""docker/Dockerfile, built and run without a Docker engine, with Debian's buildah.

No container registry is reachable here, so the base image named in the Dockerfile
(debian:bookworm-slim) is made locally: `mmdebstrap --variant=minbase bookworm` (Debian's
mirrors are reachable), cached as a tarball for the ISO week in SF_IMAGE_CACHE (default
/var/cache/sysdig-forwarder-tests) and imported under that name into a buildah store private
to this run (vfs storage driver, under TMPDIR, removed at the end). Then, as root:

- `buildah bud --format docker` (Docker format keeps HEALTHCHECK) builds docker/Dockerfile as
  it is, with docker/Dockerfile.dockerignore, apt inside the build reaching the mirrors through
  the host network;
- the image's configuration: USER 10001:10001, the built-in HEALTHCHECK, OCI labels;
- `buildah run` (chroot isolation) of the result: the user is uid/gid 10001; `--demo` prints
  events; `--check-config` passes on the shipped configuration with a token mounted at the
  image's SYSDIG_TOKEN_FILE, without warnings; the daemon, pointed by the environment at an
  in-process fake API on loopback and at another port (SF_LISTEN), forwards its events to
  stdout while the image's own HEALTHCHECK command reports it healthy, and unhealthy once the
  daemon stopped;
- the size: printed (total, base, and the layers the Dockerfile adds), and the added layers
  must stay under MAX_ADDED_MB.

Skips, with the reason, only where this cannot run: not root, buildah or mmdebstrap not
installed (Debian packages buildah and mmdebstrap; scripts/install-deps.sh installs them), a
sanitizer build (the image builds its own Release binary), or buildah unable to run a command
in a container on this host (checked on the bare base image first, and its error shown)."""

import datetime
import fcntl
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (free_port, CANARY, SRC, FakeSysdig, class_scratch_dir, main,  # noqa: E402
                     scratch_dir)

DOCKERFILE = os.path.join(SRC, "docker", "Dockerfile")
IGNOREFILE = DOCKERFILE + ".dockerignore"
CACHE = os.environ.get("SF_IMAGE_CACHE") or "/var/cache/sysdig-forwarder-tests"
SUITE = "bookworm"
BASE = "debian:bookworm-slim"
TAG = "localhost/sysdig-forwarder:test"
# the runtime stage adds ~15 MB (shared libraries, CA certificates, the binary); it added
# 104 MB before it was trimmed (docs, man pages, translations, apt caches, curl)
MAX_ADDED_MB = 25
UID = 10001


def log(msg):
    print(msg, flush=True)


def why_not():
    """The reason this cannot run here, or None."""
    if os.environ.get("SF_SANITIZE") == "1":
        return ("sanitizer build: the image builds its own Release binary; this test runs in "
                "the plain build")
    if os.geteuid() != 0:
        return "needs root (buildah with vfs storage and chroot isolation)"
    missing = [t for t in ("buildah", "mmdebstrap") if not shutil.which(t)]
    if missing:
        return ("%s not installed (Debian packages buildah and mmdebstrap; "
                "scripts/install-deps.sh installs them)" % " and ".join(missing))
    return None



def base_tarball():
    """The cached minbase tarball for this ISO week, made with mmdebstrap when missing (under
    a lock: concurrent runs make it once). Older weeks' tarballs are removed."""
    os.makedirs(CACHE, mode=0o755, exist_ok=True)
    year, week, _ = datetime.date.today().isocalendar()
    name = "debian-%s-minbase-%d-W%02d.tar" % (SUITE, year, week)
    path = os.path.join(CACHE, name)
    with open(os.path.join(CACHE, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for old in glob.glob(os.path.join(CACHE, "debian-%s-minbase-*.tar*" % SUITE)):
            if os.path.basename(old) != name:
                os.remove(old)
        if os.path.exists(path):
            log("base: cached %s" % path)
            return path, 0.0
        t0 = time.monotonic()
        tmp = path + ".part"
        # no mirror given: Debian's, with the suite's updates and security
        p = subprocess.run(["mmdebstrap", "--variant=minbase", "--quiet", SUITE, tmp],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=900)
        if p.returncode != 0:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise AssertionError("mmdebstrap failed (rc %d):\n%s" % (p.returncode,
                                                                     p.stderr[-3000:]))
        os.rename(tmp, path)
        took = time.monotonic() - t0
        log("base: made %s with mmdebstrap in %.0fs" % (path, took))
        return path, took


class Buildah:
    """buildah on a private store (vfs) under root, with chroot isolation."""

    def __init__(self, root):
        self.root = root
        self.base = ["buildah", "--root", os.path.join(root, "storage"), "--runroot",
                     os.path.join(root, "run"), "--storage-driver", "vfs"]
        self.env = dict(os.environ, BUILDAH_ISOLATION="chroot",
                        TMPDIR=os.path.join(root, "tmp"))
        os.makedirs(self.env["TMPDIR"])

    def __call__(self, *args, timeout=300, check=True, **kw):
        p = subprocess.run(self.base + list(args), capture_output=True, text=True,
                           env=self.env, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        if check and p.returncode != 0:
            raise AssertionError("buildah %s failed (rc %d):\n%s\n%s" % (
                " ".join(args[:2]), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
        return p

    def inspect(self, image):
        return json.loads(self("inspect", "--type", "image", image).stdout)

    def cleanup(self):
        self("rm", "--all", check=False)
        self("rmi", "--all", "--force", check=False)


def layer_sizes(insp):
    m = json.loads(insp["Manifest"])
    return [(lay["digest"], lay["size"]) for lay in m["layers"]]


class Image(unittest.TestCase):
    """One build, several checks on it (setUpClass builds; each test looks at one thing)."""

    @classmethod
    def setUpClass(cls):
        reason = why_not()
        if reason:
            raise unittest.SkipTest(reason)
        t_start = time.monotonic()
        cls.dir = scratch = class_scratch_dir(cls, "sf-image-")
        cls.b = b = Buildah(scratch)
        cls.addClassCleanup(b.cleanup)
        # ---- can buildah use a store here at all?
        p = b("from", "scratch", check=False)
        if p.returncode != 0:
            raise unittest.SkipTest("buildah cannot make a container on this host (vfs "
                                    "storage): %s" % (p.stderr.strip()[-600:]
                                                      or "rc %d" % p.returncode))
        b("rm", p.stdout.strip())
        # ---- the base image, under the name the Dockerfile uses
        tar, cls.t_mmdebstrap = base_tarball()
        t0 = time.monotonic()
        ctr = b("from", "scratch").stdout.strip()
        b("add", ctr, tar, "/")
        b("config", "--cmd", "/bin/bash", ctr)
        b("commit", "--quiet", ctr, BASE)
        b("rm", ctr)
        cls.t_import = time.monotonic() - t0
        # ---- can buildah run a command in a container here at all?
        probe = b("from", "--pull=never", BASE).stdout.strip()
        p = b("run", "--isolation", "chroot", probe, "--", "/bin/true", check=False)
        b("rm", probe, check=False)
        if p.returncode != 0:
            raise unittest.SkipTest("buildah cannot run a command in a container on this host "
                                    "(chroot isolation, vfs storage): %s"
                                    % (p.stderr.strip()[-600:] or "rc %d" % p.returncode))
        # ---- the build, as a user would (Docker format keeps HEALTHCHECK)
        t0 = time.monotonic()
        logf = os.path.join(scratch, "bud.log")
        with open(logf, "w") as f:
            p = subprocess.run(b.base + ["bud", "--isolation", "chroot", "--network", "host",
                                         "--pull=never", "--format", "docker",
                                         "--ignorefile", IGNOREFILE, "-f", DOCKERFILE,
                                         "-t", TAG, SRC],
                               stdout=f, stderr=subprocess.STDOUT, env=b.env,
                               stdin=subprocess.DEVNULL, timeout=1200)
        cls.t_build = time.monotonic() - t0
        if p.returncode != 0:
            with open(logf) as f:
                raise AssertionError("buildah bud of docker/Dockerfile failed (rc %d):\n%s"
                                     % (p.returncode, f.read()[-6000:]))
        cls.insp = b.inspect(TAG)
        cls.config = cls.insp["Docker"]["config"]
        base_layers = {d for d, _ in layer_sizes(b.inspect(BASE))}
        sizes = layer_sizes(cls.insp)
        cls.base_bytes = sum(s for d, s in sizes if d in base_layers)
        cls.added_bytes = sum(s for d, s in sizes if d not in base_layers)
        cls.ctr = b("from", "--pull=never", TAG).stdout.strip()
        log("image %s: %.1f MB = base %s %.1f MB + %.1f MB added by docker/Dockerfile "
            "(uncompressed layers)" % (TAG, (cls.base_bytes + cls.added_bytes) / 1e6, BASE,
                                       cls.base_bytes / 1e6, cls.added_bytes / 1e6))
        log("times: mmdebstrap %.0fs (0: cached), import %.0fs, build %.0fs, set-up total "
            "%.0fs" % (cls.t_mmdebstrap, cls.t_import, cls.t_build,
                       time.monotonic() - t_start))

    def run_in(self, *cmd, volumes=(), env=None, timeout=120):
        args = ["run", "--isolation", "chroot"]
        for v in volumes:
            args += ["-v", v]
        for k, v in (env or {}).items():
            args += ["--env", "%s=%s" % (k, v)]
        return self.b(*(args + [self.ctr, "--"] + list(cmd)), check=False, timeout=timeout)

    def token(self):
        """A token file for the container's user, mountable at SYSDIG_TOKEN_FILE."""
        d = scratch_dir(self, "sf-image-")
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write(CANARY + "\n")
        os.chown(tok, UID, UID)
        os.chmod(tok, 0o400)
        return tok

    def image_env(self):
        return dict(e.split("=", 1) for e in self.config.get("Env") or [])

    # ------------------------------------------------------------------ tests
    def test_size(self):
        self.assertLess(self.added_bytes / 1e6, MAX_ADDED_MB,
                        "the runtime stage adds %.1f MB" % (self.added_bytes / 1e6))

    def test_image_config(self):
        c = self.config
        self.assertEqual(c.get("User"), "%d:%d" % (UID, UID))
        self.assertEqual(c.get("Entrypoint"), ["/usr/local/bin/sysdig-forwarder"])
        self.assertEqual(c.get("StopSignal"), "SIGTERM")
        hc = c.get("Healthcheck") or {}
        self.assertEqual(hc.get("Test", [None])[0], "CMD", "exec-form HEALTHCHECK: %r" % hc)
        self.assertIn("healthcheck", hc["Test"])
        labels = c.get("Labels") or {}
        with open(os.path.join(SRC, "CMakeLists.txt")) as f:
            version = re.search(r"project\(\S+ VERSION (\S+)", f.read()).group(1)
        self.assertEqual(labels.get("org.opencontainers.image.version"), version)
        self.assertEqual(labels.get("org.opencontainers.image.title"), "sysdig-forwarder")
        self.assertEqual(labels.get("org.opencontainers.image.base.name"), BASE)

    def test_runs_as_10001_without_curl(self):
        p = self.run_in("sh", "-c", "id -u; id -g; command -v curl || echo no-curl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), [str(UID), str(UID), "no-curl"])

    def test_demo(self):
        p = self.run_in("timeout", "--preserve-status", "-s", "INT", "5",
                        "/usr/local/bin/sysdig-forwarder", "--demo", timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        ids = [json.loads(line)["id"] for line in p.stdout.splitlines() if line.startswith("{")]
        self.assertGreaterEqual(len(ids), 10, p.stdout[-2000:] + p.stderr[-2000:])

    def test_check_config_on_the_shipped_config(self):
        env = self.image_env()
        p = self.run_in("/usr/local/bin/sysdig-forwarder", "-c",
                        "/etc/sysdig-forwarder/config.yaml", "--check-config",
                        volumes=["%s:%s:ro" % (self.token(), env["SYSDIG_TOKEN_FILE"])])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("configuration OK (1 sink)", p.stdout)
        self.assertNotIn("warn", p.stdout + p.stderr)
        self.assertNotIn(CANARY, p.stdout + p.stderr)

    def test_forwarding_and_health_probe(self):
        fake = FakeSysdig(token=CANARY, seed=7)
        ids = fake.generate(20, span_s=600)
        fake.start()
        self.addCleanup(fake.stop)
        hc = self.config["Healthcheck"]["Test"]
        probe = shlex.join(hc[1:]) if hc[0] == "CMD" else hc[1]
        port = free_port()
        script = """
/usr/local/bin/sysdig-forwarder -c /etc/sysdig-forwarder/config.yaml >/tmp/out 2>/tmp/err &
pid=$!
healthy=no
i=0
while [ $i -lt 150 ]; do
  if {probe} >/tmp/hc 2>&1; then healthy=yes; break; fi
  kill -0 $pid 2>/dev/null || break
  i=$((i+1)); sleep 0.1
done
echo "probe-while-running: $healthy"; cat /tmp/hc
i=0
while [ $i -lt 100 ] && [ "$(grep -c '^{{' /tmp/out)" -lt {n} ]; do i=$((i+1)); sleep 0.1; done
kill -TERM $pid; wait $pid; echo "daemon-exit: $?"
{probe} >/tmp/hc 2>&1; echo "probe-after-stop: $?"; cat /tmp/hc
echo "--- stdout"; cat /tmp/out
echo "--- stderr"; cat /tmp/err
""".format(probe=probe, n=len(ids))
        env = {"SYSDIG_SECURE_URL": fake.url, "SF_LISTEN": "127.0.0.1:%d" % port,
               "SF_POLL_INTERVAL": "1s", "SF_LOG_FORMAT": "text"}
        tok = self.token()
        p = self.run_in("sh", "-c", script, env=env, timeout=120,
                        volumes=["%s:%s:ro" % (tok, self.image_env()["SYSDIG_TOKEN_FILE"])])
        out = p.stdout
        self.assertEqual(p.returncode, 0, out + p.stderr)
        self.assertIn("probe-while-running: yes", out)
        self.assertIn("healthy: http://127.0.0.1:%d/healthz: HTTP 200" % port, out,
                      "the probe follows SF_LISTEN")
        self.assertIn("daemon-exit: 0", out)
        self.assertIn("probe-after-stop: 1", out)
        got = {json.loads(line)["id"] for line in out.split("--- stdout")[1].splitlines()
               if line.startswith("{")}
        self.assertEqual(got, set(ids), "events forwarded to the container's stdout\n" + out)
        self.assertNotIn(CANARY, out.split("--- stdout")[1])


if __name__ == "__main__":
    main()
