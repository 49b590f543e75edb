#!/usr/bin/python3
"""The daemon's module structure, checked from its #include lines (docs/design.md has the map).

A module is a .c file and its .h (daemon/FOLDER/NAME.{c,h} -> FOLDER/NAME). An edge A -> B
means A's .c or .h includes B's header.

- No include cycle between modules (Tarjan's strongly connected components).
- The configuration engine (config/cfg) is a leaf above core: it knows nothing of sinks,
  formats or the daemon's schema.
- core/ depends on nothing outside core/.
- No module includes a sink type's module (sinks/sink_<type>): what sinks share lives in
  shared modules (sinks/sink, sinks/http_sink, sinks/fdwriter) or below.
- Every header is included as "FOLDER/NAME.h" (the folder shows the dependency).
"""

import glob
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SF_SRC") or os.path.dirname(os.path.dirname(HERE))
DAEMON = os.path.join(SRC, "daemon")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules():
    """{module: set of modules it includes}, and the raw include strings per file."""
    graph, raw = {}, {}
    for path in sorted(glob.glob(os.path.join(DAEMON, "*", "*.[ch]"))):
        rel = os.path.relpath(path, DAEMON)
        mod = rel.rsplit(".", 1)[0]
        with open(path) as f:
            incs = INCLUDE.findall(f.read())
        raw[rel] = incs
        deps = graph.setdefault(mod, set())
        for inc in incs:
            if inc.endswith(".h") and "/" in inc:
                dep = inc[:-2]
                if dep != mod:
                    deps.add(dep)
    return graph, raw


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def strong(v):
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


class IncludeGraphTest(unittest.TestCase):
    def setUp(self):
        self.graph, self.raw = modules()
        self.assertGreater(len(self.graph), 20, "no daemon modules found under %s" % DAEMON)

    def test_no_cycles(self):
        self.assertEqual(cycles(self.graph), [], "include cycles between modules")

    def test_cycle_detector_finds_a_planted_cycle(self):
        g = {k: set(v) for k, v in self.graph.items()}
        g["core/util"].add("sinks/sink")  # util -> sink -> ... -> util
        self.assertTrue(cycles(g))

    def test_config_engine_is_a_leaf(self):
        bad = {d for d in self.graph["config/cfg"] if not d.startswith("core/")}
        self.assertEqual(bad, set(), "config/cfg must depend on core/ only")

    def test_core_depends_on_core_only(self):
        for mod, deps in self.graph.items():
            if mod.startswith("core/"):
                self.assertEqual({d for d in deps if not d.startswith("core/")}, set(), mod)

    def test_sinks_do_not_include_each_other(self):
        # a sink type is a module sinks/sink_<type>; what several sinks share lives in shared
        # modules (sinks/sink, sinks/http_sink, sinks/fdwriter, ...), never in another sink
        for mod, deps in self.graph.items():
            for d in deps:
                if d.startswith("sinks/sink_"):
                    self.fail("%s includes %s, another sink's module" % (mod, d))

    def test_headers_are_included_by_folder(self):
        local = {os.path.basename(r) for r in self.raw}
        for f, incs in self.raw.items():
            for inc in incs:
                if inc in local:
                    self.fail('%s: #include "%s" without its folder' % (f, inc))


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    from helpers import main
    main()
