#!/usr/bin/env python3
"""Prints the middleware comparison table from criterion's results:
mean ns per request per (case, variant) and the overhead over bare axum."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
variants = [
    "bare",
    "sessionkit-memory",
    "sessionkit-cookie",
    "tower-sessions-memory",
    "tower-sessions-signed",
    "bare-boxed",
    "sessionkit-memory-around",
    "tower-sessions-signed-around",
]
# The "around" variants (the layer wrapping the whole router) go through a boxed
# service: their floor is bare-boxed.
floor = {v: ("bare-boxed" if v.endswith("around") else "bare") for v in variants}
cases = ["untouched", "read", "read-write", "first"]
print(f"{'case':<11} {'variant':<22} {'ns/req':>9} {'over bare':>10} {'ratio to tower-sessions overhead':>34}")
for case in cases:
    means = {}
    for variant in variants:
        path = root / f"middleware_{case}" / variant / "new" / "estimates.json"
        if path.exists():
            means[variant] = json.loads(path.read_text())["mean"]["point_estimate"]
    ts = means.get("tower-sessions-memory")
    for variant in variants:
        if variant not in means:
            continue
        bare = means.get(floor[variant])
        over = "" if bare is None or variant.startswith("bare") else f"{means[variant] - bare:.0f}"
        ratio = ""
        if bare is not None and ts is not None and variant.startswith("sessionkit") and ts - bare > 0:
            ratio = f"{(means[variant] - bare) / (ts - bare):.2f}"
        print(f"{case:<11} {variant:<22} {means[variant]:>9.0f} {over:>10} {ratio:>34}")
