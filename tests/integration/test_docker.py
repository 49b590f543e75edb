#!/usr/bin/python3
"""docker/Dockerfile, checked without a Docker engine (none runs in CI here).

What is checked: the instruction structure (two stages on debian:bookworm-slim, the build stage
runs scripts/build.sh, the runtime stage copies only the binary and its config from the build
stage, installs no compiler or -dev package and no curl, leaves no apt lists or caches, runs as
a numeric non-root USER, STOPSIGNAL SIGTERM, HEALTHCHECK with the daemon's built-in probe on
the configuration the image runs (no port written in it), OCI labels with the project's
version, VOLUME for the state directory, exec-form ENTRYPOINT);
that the build stage's apt list provides every pkg-config module / header CMake requires (by
asking dpkg which package owns each on this Debian host); that the runtime package list covers
every shared library the built daemon links against (docker/runtime-packages.sh on SF_BIN, the
same script the image build runs); and that docker/config.yaml passes --check-config with the
image's ENV defaults.

That the image builds and runs is tests/integration/test_image.py (buildah, as root)."""

import json

import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import SF_BIN, SRC, main, scratch_dir  # noqa: E402

DOCKERFILE = os.path.join(SRC, "docker", "Dockerfile")


def instructions(path):
    """Parses a Dockerfile into [(INSTRUCTION, argument text)] (continuations joined,
    comments dropped)."""
    out, cur = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if cur and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def stages(ins):
    """[(name, base, [(INSTR, arg)...])] by FROM."""
    res, args = [], {}
    for i, a in ins:
        if i == "ARG" and not res:
            k, _, v = a.partition("=")
            args[k] = v.strip('"')
        if i == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", a, re.I)
            base = re.sub(r"\$\{(\w+)\}", lambda x: args.get(x.group(1), ""), m.group(1))
            res.append((m.group(2), base, []))
        elif res:
            res[-1][2].append((i, a))
    return res


def arg_value(stage_ins, name):
    for i, a in stage_ins:
        if i == "ARG" and a.startswith(name + "="):
            return a.split("=", 1)[1].strip('"').split()
    return None


def apt_packages(run_arg):
    m = re.search(r"apt-get install ([^&;]*)", run_arg)
    if not m:
        return []
    return [w for w in shlex.split(m.group(1)) if not w.startswith("-")]


class DockerfileStructure(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ins = instructions(DOCKERFILE)
        cls.stages = stages(cls.ins)
        cls.build = [s for s in cls.stages if s[0] == "build"]
        cls.runtime = cls.stages[-1]

    def test_two_stages_on_bookworm_slim(self):
        self.assertEqual(len(self.stages), 2, [s[:2] for s in self.stages])
        self.assertEqual(len(self.build), 1, "a stage named 'build'")
        for name, base, _ in self.stages:
            self.assertEqual(base, "debian:bookworm-slim", name)

    def test_build_stage_runs_the_project_build_script(self):
        runs = [a for i, a in self.build[0][2] if i == "RUN"]
        self.assertTrue(any(re.search(r"(^|\s)scripts/build\.sh(\s|$)", r) for r in runs),
                        runs)
        self.assertTrue(any("runtime-packages.sh" in r for r in runs),
                        "the build stage checks the runtime package list")

    def test_runtime_stage(self):
        name, base, ins = self.runtime
        kinds = [i for i, _ in ins]
        copies = [a for i, a in ins if i == "COPY"]
        self.assertTrue(copies)
        for c in copies:
            self.assertTrue(c.startswith("--from=build "), "runtime COPY not from build: " + c)
        self.assertTrue(any("/usr/local/bin/sysdig-forwarder" in c for c in copies))
        self.assertNotIn("ADD", kinds)
        pkgs = []
        for i, a in ins:
            if i == "RUN":
                pkgs += apt_packages(a)
        pkgs = [p for p in pkgs if not p.startswith("$")] + (arg_value(ins, "RUNTIME_PACKAGES")
                                                               or [])
        for p in pkgs:
            self.assertFalse(p.endswith("-dev") or p in ("build-essential", "gcc", "cmake",
                                                         "clang", "make"),
                             "build tool in the runtime stage: " + p)
        users = [a for i, a in ins if i == "USER"]
        self.assertTrue(users, "no USER in the runtime stage")
        uid = users[-1].split(":")[0]
        self.assertTrue(uid.isdigit() and int(uid) != 0,
                        "USER must be a numeric non-root uid (runAsNonRoot): " + users[-1])
        self.assertIn(("STOPSIGNAL", "SIGTERM"), ins)
        hc = [a for i, a in ins if i == "HEALTHCHECK"]
        self.assertEqual(len(hc), 1)
        m = re.search(r"\bCMD\s+(\[.*\])\s*$", hc[0])
        self.assertTrue(m, "exec-form HEALTHCHECK CMD [...]: " + hc[0])
        cmd = json.loads(m.group(1))
        self.assertEqual(cmd[:2], ["/usr/local/bin/sysdig-forwarder", "healthcheck"],
                         "the HEALTHCHECK is the daemon's built-in probe")
        # the probe finds the port in the configuration the daemon runs with (SF_LISTEN)
        ep_cmd = [a for i, a in ins if i == "CMD"]
        self.assertEqual(json.loads(ep_cmd[-1]), cmd[2:], "the probe reads the configuration "
                         "the daemon runs with")
        self.assertNotRegex(hc[0], r"9464|http://", "no address written in the HEALTHCHECK")
        self.assertNotIn("curl", pkgs, "no curl in the image: the HEALTHCHECK is built in")
        self.assertIn("ca-certificates", pkgs, "TLS to the API needs CA certificates")
        installs = [a for i, a in ins if i == "RUN" and "apt-get install" in a]
        self.assertEqual(len(installs), 1)
        for want in ("apt-get clean", "rm -rf /var/lib/apt/lists/*", "/var/cache/apt/*.bin",
                     "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
                     "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/locale/*"):
            self.assertIn(want, installs[0], "the runtime stage keeps its size down")
        vols = [a for i, a in ins if i == "VOLUME"]
        self.assertTrue(any("/var/lib/sysdig-forwarder" in v for v in vols), vols)
        ep = [a for i, a in ins if i == "ENTRYPOINT"]
        self.assertEqual(ep, ['["/usr/local/bin/sysdig-forwarder"]'], "exec-form ENTRYPOINT "
                         "(the daemon is PID 1 and gets SIGTERM)")

    def test_oci_labels(self):
        ins = self.runtime[2]
        labels = {}
        for i, a in ins:
            if i == "LABEL":
                for kv in shlex.split(a):
                    k, _, v = kv.partition("=")
                    labels[k] = v
        for key in ("title", "description", "version", "base.name"):
            self.assertTrue(labels.get("org.opencontainers.image." + key), key)
        self.assertEqual(labels["org.opencontainers.image.title"], "sysdig-forwarder")
        self.assertEqual(labels["org.opencontainers.image.version"], "${VERSION}")
        with open(os.path.join(SRC, "CMakeLists.txt")) as f:
            version = re.search(r"project\(\S+ VERSION (\S+)", f.read()).group(1)
        self.assertEqual(arg_value(ins, "VERSION"), [version],
                         "ARG VERSION must be CMakeLists.txt's project version")
        self.assertEqual(labels["org.opencontainers.image.base.name"], "${DEBIAN_IMAGE}")
        self.assertIn(("ARG", "DEBIAN_IMAGE"), ins, "the stage must see the base image's name")

    def test_runtime_package_lists_agree(self):
        lists = [arg_value(s[2], "RUNTIME_PACKAGES") for s in self.stages]
        self.assertTrue(all(lists), "RUNTIME_PACKAGES in both stages")
        self.assertEqual(lists[0], lists[1], "the two RUNTIME_PACKAGES lists differ")

    @unittest.skipUnless(shutil.which("dpkg"), "not a Debian host: dpkg needed")
    def test_build_stage_installs_what_cmake_requires(self):
        runs = [a for i, a in self.build[0][2] if i == "RUN"]
        pkgs = set(sum((apt_packages(r) for r in runs), []))
        with open(os.path.join(SRC, "CMakeLists.txt")) as f:
            cm = f.read()
        mods = re.findall(r"pkg_check_modules\(\w+\s+(?:REQUIRED\s+)?IMPORTED_TARGET\s+([\w.-]+)\)",
                          cm)
        self.assertIn("libcurl", mods)
        checked = 0
        for mod in mods:
            if mod == "check":
                continue  # unit tests only
            d = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], capture_output=True,
                               text=True)
            if d.returncode != 0:
                continue  # optional module absent on this host
            pc = os.path.join(d.stdout.strip(), mod + ".pc")
            owner = subprocess.run(["dpkg", "-S", pc], capture_output=True, text=True)
            if owner.returncode != 0:
                continue
            owners = {o.split(":")[0] for o in owner.stdout.split(": ")[0].split(", ")}
            self.assertTrue(owners & pkgs, "%s (%s) comes from %s, not installed by the build "
                            "stage" % (mod, pc, owners))
            checked += 1
        self.assertGreaterEqual(checked, 6, "too few pkg-config modules could be checked")
        owner = subprocess.run(["dpkg", "-S", "/usr/include/http_parser.h"],
                               capture_output=True, text=True)
        if owner.returncode == 0:
            self.assertIn(owner.stdout.split(":")[0], pkgs)

    @unittest.skipUnless(SF_BIN and shutil.which("objdump") and shutil.which("dpkg"),
                         "SF_BIN, objdump and dpkg are needed")
    @unittest.skipIf(os.environ.get("SF_SANITIZE") == "1",
                     "a sanitizer build links extra runtime libraries the image never ships")
    def test_runtime_packages_cover_the_binary(self):
        p = subprocess.run(["sh", os.path.join(SRC, "docker", "runtime-packages.sh"), SF_BIN],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        needed = set(p.stdout.split())
        self.assertIn("libc6", needed)
        have = set(arg_value(self.runtime[2], "RUNTIME_PACKAGES"))
        self.assertFalse(needed - have, "runtime stage lacks %s" % sorted(needed - have))

    @unittest.skipUnless(SF_BIN, "SF_BIN not set")
    def test_container_config_with_image_env(self):
        env = dict(os.environ)
        for i, a in self.runtime[2]:
            if i == "ENV":
                for kv in shlex.split(a):
                    k, _, v = kv.partition("=")
                    env[k] = v
        self.assertIn("SYSDIG_TOKEN_FILE", env)
        d = scratch_dir(self, "sf-docker-")
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write("docker-test-token\n")
        os.chmod(tok, 0o600)
        env.update(SYSDIG_TOKEN_FILE=tok, SF_STATE_DIR=d)
        p = subprocess.run([SF_BIN, "-c", os.path.join(SRC, "docker", "config.yaml"),
                            "--check-config"], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("docker-test-token", p.stdout + p.stderr)

    def test_dockerignore_keeps_build_trees_out(self):
        with open(DOCKERFILE + ".dockerignore") as f:
            pats = f.read().split()
        for want in (".git", "build", "build-*"):
            self.assertIn(want, pats)


if __name__ == "__main__":
    main()
