"""STIX 2.1 ("stix21") output validated against the vendored OASIS STIX 2.1 JSON schemas
(tests/schemas/stix2.1, BSD-3-Clause, see SOURCE.txt) with Debian's python3-jsonschema; plus the
2.1 rules the schemas do not check: spec_version everywhere, every reference resolves, SCO ids
are UUIDv5 over the ID-contributing properties, and the same objects as the 2.0 output.
Then a property test: a few hundred events generated from the fixtures with random subsets of
their fields, labels and keys removed (seeded; SF_STIX_SEED picks another seed), converted in one
batch, every object of every bundle validated against its OASIS schema, and no SCO left with
only custom properties (docs/formats.md, "STIX 2.1")."""
import copy
import glob
import json
import os
import random
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
                   "protocols", "extensions"}
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
    test_random_subsets(v)


# ---- property test: events with random subsets of their data missing ----

KEEP = ("id", "timestamp")  # STIX ids derive from the event id; first_observed needs the time


def base_events():
    evs = [json.load(open(f"{sc.GOLDEN}/stix-shifter/{n}.events.json"))[0] for n in sc.FIXTURES]
    with open(f"{sc.GOLDEN}/seed-page.json") as f:
        evs += json.load(f)["data"]
    return evs


def removable(ev):
    """(container path, key) an event may lose: its top-level keys but id and timestamp, the
    keys of content, content.fields and labels (innermost first, so containers go last)."""
    content = ev.get("content", {})
    out = [(("content", "fields"), k) for k in content.get("fields", {})]
    out += [(("labels",), k) for k in ev.get("labels", {})]
    out += [(("content",), k) for k in content]
    out += [((), k) for k in ev if k not in KEEP]
    return out


def without(ev, gone, new_id):
    e = copy.deepcopy(ev)
    for path, k in gone:
        d = e
        for p in path:
            d = d.get(p) if isinstance(d, dict) else None
        if isinstance(d, dict):
            d.pop(k, None)
    e["id"] = new_id
    return e


def generated_events(seed, n_random):
    """(label, event): every base event with a single field or label left (the smallest
    objects), then n_random events each losing every removable key with a probability p that
    is itself random per event (from almost nothing missing to almost everything)."""
    rnd = random.Random(seed)
    out = []
    for bi, ev in enumerate(base_events()):
        leaves = [x for x in removable(ev) if x[0] in (("content", "fields"), ("labels",))]
        for keep in leaves:
            gone = [x for x in leaves if x != keep]
            out.append((f"base {bi} with only {'/'.join(keep[0])}[{keep[1]}]",
                        without(ev, gone, f"prop-{len(out)}")))
    bases = base_events()
    for _ in range(n_random):
        bi = rnd.randrange(len(bases))
        p = rnd.random()
        gone = [x for x in removable(bases[bi]) if rnd.random() < p]
        e = without(bases[bi], gone, f"prop-{len(out)}")
        left = sorted(e.get("content", {}).get("fields", {})) + sorted(e.get("labels", {}))
        out.append((f"base {bi} keeping {left}", e))
    return out


class ObjectSchemas:
    """Each object against the schema bundle.json would pick for it: its type's own schema
    (observables/, sdos/, sros/, common/), and, for a type bundle.json does not enumerate
    (x-*, extension-definition), the custom-object branch (core or cyber-observable-core).
    Per object this is much faster than the whole bundle, whose oneOf tries every schema."""

    def __init__(self):
        self.store, self.by_name = schema_store()
        bundle = self.by_name["bundle"]
        custom = bundle["properties"]["objects"]["items"]["anyOf"][1]
        self.standard = set(custom["allOf"][1]["properties"]["type"]["not"]["enum"])
        # same folder as bundle.json, so its relative $refs resolve the same way
        base = bundle["$id"].rsplit("/", 1)[0] + "/custom-object.json"
        self.custom = make_validator(custom, self.store, base)
        self.cache = {}

    def validators(self, t, in_bundle=True):
        vs = []
        if t in self.by_name and t not in ("bundle", "core", "cyber-observable-core"):
            if t not in self.cache:
                self.cache[t] = make_validator(self.by_name[t], self.store)
            vs.append(self.cache[t])
        if t not in self.standard and in_bundle:
            vs.append(self.custom)
        return vs

    def errors(self, o, in_bundle=True):
        """in_bundle=False: its type's schema only (an extension-definition outside a bundle)."""
        for v in self.validators(o.get("type"), in_bundle):
            for e in v.iter_errors(o):
                yield e


OBSERVABLES = {os.path.basename(p)[:-5]
               for p in glob.glob(os.path.join(SCHEMAS, "observables", "*.json"))}


# The forwarder's toplevel-property-extension, published (the OASIS bundle schema rejects
# extension-definition objects, so bundles only name it).
EXT_FILE = os.path.join(sc.SRC, "docs", "stix21-extension-definition.json")
with open(EXT_FILE) as f:
    PUBLISHED = {o["id"]: o for o in json.load(f)}


def check_published(schemas):
    for o in PUBLISHED.values():
        check(schemas.validators(o["type"], False), f"{EXT_FILE}: no schema for {o['type']}")
        for e in schemas.errors(o, in_bundle=False):
            failures.append(f"{EXT_FILE}: {o['id']}: {e.message[:300]}")
        for prop, ref in sc.iter_refs(o):
            check(ref in PUBLISHED, f"{EXT_FILE}: {o['id']}.{prop} -> {ref} does not resolve")


def toplevel_declared(o):
    """The properties o's extensions declare through a published toplevel-property-extension
    (None when some extension is not such a declaration)."""
    declared = set()
    for k, e in o.get("extensions", {}).items():
        d = PUBLISHED.get(k, {})
        if (d.get("type") != "extension-definition" or
                e != {"extension_type": "toplevel-property-extension"} or
                "toplevel-property-extension" not in d.get("extension_types", [])):
            return None
        declared |= set(d.get("extension_properties", []))
    return declared


def only_custom(b):
    """The SCOs of spec-defined types in bundle b that break the rule (docs/formats.md): STIX 2.1
    wants at least one property of the type or of one of its extensions, custom x_ properties do
    not count; an object whose only properties are custom ones must declare them all through the
    published toplevel-property-extension, and only such an object declares it."""
    for o in b["objects"]:
        if o["type"] not in OBSERVABLES:
            continue
        own = [k for k in o if k not in ("type", "id", "spec_version", "extensions")
               and not k.startswith("x_")]
        custom = {k for k in o if k.startswith("x_")}
        declared = toplevel_declared(o)
        if own:  # declares the extension without needing it
            bad = "extensions" in o and declared is not None
        else:
            bad = not custom or declared is None or not custom <= declared
        if bad:
            yield o


def undeclared(b):
    """Bundle b without the declarations of the published extension: the facts only,
    comparable with the 2.0 output."""
    b = copy.deepcopy(b)
    for o in b["objects"]:
        exts = o.get("extensions")
        if exts is not None:
            for k in [k for k in exts if k in PUBLISHED]:
                del exts[k]
            if not exts:
                del o["extensions"]
    return b


def test_random_subsets(v):
    seed = int(os.environ.get("SF_STIX_SEED", "2111"))
    evs = generated_events(seed, 300)
    data = "".join(json.dumps(e) + "\n" for _, e in evs).encode()
    out21, err, rc = sc.translate("stix21", data=data, check=False)
    out20, err20, rc20 = sc.translate("stix", data=data, check=False)
    if rc or rc20 or len(out21) != len(evs) or len(out20) != len(evs):
        check(False, f"property test (seed {seed}): translate rc {rc}/{rc20}: {err}{err20}")
        return
    check(sc.translate("stix21", data=data, check=False)[0] == out21,
          f"property test (seed {seed}): stix21 output not stable across runs")
    schemas = ObjectSchemas()
    check_published(schemas)
    bad = {}
    for i, ((label, ev), line, line20) in enumerate(zip(evs, out21, out20)):
        b = json.loads(line)
        where = f"seed {seed}, event {ev['id']} ({label})"
        for o in b["objects"]:
            errs = list(schemas.errors(o))
            if errs:
                bad.setdefault(o["type"], []).append(
                    f"{where}: {json.dumps(o)[:300]}: {errs[0].message[:200]}")
        for o in only_custom(b):
            bad.setdefault(o["type"] + " (custom properties, extension)", []).append(
                f"{where}: {json.dumps(o)[:300]}")
        if i % 40 == 0:  # the whole bundle too, now and then (slow): same verdict
            errs = list(v.iter_errors(b))
            check(not errs, f"{where}: bundle: {errs[:1]}")
        # no information lost: the same facts as the 2.0 output, modulo the 2.1 renames
        o20 = json.loads(line20)["objects"][1]["objects"]
        want = {json.dumps(rename21(json.loads(s)), sort_keys=True) for s in sc.canon_set(o20)}
        got = sc.canon_set21(undeclared(b))
        check(got == want, f"{where}: 2.1 facts differ from 2.0:\n {sorted(got - want)}\n"
                           f" {sorted(want - got)}")
    for t, msgs in sorted(bad.items()):
        failures.append(f"{t}: {len(msgs)} invalid objects, e.g.\n  " + "\n  ".join(msgs[:3]))
    print(f"property test: {len(evs)} events (seed {seed}), "
          f"{sum(len(m) for m in bad.values())} invalid objects")


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
