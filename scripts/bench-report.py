#!/usr/bin/env python3
"""Prints criterion medians of the named groups, each candidate beside the
baselines measured in the same run (benchmarks whose name starts with
`baseline`), as ratios.

Usage: python3 scripts/bench-report.py GROUP [GROUP ...]
Reads target/criterion/GROUP/BENCH/new/estimates.json.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def fmt(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def medians(group: str) -> dict:
    out = {}
    gdir = ROOT / group
    for est in sorted(gdir.glob("*/new/estimates.json")):
        data = json.loads(est.read_text())
        out[est.parent.parent.name] = data["median"]["point_estimate"]
    return out


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    for group in sys.argv[1:]:
        m = medians(group)
        if not m:
            print(f"{group}: no results under {ROOT / group}")
            continue
        baselines = {k: v for k, v in m.items() if k.startswith("baseline")}
        print(f"## {group}")
        print("| benchmark | median | " + " | ".join(f"÷ {b}" for b in baselines) + " |")
        print("|---|---|" + "---|" * len(baselines))
        for name, ns in m.items():
            ratios = " | ".join(f"{ns / b:.2f}×" for b in baselines.values())
            print(f"| {name} | {fmt(ns)} | {ratios} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
