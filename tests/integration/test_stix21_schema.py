"""STIX 2.1 ("stix21") output validated against the vendored OASIS STIX 2.1 JSON schemas
(tests/schemas/stix2.1, BSD-3-Clause, see SOURCE.txt) with Debian's python3-jsonschema; plus the
2.1 rules the schemas do not check: spec_version everywhere, every reference resolves, SCO ids
are UUIDv5 over the ID-contributing properties, and the same objects as the 2.0 output."""
import glob
import json
import os
import sys
import uuid

import jsonschema

sys.path.insert(0, os.path.dirname(__file__))
import stixcanon as sc  # noqa: E402

SCHEMAS = os.path.join(sc.SRC, "tests", "schemas", "stix2.1")
CONTRIB = {"directory": ["path"], "file": ["extensions", "hashes", "name", "parent_directory_ref"],
           "ipv4-addr": ["value"], "ipv6-addr": ["value"], "mac-addr": ["value"],
           "network-traffic": ["dst_port", "dst_ref", "end", "protocols", "src_port", "src_ref", "start"],
           "user-account": ["account_login", "account_type", "user_id"]}
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def schema_store():
    """$id -> schema, for every vendored schema; file "observables/process.json" is also
    reachable by its type name through by_name."""
    store, by_name = {}, {}
    for path in glob.glob(os.path.join(SCHEMAS, "*", "*.json")):
        with open(path) as f:
            s = json.load(f)
        store[s["$id"]] = s
        by_name[os.path.basename(path)[:-5]] = s
    return store, by_name


def make_validator(schema, store, base=None):
    """A Draft 2020-12 validator whose $refs resolve in store only (never the network): with
    `referencing` when this jsonschema has it, else RefResolver (Debian's jsonschema 4.10)."""
    base = base or schema["$id"]
    try:
        import referencing
        import referencing.jsonschema
    except ImportError:
        resolver = jsonschema.RefResolver(base, schema, store=store)
        return jsonschema.Draft202012Validator(schema, resolver=resolver)
    registry = referencing.Registry().with_resources(
        (uri, referencing.jsonschema.DRAFT202012.create_resource(s)) for uri, s in store.items())
    return jsonschema.Draft202012Validator(dict(schema, **{"$id": base}), registry=registry)


def validator():
    store, by_name = schema_store()
    return make_validator(by_name["bundle"], store)


def inputs():
    files = [f"{sc.GOLDEN}/stix-shifter/{n}.events.json" for n in sc.FIXTURES]
    lines = []
    with open(f"{sc.GOLDEN}/edge.ndjson") as f:
        lines = [l for l in f if l.strip() and json.loads(l)["id"] != "no-ts"]
    return files, "".join(lines).encode()


def check_bundle(v, b, label):
    errs = sorted(v.iter_errors(b), key=lambda e: list(e.path))
    for e in errs[:5]:
        failures.append(f"{label}: schema: {list(e.path)}: {e.message[:300]}")
    check("spec_version" not in b, f"{label}: 2.1 bundles have no spec_version")
    ids = {o["id"]: o for o in b["objects"]}
    check(len(ids) == len(b["objects"]), f"{label}: duplicate ids")
    for o in b["objects"]:
        check(o.get("spec_version") == "2.1", f"{label}: {o['id']} without spec_version 2.1")
        for prop, ref in sc.iter_refs(o):
            check(ref in ids, f"{label}: {o['id']}.{prop} -> {ref} does not resolve")
        for k in o:
            std = {"type", "id", "spec_version", "created", "modified", "created_by_ref", "name",
                   "identity_class", "first_observed", "last_observed", "number_observed",
                   "object_refs", "value", "path", "pid", "cwd", "command_line", "image_ref",
                   "parent_ref", "creator_user_ref", "parent_directory_ref", "display_name",
                   "user_id", "account_login", "src_ref", "dst_ref", "src_port", "dst_port",
                   "protocols"}
            if not o["type"].startswith("x-"):
                check(k in std or k.startswith("x_"), f"{label}: {o['type']}.{k} not x_-prefixed")
        if o["type"] in CONTRIB:
            c = {k: o[k] for k in CONTRIB[o["type"]] if k in o}
            if c:
                name = json.dumps(c, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                want = f"{o['type']}--{uuid.uuid5(sc.STIX_SCO_NS, name)}"
                check(o["id"] == want, f"{label}: {o['id']} != UUIDv5({name}) = {want}")
    od = [o for o in b["objects"] if o["type"] == "observed-data"]
    check(len(od) == 1 and "objects" not in od[0], f"{label}: one observed-data with object_refs")
    check(sorted(od[0]["object_refs"]) == sorted(i for i, o in ids.items()
                                                 if o["type"] not in ("identity", "observed-data")),
          f"{label}: object_refs must list every observable")


def main():
    v = validator()
    files, ndjson = inputs()
    for path in files:
        out, _, _ = sc.translate("stix21", path)
        b = json.loads(out[0])
        label = os.path.basename(path)
        check_bundle(v, b, label)
        # same facts as the 2.0 output (modulo the documented 2.1 renames)
        o20 = json.loads(sc.translate("stix", path)[0][0])["objects"][1]["objects"]
        want = set()
        for s in sc.canon_set(o20):
            o = json.loads(s)
            want.add(json.dumps(rename21(o), sort_keys=True))
        got = sc.canon_set21(b)
        check(got == want, f"{label}: 2.1 objects differ from 2.0:\n {sorted(got - want)}\n {sorted(want - got)}")
    out1, err, rc = sc.translate("stix21", data=ndjson, check=False)
    check(rc == 0, f"edge events: rc {rc}: {err}")
    for i, line in enumerate(out1):
        check_bundle(v, json.loads(line), f"edge line {i + 1}")
    out2, _, _ = sc.translate("stix21", data=ndjson, check=False)
    check(out1 == out2, "stix21 output (ids) not stable across runs")
    # a deliberately broken bundle must fail validation (the validator is really wired)
    bad = json.loads(out1[0])
    bad["objects"][1]["number_observed"] = 0
    check(any(True for _ in v.iter_errors(bad)), "validator accepted number_observed 0")


def rename21(o):
    """2.0 -> 2.1 names, recursively (binary_ref -> image_ref, process.name dropped,
    x-ibm-finding.severity -> x_severity)."""
    if isinstance(o, list):
        return [rename21(x) for x in o]
    if not isinstance(o, dict):
        return o
    out = {}
    for k, val in o.items():
        if o.get("type") == "process" and k == "name":
            continue
        if o.get("type") == "process" and k == "binary_ref":
            k = "image_ref"
        if o.get("type") == "x-ibm-finding" and k == "severity":
            k = "x_severity"
        out[k] = rename21(val)
    return out


if __name__ == "__main__":
    main()
    for f in failures:
        print("FAIL:", f)
    print(f"{'FAILED' if failures else 'OK'}: {len(failures)} failures")
    sys.exit(1 if failures else 0)
