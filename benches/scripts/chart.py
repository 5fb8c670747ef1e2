#!/usr/bin/env python3
"""Draws benches/overhead.svg from the results `callgrind.sh` and `allocs.sh` wrote.

    python3 benches/scripts/chart.py [RESULTS_DIR] [OUT.svg] [BEFORE_DIR]

One panel per measure (instructions per request over bare axum, heap allocations per
request over bare axum), one group of bars per case, one bar per library. With
BEFORE_DIR (the results of an earlier commit, written by the same scripts), sessionkit's
earlier figures are drawn as a hollow bar beside the current ones. Plain SVG, no
dependencies, so any machine with Python can regenerate it.
"""

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/bench-results"
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "benches/overhead.svg"
BEFORE = Path(sys.argv[3]) if len(sys.argv) > 3 else None

CASES = ["untouched", "read", "read-write", "first"]
SERIES = [
    ("sessionkit-memory", "sessionkit (memory, signed id)", "#1b6ca8"),
    ("sessionkit-cookie", "sessionkit (sealed cookie)", "#5fa8d3"),
    ("tower-sessions-memory", "tower-sessions (memory, unsigned)", "#c97b2a"),
    ("tower-sessions-signed", "tower-sessions (memory, signed)", "#8c4a12"),
]
# sessionkit's earlier figures: a hollow bar.
DASHED = 'fill="none" stroke="#1b6ca8" stroke-dasharray="3,2"'
PANELS = [
    ("callgrind.tsv", "over_bare", "Instructions per request over bare axum (callgrind)"),
    ("allocs.tsv", "over_bare", "Heap allocations per request over bare axum (DHAT)"),
]


def load(directory, name, column):
    path = directory / name
    if not path.exists():
        return {}
    with path.open() as f:
        rows = csv.DictReader(f, delimiter="\t")
        return {
            (r["variant"], r["case"]): float(r[column])
            for r in rows
            if r.get(column) not in (None, "", "-")
        }


def panel(svg, top, title, values, before):
    width, left, bar, gap = 900, 60, 14, 34
    height = 250
    peak = max([v for v in values.values()] + [v for v in before.values()] + [1])
    scale = (height - 60) / peak
    svg.append(f'<text x="{left}" y="{top + 18}" font-size="15" font-weight="bold">{title}</text>')
    base = top + height - 20
    svg.append(f'<line x1="{left}" y1="{base}" x2="{width - 20}" y2="{base}" stroke="#444"/>')
    group = len(SERIES) * bar + (bar if before else 0) + gap
    for ci, case in enumerate(CASES):
        x0 = left + 20 + ci * (group + 50)
        svg.append(
            f'<text x="{x0 + (group - gap) / 2}" y="{base + 16}" font-size="12" text-anchor="middle">{case}</text>'
        )
        bars = []
        if before:
            bars.append((before.get(("sessionkit-memory", case)), "sessionkit before", DASHED))
        bars += [(values.get((key, case)), label, f'fill="{colour}"') for key, label, colour in SERIES]
        for i, (v, label, style) in enumerate(bars):
            if v is None:
                continue
            x = x0 + i * bar
            h = max(v, 0) * scale
            svg.append(
                f'<rect x="{x}" y="{base - h:.1f}" width="{bar - 2}" height="{h:.1f}" {style}>'
                f"<title>{label}: {v:g}</title></rect>"
            )
            svg.append(
                f'<text x="{x + bar / 2 - 1}" y="{base - h - 3:.1f}" font-size="8" text-anchor="middle">{v:g}</text>'
            )
    return top + height + 20


def main():
    svg_body = []
    top = 10
    for name, column, title in PANELS:
        values = load(RESULTS, name, column)
        before = load(BEFORE, name, column) if BEFORE else {}
        if values:
            top = panel(svg_body, top, title, values, before)
    legend = SERIES if not BEFORE else [("before", "sessionkit before this change (dashed)", "none")] + SERIES
    for i, (_, label, colour) in enumerate(legend):
        y = top + i * 18
        stroke = ' stroke="#1b6ca8" stroke-dasharray="3,2"' if colour == "none" else ""
        svg_body.append(f'<rect x="60" y="{y}" width="12" height="12" fill="{colour}"{stroke}/>')
        svg_body.append(f'<text x="78" y="{y + 10}" font-size="12">{label}</text>')
    total = top + len(legend) * 18 + 10
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="{total}" '
        f'font-family="sans-serif" viewBox="0 0 900 {total}">',
        '<rect width="100%" height="100%" fill="white"/>',
        *svg_body,
        "</svg>",
    ]
    OUT.write_text("\n".join(svg) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
