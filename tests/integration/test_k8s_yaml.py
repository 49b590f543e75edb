#!/usr/bin/python3
"""Kubernetes examples in docker/kubernetes/: yamllint clean, and the structure the operations
docs promise (native sidecar, probes, read-only secret, non-root read-only root filesystem,
ConfigMap as a directory, checkpoint volume, grace period, single-replica Recreate with a PVC).
The embedded daemon configurations must pass the daemon's own --check-config. Probes: the
native sidecar has a startup probe and liveness on /healthz and no readiness probe (its
readiness would be the application pod's); the Deployment has readiness on /readyz and its
metrics Service publishes not-ready addresses (the ready == 0 alert must see a not-ready pod).

The token Secret: the file the kubelet would make from each manifest (owner root, group
fsGroup, defaultMode with the group read bits the kubelet adds for fsGroup) is made here and
read by the daemon running as the manifest's user and groups, which must accept it without the
'accessible by group/others' warning (run as root only: it needs chown and setuid).

What this does NOT check: that a cluster accepts the objects (no API server here)."""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import SF_BIN, SRC, main, scratch_dir  # noqa: E402

try:
    import yaml
except ImportError:  # python3-yaml
    yaml = None

KDIR = os.path.join(SRC, "docker", "kubernetes")
FILES = ["sidecar.yaml", "deployment.yaml"]
PORT = 9464
SHUTDOWN_TIMEOUT_S = 20
YAMLLINT_CFG = ("{extends: default, rules: {line-length: {max: 100}, document-start: disable, "
                "truthy: {check-keys: false}}}")


def yamllint_cmd():
    if shutil.which("yamllint"):
        return ["yamllint"]
    try:
        import yamllint  # noqa: F401
        return [sys.executable, "-m", "yamllint"]
    except ImportError:
        return None


def load(name):
    with open(os.path.join(KDIR, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def check_config_text(testcase, text, extra_env=None):
    """Runs SF_BIN --check-config on a daemon config, with the token file and state paths
    pointed into a scratch directory of testcase. Returns (ok, output)."""
    d = scratch_dir(testcase, "sf-k8s-")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("k8s-test-token-value\n")
    os.chmod(tok, 0o600)
    text = text.replace("/var/run/secrets/sysdig/token", tok)
    text = text.replace("/var/lib/sysdig-forwarder", d)
    path = os.path.join(d, "config.yaml")
    with open(path, "w") as f:
        f.write(text)
    env = dict(os.environ, SYSDIG_SECURE_URL="https://secure.sysdig.com")
    env.update(extra_env or {})
    p = subprocess.run([SF_BIN, "-c", path, "--check-config"], capture_output=True, text=True,
                       env=env, timeout=30)
    return p.returncode == 0, p.stdout + p.stderr


class YamlLint(unittest.TestCase):
    def test_yamllint(self):
        cmd = yamllint_cmd()
        if not cmd:
            self.skipTest("yamllint is not installed (Debian package yamllint)")
        files = [os.path.join(KDIR, f) for f in FILES] + [os.path.join(SRC, "docker",
                                                                       "config.yaml")]
        p = subprocess.run(cmd + ["-s", "-d", YAMLLINT_CFG] + files, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


@unittest.skipIf(yaml is None, "python3-yaml is not installed: structure checks skipped")
class Structure(unittest.TestCase):
    def pod_spec(self, name):
        deps = by_kind(load(name), "Deployment")
        self.assertEqual(len(deps), 1, name)
        return deps[0], deps[0]["spec"]["template"]["spec"]

    def check_probes(self, c, probes):
        """probes: {probe: path}; every probe on the server port, no other probe."""
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe not in probes:
                self.assertNotIn(probe, c, probe)
                continue
            g = c[probe]["httpGet"]
            self.assertEqual(g["path"], probes[probe], probe)
            port = ports.get(g["port"], g["port"])
            self.assertEqual(port, PORT, probe)

    def check_forwarder_container(self, c, spec, docs):
        # the config's listen address matches and is reachable from the kubelet
        cm_names = [v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v]
        self.assertEqual(len(cm_names), 1)
        cm = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == cm_names[0]][0]
        cfg = yaml.safe_load(cm["data"]["config.yaml"])
        self.assertEqual(cfg["server"]["listen"], "0.0.0.0:%d" % PORT)
        self.assertTrue(cfg["source"]["token_file"].startswith("/var/run/secrets/sysdig/"))
        self.assertNotIn("token", cfg["source"], "a token must come from the Secret file")
        self.assertTrue(cfg["checkpoint"]["path"].startswith("/var/lib/sysdig-forwarder/"))
        self.assertLessEqual(parse_seconds(cfg["pipeline"]["shutdown_timeout"]),
                             spec["terminationGracePeriodSeconds"])
        # volumes: ConfigMap as a directory, Secret read-only, checkpoint on a volume
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in spec["volumes"]}
        for m in mounts.values():
            self.assertNotIn("subPath", m, "ConfigMap/Secret must be mounted as directories")
        cfg_mount = [m for n, m in mounts.items() if "configMap" in vols[n]][0]
        self.assertEqual(cfg_mount["mountPath"], "/etc/sysdig-forwarder")
        self.assertTrue(cfg_mount.get("readOnly"))
        sec = [(n, m) for n, m in mounts.items() if "secret" in vols[n]]
        self.assertEqual(len(sec), 1, "one Secret volume with the token")
        self.assertTrue(sec[0][1].get("readOnly"), "the Secret must be mounted read-only")
        self.assertEqual(sec[0][1]["mountPath"], "/var/run/secrets/sysdig")
        self.assertLessEqual(vols[sec[0][0]]["secret"].get("defaultMode", 0o644), 0o440)
        state = [m for m in mounts.values() if m["mountPath"] == "/var/lib/sysdig-forwarder"]
        self.assertEqual(len(state), 1, "checkpoint directory must be a volume")
        self.assertFalse(state[0].get("readOnly", False))
        # security: non-root, read-only root filesystem, no privilege escalation, no caps
        sc = c["securityContext"]
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertTrue(sc.get("runAsNonRoot") or spec["securityContext"].get("runAsNonRoot"))
        self.assertNotEqual(sc.get("runAsUser", spec["securityContext"].get("runAsUser")), 0)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertEqual(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
        self.assertFalse(spec.get("automountServiceAccountToken", True))
        # sized resources
        r = c["resources"]
        self.assertIn("memory", r["requests"])
        self.assertIn("cpu", r["requests"])
        self.assertIn("memory", r["limits"])
        self.assertEqual(c["args"], ["-c", "/etc/sysdig-forwarder/config.yaml"])
        return cfg, cm

    def test_sidecar(self):
        docs = load("sidecar.yaml")
        dep, spec = self.pod_spec("sidecar.yaml")
        inits = [c for c in spec.get("initContainers", []) if c["name"] == "sysdig-forwarder"]
        self.assertEqual(len(inits), 1, "the forwarder must be an init container")
        c = inits[0]
        self.assertEqual(c.get("restartPolicy"), "Always", "native sidecar needs restartPolicy")
        self.assertNotIn("sysdig-forwarder", [x["name"] for x in spec["containers"]])
        self.assertGreaterEqual(spec["terminationGracePeriodSeconds"], SHUTDOWN_TIMEOUT_S)
        self.assertLessEqual(spec["terminationGracePeriodSeconds"], 30,
                             "graceful shutdown within the default 30 s grace")
        self.check_forwarder_container(c, spec, docs)
        # A native sidecar's readiness is part of the pod's: a /readyz readiness probe would
        # take the application out of its Services whenever a sink or the API fails. A startup
        # probe on /healthz (the app containers start once it passes) and liveness on /healthz;
        # the forwarder's own readiness is watched through sysdig_forwarder_ready.
        self.check_probes(c, {"startupProbe": "/healthz", "livenessProbe": "/healthz"})
        sp = c["startupProbe"]
        budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
        self.assertGreaterEqual(budget, 10, "give the daemon time to start (%ss)" % budget)
        self.assertLessEqual(sp.get("periodSeconds", 10), 2,
                             "the app waits for the startup probe: poll it often")
        self.assertNotIn("initialDelaySeconds", c["livenessProbe"],
                         "liveness starts after the startup probe passed: no delay needed")

    def test_deployment(self):
        docs = load("deployment.yaml")
        dep, spec = self.pod_spec("deployment.yaml")
        self.assertEqual(dep["spec"]["replicas"], 1)
        self.assertEqual(dep["spec"]["strategy"]["type"], "Recreate")
        self.assertGreaterEqual(spec["terminationGracePeriodSeconds"], SHUTDOWN_TIMEOUT_S)
        c = [x for x in spec["containers"] if x["name"] == "sysdig-forwarder"][0]
        self.check_forwarder_container(c, spec, docs)
        # its own pod: readiness on /readyz shows a failing sink or API in kubectl
        self.check_probes(c, {"livenessProbe": "/healthz", "readinessProbe": "/readyz"})
        # the metrics Service keeps a not-ready pod as an endpoint, so that the
        # sysdig_forwarder_ready == 0 alert can fire while the pod is not ready
        svcs = by_kind(docs, "Service")
        self.assertEqual(len(svcs), 1)
        self.assertIs(svcs[0]["spec"].get("publishNotReadyAddresses"), True,
                      "the metrics Service must publish not-ready addresses")
        self.assertEqual(svcs[0]["spec"]["selector"],
                         dep["spec"]["template"]["metadata"]["labels"])
        pvcs = by_kind(docs, "PersistentVolumeClaim")
        self.assertEqual(len(pvcs), 1)
        state = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
        self.assertEqual(state[0]["persistentVolumeClaim"]["claimName"],
                         pvcs[0]["metadata"]["name"])
        self.assertIn("ReadWriteOnce", pvcs[0]["spec"]["accessModes"])

    @unittest.skipUnless(SF_BIN, "SF_BIN not set: embedded configs not validated")
    def test_embedded_configs_pass_check_config(self):
        for name in FILES:
            for cm in by_kind(load(name), "ConfigMap"):
                ok, out = check_config_text(self, cm["data"]["config.yaml"])
                self.assertTrue(ok, "%s ConfigMap %s: %s" % (name, cm["metadata"]["name"], out))

    def test_secret_is_never_inline(self):
        for name in FILES:
            self.assertFalse(by_kind(load(name), "Secret"),
                             "%s must not carry a Secret (create it from a file)" % name)
            with open(os.path.join(KDIR, name)) as f:
                self.assertIsNone(re.search(r"^\s*token:\s*\S", f.read(), re.M), name)


def kubelet_secret_file(pod_sc, volume):
    """(uid, gid, mode) of a file in a Secret volume as the kubelet makes it: owned by root,
    mode from defaultMode (0644 when unset); with an fsGroup, the group becomes fsGroup and the
    kubelet adds group read (it ORs 0440 into a read-only volume's files:
    pkg/volume/volume_linux.go), so 0400 cannot survive an fsGroup."""
    mode = volume["secret"].get("defaultMode", 0o644)
    gid = 0
    if pod_sc.get("fsGroup") is not None:
        gid = pod_sc["fsGroup"]
        mode |= 0o440
    return 0, gid, mode


def container_identity(pod_sc, c):
    """(uid, gid, supplementary groups) of the container's process."""
    sc = c.get("securityContext", {})
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", 0))
    groups = list(pod_sc.get("supplementalGroups", []))
    if pod_sc.get("fsGroup") is not None:
        groups.append(pod_sc["fsGroup"])
    return uid, gid, groups


@unittest.skipIf(yaml is None, "python3-yaml is not installed: token Secret check skipped")
@unittest.skipUnless(SF_BIN, "SF_BIN not set: the daemon is needed")
class TokenSecretAgreesWithDaemon(unittest.TestCase):
    """The daemon reads the Secret file the manifest makes, as the manifest's user, and does not
    warn about it (a warning on every start of every pod is noise that hides real ones)."""

    def forwarder(self, name):
        docs = load(name)
        spec = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
        cs = spec.get("initContainers", []) + spec["containers"]
        c = [x for x in cs if x["name"] == "sysdig-forwarder"][0]
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        vol = [v for v in spec["volumes"] if "secret" in v and v["name"] in mounts][0]
        cm = [d for d in by_kind(docs, "ConfigMap")][0]["data"]["config.yaml"]
        return spec["securityContext"], c, vol, cm

    def test_manifests_make_a_file_the_non_root_daemon_can_read(self):
        for name in FILES:
            pod_sc, c, vol, _ = self.forwarder(name)
            uid, gid, groups = container_identity(pod_sc, c)
            self.assertTrue(uid, "%s: the forwarder must run as a non-root uid" % name)
            fuid, fgid, mode = kubelet_secret_file(pod_sc, vol)
            readable = (mode & 0o004) or ((mode & 0o040) and (fgid == gid or fgid in groups))
            self.assertTrue(readable, "%s: uid %s (groups %s) cannot read a root-owned %04o "
                            "token of group %s" % (name, uid, [gid] + groups, mode, fgid))
            self.assertFalse(mode & 0o037, "%s: the token must be readable by the owner and "
                             "group only (mode %04o)" % (name, mode))
            self.assertEqual(vol["secret"].get("defaultMode"), mode,
                             "%s: defaultMode should say the mode the file really gets "
                             "(%04o)" % (name, mode))

    def run_as(self, uid, gid, groups, token_mode, token_owner, token_group, config_text):
        """--check-config as uid/gid/groups on a token file with the given owner and mode.
        The files, the state directory (owned by uid) and the binary are handed over as open
        descriptors (/proc/self/fd/N), so that the scratch directory (0700) and the build tree
        need not be reachable by uid."""
        d = scratch_dir(self, "sf-k8s-token-")
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write("k8s-test-token-value\n")
        os.chown(tok, token_owner, token_group)
        os.chmod(tok, token_mode)
        # the state volume, writable by the pod's user as the manifest's fsGroup makes it (the
        # check wants the checkpoint's directory writable), reached through its descriptor too
        state = os.path.join(d, "state")
        os.mkdir(state, 0o770)
        os.chown(state, uid, gid)
        fds = [os.open(tok, os.O_RDONLY), os.open(state, os.O_RDONLY | os.O_DIRECTORY)]
        text = config_text.replace("/var/run/secrets/sysdig/token", "/proc/self/fd/%d" % fds[0])
        text = text.replace("/var/lib/sysdig-forwarder", "/proc/self/fd/%d" % fds[1])
        cfg = os.path.join(d, "config.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        fds.append(os.open(cfg, os.O_RDONLY))
        fds.append(os.open(SF_BIN, os.O_RDONLY))
        try:
            env = dict(os.environ, SYSDIG_SECURE_URL="https://secure.sysdig.com")
            p = subprocess.run(["sysdig-forwarder", "-c", "/proc/self/fd/%d" % fds[2],
                                "--check-config"], executable="/proc/self/fd/%d" % fds[3],
                               capture_output=True, text=True, env=env, timeout=30,
                               user=uid, group=gid, extra_groups=groups, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        return p.returncode, p.stdout + p.stderr

    @unittest.skipUnless(os.geteuid() == 0, "needs root (chown, and running as another uid)")
    def test_daemon_accepts_the_kubelet_made_token_without_warning(self):
        for name in FILES:
            pod_sc, c, vol, cm = self.forwarder(name)
            uid, gid, groups = container_identity(pod_sc, c)
            fuid, fgid, mode = kubelet_secret_file(pod_sc, vol)
            rc, out = self.run_as(uid, gid, groups, mode, fuid, fgid, cm)
            self.assertEqual(rc, 0, "%s: %s" % (name, out))
            self.assertNotIn("group/others", out, "%s: the daemon warns about the token file "
                             "the manifest makes (root:%d %04o)" % (name, fgid, mode))

    @unittest.skipUnless(os.geteuid() == 0, "needs root (chown, and running as another uid)")
    def test_daemon_still_warns_about_exposed_tokens(self):
        cm = self.forwarder("sidecar.yaml")[3]
        for owner, mode, why in ((0, 0o444, "readable by others"),
                                 (0, 0o460, "group-writable"),
                                 (10001, 0o440, "own file, group-readable"),
                                 (10001, 0o640, "own file, group-readable")):
            rc, out = self.run_as(10001, 10001, [10001], mode, owner, 10001, cm)
            self.assertEqual(rc, 0, out)
            self.assertIn("group/others", out, "no warning for a token file %s (uid %d, %04o)"
                          % (why, owner, mode))


def parse_seconds(s):
    m = re.fullmatch(r"(\d+)(ms|s|m)", str(s))
    n = int(m.group(1))
    return {"ms": n / 1000, "s": n, "m": n * 60}[m.group(2)]


if __name__ == "__main__":
    main()
