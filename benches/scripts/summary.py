#!/usr/bin/env python3
"""Prints the mean time of every criterion benchmark under target/criterion."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rows = []
for estimates in sorted(root.glob("**/new/estimates.json")):
    bench = json.loads((estimates.parent / "benchmark.json").read_text())
    mean = json.loads(estimates.read_text())["mean"]["point_estimate"]
    rows.append((bench["full_id"], mean))
for name, ns in rows:
    unit, value = ("µs", ns / 1000) if ns >= 1000 else ("ns", ns)
    print(f"{name:<50} {value:>9.2f} {unit}")
