"""Helpers for the STIX tests: run the translate subcommand, canonicalise STIX objects by
resolving references (so object key numbering and ids do not matter) and compare as sets."""
import json
import os
import subprocess
import uuid

SRC = os.environ.get("SF_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SF_BIN", "sysdig-forwarder")
GOLDEN = os.path.join(SRC, "tests", "golden")
FIXTURES = ["e1_seed_sev60", "e1b_seed_sev0", "e2_container_sev7", "e3_deployment_sev4_anames_raw"]
FORWARDER_NS = uuid.UUID("6f3e3c1e-5b2a-4c77-9a53-1d2f6b3c8e41")
STIX_SCO_NS = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")


def translate(fmt, path=None, data=None, check=True):
    """Returns (list of output lines, stderr, exit code)."""
    cmd = [BIN, "translate", "--format", fmt] + ([path] if path else [])
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}: {p.stderr.decode()}")
    return [l for l in p.stdout.decode().split("\n") if l], p.stderr.decode(), p.returncode


def resolve(value, table, depth=0):
    """Replaces every *_ref / *_refs value by the referenced object's resolved content."""
    assert depth < 32, "reference cycle"
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k.endswith("_ref") and k != "created_by_ref":
                out[k] = resolve(table[v], table, depth + 1)
            elif k.endswith("_refs") and k != "object_refs":
                out[k] = [resolve(table[x], table, depth + 1) for x in v]
            else:
                out[k] = resolve(v, table, depth + 1)
        return out
    if isinstance(value, list):
        return [resolve(v, table, depth + 1) for v in value]
    return value


def strip(obj, keys=("id", "spec_version")):
    """Drops id/spec_version recursively (2.1 objects carry them; 2.0 observables do not)."""
    if isinstance(obj, dict):
        return {k: strip(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [strip(v, keys) for v in obj]
    return obj


def canon_set(objects):
    """objects: dict key -> observable (2.0). Returns the set of canonical resolved objects."""
    return {json.dumps(resolve(o, objects), sort_keys=True) for o in objects.values()}


def canon_set21(bundle):
    """STIX 2.1 bundle -> the same canonical set, from the SCOs of its observed-data."""
    table = {o["id"]: o for o in bundle["objects"]}
    od = [o for o in bundle["objects"] if o["type"] == "observed-data"][0]
    return {json.dumps(strip(resolve(table[r], table)), sort_keys=True) for r in od["object_refs"]}


def iter_refs(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith("_ref"):
                yield k, v
            elif k.endswith("_refs"):
                for x in v:
                    yield k, x
            else:
                yield from iter_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_refs(v)


def empties(value, path="$"):
    """Paths of empty values (None, "", [], {})."""
    if value is None or value == "" or value == [] or value == {}:
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from empties(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from empties(v, f"{path}[{i}]")


def shuffled(value, rnd):
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rnd) for v in value]
    return value
