"""GPU path in one go (< 10 minutes): the test suite's device-sensitive tests on the device, then
gridworld_varibad and cheetah_dir_varibad training timed on it (and on the CPU for reference),
printed as one table.

    python benchmarks/gpu_check.py [--device cuda] [--budget 540] [--frames N] [--no-cpu-reference]
    python benchmarks/gpu_check.py --device cpu --quick      # CPU-only check of the script itself

Exits 2 with a message when --device cuda is asked for and torch sees no CUDA device.

Device-sensitive tests (found, not listed by hand, so new ones are picked up):
  group "device": every test function in tests/ whose code (decorators included; not comments or
      prose strings) names "cuda" or "device" -- the explicit GPU tests
      (``skipif(not torch.cuda.is_available())``) and the device bookkeeping tests (--quick: only
      the "cuda" ones);
  group "trainer": tests/test_training.py and tests/test_smoke.py -- they build trainers at the
      schema default ``--device auto``, which is the GPU when one is visible, so on a GPU box
      they train every env-type / method there. (tests/test_golden.py is left out: its values were
      recorded on the CPU and are not expected to be bit-identical on a GPU; add it with --tests.)
The tests see only the chosen device: CUDA_VISIBLE_DEVICES is set to its index ("" for cpu).

Timing: ``benchmarks/bench_training.py``'s ``time_training`` with ``device`` overridden, in a fresh
subprocess per run (``bench_throughput.run_child``): frames/s, peak RSS, peak CUDA memory. Row
"--num_seeds 16": 16 gridworld seeds in one process (frames/s of all seeds together; compare with the
one-seed row). In a tree without the option it prints "not built".
Every item has its own timeout, cut to what is left of --budget seconds.
"""
from __future__ import annotations

import argparse
import ast
import glob
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_throughput import run_child  # noqa: E402

EXCLUDE = {"test_bench_throughput.py"}  # this script's own tests (one of them runs this script)
TRAINER_TEST_FILES = ["tests/test_training.py", "tests/test_smoke.py"]
TIMED = {"gridworld_varibad": 48_000, "cheetah_dir_varibad": 25_600}  # frames on the device
QUICK_EXTRA = {"precollect_len": 0, "num_processes": 2, "policy_num_steps": 20}  # --quick: seconds, not minutes
QUICK_FRAMES = 80
RESERVE_S = 5.0


def _mentions(node: ast.AST, words: tuple[str, ...]) -> bool:
    """Code (not comments, not prose in strings) names one of ``words``: a name/attribute/keyword
    argument containing it, or a string constant that is such a word or option (e.g. "cuda", "--device")."""
    for n in ast.walk(node):
        names = [n.id] if isinstance(n, ast.Name) else [n.attr] if isinstance(n, ast.Attribute) else \
            [n.arg] if isinstance(n, ast.keyword) and n.arg else []
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and re.fullmatch(r"(--)?[\w.:]+", n.value):
            names.append(n.value)
        if any(w in s.lower() for s in names for w in words):
            return True
    return False


def device_sensitive_tests(tests_dir: str = os.path.join(ROOT, "tests"), words=("cuda", "device")) -> list[str]:
    """Node ids (relative to the repo root) of the test functions whose code mentions cuda/device."""
    ids = []
    for path in sorted(glob.glob(os.path.join(tests_dir, "test_*.py"))):
        rel = os.path.relpath(path, ROOT)
        if os.path.basename(path) in EXCLUDE:
            continue
        for node in ast.parse(open(path).read()).body:
            funcs = [(node, "")] if isinstance(node, ast.FunctionDef) else \
                [(f, node.name + "::") for f in node.body if isinstance(f, ast.FunctionDef)] \
                if isinstance(node, ast.ClassDef) else []
            for f, prefix in funcs:
                if f.name.startswith("test") and _mentions(f, words):
                    ids.append(f"{rel}::{prefix}{f.name}")
    return ids


OUTCOME = r"^(\S+\.py::.*?) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b"  # pytest -v lines; ids may hold spaces


def count_outcomes(output: str) -> dict:
    """Counts of pytest -v/-rA outcome lines ("path::test[param] PASSED ...")."""
    counts = {}
    for m in re.finditer(OUTCOME, output, re.M):
        counts[m.group(2).lower()] = counts.get(m.group(2).lower(), 0) + 1
    return counts


def failed_ids(output: str) -> list[str]:
    return [m.group(1) for m in re.finditer(OUTCOME, output, re.M) if m.group(2) in ("FAILED", "ERROR")]


def run_tests(node_ids: list[str], visible: str, timeout: float) -> dict:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible}
    cmd = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p", "no:randomly", *node_ids]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        out, rc, timed_out = p.stdout + p.stderr, p.returncode, False
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc, timed_out = None, True
    counts = count_outcomes(out)
    return {"counts": counts, "rc": rc, "timed_out": timed_out, "seconds": time.perf_counter() - t0,
            "failed": failed_ids(out), "tail": out.strip().splitlines()[-1:] if out.strip() else []}


def _tests_cell(r: dict) -> str:
    c = r["counts"]
    parts = [f"{c.get(k, 0)} {k}" for k in ("passed", "failed", "error", "skipped") if c.get(k) or k in ("passed", "failed")]
    s = ", ".join(parts)
    if r["timed_out"]:
        s += " (TIMED OUT, counts so far)"
    elif r["rc"] not in (0, 5) and not c.get("failed") and not c.get("error"):
        s += f" (pytest exit {r['rc']}: {' '.join(r['tail'])[:120]})"
    if r["failed"]:
        s += "; failed: " + ", ".join(r["failed"][:4]) + (" ..." if len(r["failed"]) > 4 else "")
    return s


def _timing_cell(r: dict) -> str:
    if "fps" in r:
        s = f"{r['fps']:,.0f} frames/s ({r['frames']:,} frames, {r['seconds']:.1f} s), peak RSS {r['rss_mb']:,.0f} MB"
        if "cuda_peak_mb" in r:
            s += f", peak CUDA mem {r['cuda_peak_mb']:,.0f} MB"
        return s
    return f"n/a ({r['na']})" if "na" in r else f"ERROR: {r.get('error')}"


def has_option(name: str) -> bool:
    sys.path.insert(0, ROOT)
    from config.schema import OPTIONS

    return name in OPTIONS


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--budget", type=float, default=540.0, help="overall wall-clock limit in seconds (default 540)")
    ap.add_argument("--frames", type=int, default=None, help="frames per timed run (default: per env-type, %s)" % TIMED)
    ap.add_argument("--no-cpu-reference", action="store_true", help="do not also time the runs on the CPU")
    ap.add_argument("--quick", action="store_true",
                    help="tiny: only the 'device' test group, tiny timed configs, no CPU reference (checks the script)")
    ap.add_argument("--tests", nargs="*", default=None, help="pytest node ids/args to run instead of the found groups")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        ap.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    if args.budget <= 0 or (args.frames is not None and args.frames < 1):
        ap.error("--budget and --frames must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device} asked for, but torch {torch.__version__} sees no CUDA device "
              f"(torch.cuda.is_available() is False; CUDA build: {torch.version.cuda}). "
              "Run on a GPU machine, or use --device cpu --quick to check the script.", file=sys.stderr)
        return 2
    index = args.device.partition(":")[2] or "0"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[int(index)] \
        if cuda and os.environ.get("CUDA_VISIBLE_DEVICES") else (index if cuda else "")
    run_device = "cuda" if cuda else "cpu"  # after CUDA_VISIBLE_DEVICES narrows to one GPU, it is cuda:0
    deadline = time.perf_counter() + args.budget
    name = torch.cuda.get_device_name(int(index)) if cuda else "CPU"
    print(f"gpu_check: device {args.device} ({name}), torch {torch.__version__}, {os.cpu_count()} cores, "
          f"budget {args.budget:.0f} s{' (quick)' if args.quick else ''}", flush=True)

    def left(cap: float) -> float:
        return min(cap, deadline - time.perf_counter() - RESERVE_S)

    rows: list[tuple[str, str, str, str]] = []  # item, device, result, seconds
    ok = True

    def tests(label: str, ids: list[str], cap: float):
        nonlocal ok
        t = left(cap)
        if not ids:
            rows.append((label, args.device, "none found", "-"))
            return
        if t < 10:
            rows.append((label, args.device, f"skipped: budget spent ({len(ids)} selected)", "-"))
            return
        print(f"  running {label} ({len(ids)} selections, timeout {t:.0f} s) ...", flush=True)
        r = run_tests(ids, visible, t)
        ok &= not r["failed"] and not r["timed_out"] and r["rc"] in (0, 5)
        rows.append((label, args.device, _tests_cell(r), f"{r['seconds']:.0f}"))

    def timed(env_type: str, device: str, cap: float, extra: dict | None = None, what: str = "training"):
        nonlocal ok
        frames = QUICK_FRAMES if args.quick else (args.frames or TIMED.get(env_type, 48_000))
        t = left(cap)
        item = f"{env_type} {what}"
        if t < 10:
            rows.append((item, device, "skipped: budget spent", "-"))
            return
        print(f"  timing {item} on {device} ({frames:,} frames, timeout {t:.0f} s) ...", flush=True)
        dev_env = {"CUDA_VISIBLE_DEVICES": visible if device != "cpu" else ""}
        r = run_child(ROOT, env_type, frames, {"device": run_device if device != "cpu" else "cpu",
                                               **(QUICK_EXTRA if args.quick else {}), **(extra or {})},
                      threads=1, timeout=t, env=dev_env)
        ok &= "fps" in r
        rows.append((item, device, _timing_cell(r), f"{r.get('wall', 0):.0f}"))

    if args.tests is not None:
        tests("tests: --tests", args.tests, 400)
    else:
        if args.quick:
            tests("tests: cuda group (code mentions cuda)", device_sensitive_tests(words=("cuda",)), 60)
        else:
            tests("tests: device group (code mentions cuda/device)", device_sensitive_tests(), 120)
    for env_type in TIMED:
        timed(env_type, args.device, 90)
        if cuda and not args.quick and not args.no_cpu_reference:
            timed(env_type, "cpu", 60, what="training (CPU reference)")
    if has_option("num_seeds"):
        timed("gridworld_varibad", args.device, 90, {"num_seeds": 16}, what="--num_seeds 16")
    else:
        rows.append(("gridworld_varibad --num_seeds 16", args.device, "not built", "-"))
    if args.tests is None and not args.quick:
        tests("tests: trainer group (" + ", ".join(os.path.basename(f) for f in TRAINER_TEST_FILES) + ")",
              TRAINER_TEST_FILES, 10_000)

    w = [max(len(r[i]) for r in rows + [("item", "device", "result", "s")]) for i in range(4)]
    print()
    print(f"| {'item':<{w[0]}} | {'device':<{w[1]}} | {'result':<{w[2]}} | {'s':>{w[3]}} |")
    print(f"|{'-' * (w[0] + 2)}|{'-' * (w[1] + 2)}|{'-' * (w[2] + 2)}|{'-' * (w[3] + 2)}|")
    for r in rows:
        print(f"| {r[0]:<{w[0]}} | {r[1]:<{w[1]}} | {r[2]:<{w[2]}} | {r[3]:>{w[3]}} |")
    print(f"\ntotal {args.budget - (deadline - time.perf_counter()):.0f} s; "
          f"{'all passed' if ok else 'SOMETHING FAILED (see table)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
