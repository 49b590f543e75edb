"""translate: input shapes (array, API page, NDJSON, stdin/file), per-event errors with their
position, exit codes."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import stixcanon as sc  # noqa: E402

GOOD = {"id": "a", "timestamp": 1709626200000000000, "severity": 3}
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def main():
    g = json.dumps(GOOD)
    for label, data in (("array", f"[{g},\n{g}]"), ("page", '{"page":{"total":2},"data":[%s,%s]}' % (g, g)),
                        ("ndjson", f"{g}\n\n{g}\n")):
        out, err, rc = sc.translate("raw", data=data.encode(), check=False)
        check(rc == 0 and out == [g, g], f"{label}: rc={rc} out={out} err={err}")
    # pretty-printed input (not NDJSON): whole-buffer mode; raw would keep its newlines
    out, err, rc = sc.translate("stix", data=json.dumps([GOOD, GOOD], indent=2).encode(), check=False)
    check(rc == 0 and len(out) == 2, f"pretty: rc={rc} {err}")
    out, err, rc = sc.translate("stix", data=json.dumps(GOOD, indent=2).encode(), check=False)
    check(rc == 0 and len(out) == 1, f"pretty single object: rc={rc} {err}")
    # raw keeps exact bytes (int64 timestamp) from arrays and pages too
    out, _, _ = sc.translate("raw", data=b'[{"id":"x","timestamp":1709626200000000001 }]')
    check(out == ['{"id":"x","timestamp":1709626200000000001 }'], f"raw bytes: {out}")
    # errors name the position; the rest still converts; exit 1
    out, err, rc = sc.translate("stix", data=f'{g}\n{{"id":\n{g}\n[1]\n'.encode(), check=False)
    check(rc == 1 and len(out) == 2 and "line 2" in err and "line 4" in err, f"ndjson errors: {rc} {err}")
    out, err, rc = sc.translate("cef", data=f'[{g}, 7, {{"no":"id"}}, {g}]'.encode(), check=False)
    check(rc == 1 and len(out) == 2 and "index 1" in err and "index 2" in err, f"array errors: {rc} {err}")
    out, err, rc = sc.translate("leef", data=f'{{"data":[{g}, {{"id":'.encode(), check=False)
    check(rc == 1 and len(out) == 1 and "data 1" in err, f"truncated page: {rc} {out} {err}")
    # file argument
    with tempfile.TemporaryDirectory(prefix="sf-translate-") as d:  # removed on any exit
        path = os.path.join(d, "in.json")
        with open(path, "w") as f:
            f.write(f"[{g}]")
        out, _, rc = sc.translate("stix21", path, check=False)
    check(rc == 0 and len(out) == 1 and json.loads(out[0])["type"] == "bundle", "file input")
    # usage errors: exit 2
    for args in (["--format", "nope"], [], ["--format"], ["--bogus"], ["--format", "raw", "a", "b"],
                 ["--format", "raw", "/nonexistent/file"]):
        import subprocess
        p = subprocess.run([sc.BIN, "translate"] + args, capture_output=True, input=b"")
        check(p.returncode == 2 and p.stderr, f"{args}: exit {p.returncode}")


if __name__ == "__main__":
    main()
    for f in failures:
        print("FAIL:", f)
    print(f"{'FAILED' if failures else 'OK'}: {len(failures)} failures")
    sys.exit(1 if failures else 0)
