"""Run magseg's benchmarks and print each as a ratio to bare primitives or a baseline timed in the same run.

Usage: `make bench` or `.venv/bin/python benchmarks/run.py [--only codec,refine,region,serve,layer,scale,engine] [--quick] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECTIONS = {
    "codec": "benchmarks.codec_bench",
    "refine": "benchmarks.refine_bench",
    "region": "benchmarks.region_bench",
    "serve": "benchmarks.serve_bench",
    "layer": "benchmarks.serve_bench:run_layer",  # module:function when a module holds two sections
    "scale": "benchmarks.scale_bench",
    "engine": "benchmarks.engine_bench",
}


def _table(rows: list[dict[str, object]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    lines += ["  ".join(str(r.get(k, "")).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    results: dict[str, list[dict[str, object]]] = {}
    for name in args.only.split(","):
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")
        print(f"== {name}", flush=True)
        module, _, function = SECTIONS[name].partition(":")
        rows = getattr(importlib.import_module(module), function or "run")(quick=args.quick)
        results[name] = rows
        print(_table(rows), flush=True)
    if args.json:
        meta = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": __import__("os").cpu_count(),
        }
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
