#!/usr/bin/python3
"""make bench: runs every bench/bench_*.py, prints a table, writes bench/results.json.

Each bench module defines `run(ctx) -> dict` returning named figures (numbers, or None
where a figure cannot be measured here, e.g. GPU figures without a GPU). Keys are the ones
the issues name. A module that fails records its keys as None and the error is printed;
the other modules still run.
"""
import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Context:
    def __init__(self, build: Path):
        self.root = ROOT
        self.build = build
        self.isoline = build / "bin" / "isoline"
        self.shared = (ROOT.parent / "shared" / "data").resolve()
        self.work = ROOT / "bench" / "work"
        self.work.mkdir(parents=True, exist_ok=True)

    def run(self, *args, **kw):
        """Runs a command, returns (seconds, CompletedProcess); raises on failure."""
        t0 = time.perf_counter()
        p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
        return dt, p

    def timed(self, fn, repeat=3):
        """Best wall time of fn() over `repeat` runs."""
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best


def machine():
    model = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", nargs="*", help="bench module names (e.g. core dose); the other modules' "
                    "figures already in bench/results.json are kept, each module with its own commit and date")
    args = ap.parse_args()
    ctx = Context((ROOT / args.build).resolve())
    results = {}
    res_path = ROOT / "bench" / "results.json"
    previous, modules = {}, {}
    if args.only and res_path.exists():
        try:
            previous = json.loads(res_path.read_text())
            modules = previous.pop("modules", {})
        except (OSError, ValueError):
            previous = {}
    for path in sorted((ROOT / "bench").glob("bench_*.py")):
        name = path.stem[len("bench_"):]
        if args.only and name not in args.only:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print(f"== bench {name}", flush=True)
        t0 = time.perf_counter()
        try:
            figures = mod.run(ctx)
        except Exception as e:  # one failing module must not hide the others
            print(f"   FAILED: {e}", file=sys.stderr)
            figures = {k: None for k in getattr(mod, "KEYS", [])}
        seconds = time.perf_counter() - t0
        print(f"   {seconds:.1f} s", flush=True)
        results.update(figures)
        modules[name] = {"commit": commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         "seconds": round(seconds, 1), "load_average_1min": round(os.getloadavg()[0], 2),
                         "keys": sorted(figures)}
    merged = {k: v for k, v in previous.items() if k not in ("machine", "commit")}
    merged.update(results)
    out = dict(sorted(merged.items()))
    out["machine"] = machine()
    out["commit"] = commit()
    out["modules"] = dict(sorted(modules.items()))
    tmp = res_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, res_path)
    width = max([len(k) for k in results] + [10])
    print(f"\n{'figure'.ljust(width)}  value")
    print(f"{'-' * width}  ----------")
    for k, v in sorted(results.items()):
        val = "null" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        print(f"{k.ljust(width)}  {val}")
    # GPU keys this run could not measure: what a GPU host measured (bench/gpu_session.sh)
    rec_path = ROOT / "bench" / "gpu_results" / "recorded.json"
    if rec_path.exists():
        rec = json.loads(rec_path.read_text())["figures"]
        shown = [k for k in sorted(results) if results[k] is None and k in rec]
        if shown:
            print("\nnull here, recorded on a GPU host (bench/gpu_results/recorded.json):")
            for k in shown:
                r = rec[k]
                print(f"{k.ljust(width)}  {r['value']:.4g}  {r['device']}, {r['date']}")
    print(f"\nmachine: {out['machine']}, commit {out['commit']}")
    print(f"wrote {ROOT / 'bench' / 'results.json'}")


if __name__ == "__main__":
    main()
