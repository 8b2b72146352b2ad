#!/usr/bin/env python3
"""Fails when `maturin develop` (which builds the Python extension's crate alone) would compile a
dependency with other features than `cargo test --workspace` does, which makes CI build most
dependencies twice. Compares `cargo tree` of the crate (normal and build dependencies) against
the workspace's (dev-dependencies too, as tests build them), for every package in the crate's
graph, and prints what differs: add the
missing features to the `feature-parity-*` dependencies of python/Cargo.toml."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"(\S+ v\S+)(?: \(.*?\))? \[(.*)\]$")


def features(*selection: str, edges: str) -> dict[str, set[str]]:
    out = subprocess.run(["cargo", "tree", *selection, "-e", edges, "--prefix", "none",
                          "-f", "{p} [{f}]"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        if m := LINE.match(line.strip()):
            found.setdefault(m.group(1), set()).update(f for f in m.group(2).split(",") if f)
    return found


def main() -> int:
    # maturin builds the library alone; `cargo test --workspace` builds with dev-dependencies.
    crate = features("-p", "mzforge-python", edges="normal,build")
    workspace = features("--workspace", edges="normal,build,dev")
    drift = {p: sorted(workspace[p] - f) for p, f in crate.items() if workspace.get(p, f) - f}
    for package, missing in sorted(drift.items()):
        print(f"feature-parity: {package}: the workspace also turns on {', '.join(missing)}", file=sys.stderr)
    if drift:
        print("feature-parity: add them to python/Cargo.toml's feature-parity-* dependencies", file=sys.stderr)
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
