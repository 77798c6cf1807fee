"""The speed suite: nstkit's compiled step vs the seed's eager loop, over sizes, presets, precisions and XLA.

    python benchmarks/suite.py [--sizes 256 512 1024] [--presets robust vanilla]
                               [--precisions float32 bfloat16] [--jit-sizes 256 512]
                               [--steps N] [--eager-steps N] [--repeat R] [--json out.json] [--quick]

Every configuration runs in a fresh subprocess, so its peak RSS
(`nstkit.measure.memory.measured_peak_rss_bytes`, VmHWM on Linux) is its own: the process warms up with
2 steps, times N steps and reports the median. Per (size, preset):

* nstkit at each precision with XLA off (the CPU default), and float32 with
  XLA on at ``--jit-sizes``;
* the seed's loop (`seed_loop.py`: eager, unfolded float32, the same layers,
  robust's 15-entry list with its repeats) and the ratio seed ÷ nstkit;
* the step's FLOPs (`flops.py`: TF's registry over the ops that run, plus the
  Gram products) and achieved GFLOP/s = FLOPs ÷ median seconds per step.

Everything is compared within one run: timings on a shared machine drift
between runs, ratios much less. Two guards against other processes' load:
the 1-minute load average is recorded before each configuration, and each
step's process CPU seconds (all threads) are reported beside its wall time,
since CPU time counts the work, not the waiting. ``--repeat R`` runs the
whole list R times in rounds and keeps each configuration's fastest round
(all rounds are in the JSON). One round takes ~10-15 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

WARMUP = 2
CHILD_TIMEOUT_S = 1800


def default_steps(size: int, eager: bool) -> int:
    """Timed steps per configuration: enough for a stable median, few where a step takes seconds."""
    if eager:
        return 8 if size <= 256 else 5 if size <= 512 else 3
    return 20 if size <= 256 else 10 if size <= 512 else 5


def configurations(args) -> list[dict]:
    configs = []
    for size in args.sizes:
        for preset in args.presets:
            if not args.no_eager:
                configs.append({"kind": "seed_loop", "size": size, "preset": preset,
                                "steps": args.eager_steps or default_steps(size, eager=True)})
            steps = args.steps or default_steps(size, eager=False)
            for precision in args.precisions:
                configs.append({"kind": "nstkit", "size": size, "preset": preset, "precision": precision,
                                "jit_compile": False, "steps": steps})
            if size in args.jit_sizes:
                configs.append({"kind": "nstkit", "size": size, "preset": preset, "precision": "float32",
                                "jit_compile": True, "steps": steps})
    return configs


def run_child(config: dict) -> dict:
    """One configuration in a fresh process; returns its JSON result (or an ``error``)."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], capture_output=True,
                              text=True, cwd=ROOT, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {**config, "error": f"timed out after {CHILD_TIMEOUT_S} s", "load_1min": load}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {**config, "error": (done.stderr.strip().splitlines() or ["no output"])[-1], "load_1min": load}
    return {**config, **json.loads(lines[-1]), "load_1min": load, "process_seconds": time.perf_counter() - started}


def child(config: dict) -> None:
    from measure import nstkit_run, seed_loop_run

    if config["kind"] == "seed_loop":
        row = seed_loop_run(config["size"], config["preset"], config["steps"], WARMUP)
    else:
        row = nstkit_run(config["size"], config["preset"], config["precision"], config["jit_compile"],
                         config["steps"], WARMUP)
    print(json.dumps(row))


# --------------------------------------------------------------------------- tables


def _key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ("kind", "size", "preset", "precision", "jit_compile"))


def best_of_rounds(rounds: list[dict]) -> dict:
    """The round with the lowest median (the least disturbed by other processes), with every round's values."""
    done = [r for r in rounds if "error" not in r]
    if not done:
        return rounds[-1]
    best = min(done, key=lambda r: r["seconds_per_step"])
    return {**best, "rounds": len(rounds),
            "seconds_per_step_rounds": [r.get("seconds_per_step") for r in rounds],
            "cpu_seconds_per_step_rounds": [r.get("cpu_seconds_per_step") for r in rounds],
            "load_1min_rounds": [r["load_1min"] for r in rounds],
            "cpu_seconds_per_step": min(r["cpu_seconds_per_step"] for r in done)}


def _seed_for(rows: list[dict], row: dict) -> dict | None:
    return next((r for r in rows if r["kind"] == "seed_loop" and r["size"] == row["size"]
                 and r["preset"] == row["preset"] and "error" not in r), None)


def speed_table(rows: list[dict]) -> str:
    lines = ["| size | preset | precision | XLA | s/step | steps/s | CPU s/step | peak RSS MiB | seed loop s/step | "
             "seed ÷ nstkit | seed ÷ nstkit, CPU | GFLOP/step | GFLOP/s | % of CPU peak | load |",
             "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if row["kind"] != "nstkit":
            continue
        head = f"| {row['size']} | {row['preset']} | {row['precision']} | {'on' if row['jit_compile'] else 'off'} |"
        if "error" in row:
            lines.append(f"{head} failed: {row['error'][:80]} |||||||||||")
            continue
        seed = _seed_for(rows, row)
        seed_cells = "– | – | –"
        if seed:
            wall_ratio = seed["seconds_per_step"] / row["seconds_per_step"]
            cpu_ratio = seed["cpu_seconds_per_step"] / row["cpu_seconds_per_step"]
            seed_cells = f"{seed['seconds_per_step']:.3f} | {wall_ratio:.1f}× | {cpu_ratio:.1f}×"
        lines.append(f"{head} {row['seconds_per_step']:.3f} | {row['steps_per_second']:.2f} | "
                     f"{row['cpu_seconds_per_step']:.3f} | {row['peak_rss_bytes'] / 2**20:,.0f} | {seed_cells} | "
                     f"{row['flops'] / 1e9:.1f} | {row['gflops_per_second']:.0f} | {_share(row)} | {_load(row)} |")
    bases = sorted({f"{row['precision']}: {row['peak_basis']}" for row in rows if row.get("peak_basis")})
    return "\n".join(lines) + ("\n\nCPU peak (GPU rows: not a CPU figure) = " + "; ".join(bases) if bases else "")


def _share(row: dict) -> str:
    """GFLOP/s as a share of the CPU's peak (cores x clock x FLOP/cycle of its ISA); a GPU row has none."""
    if not row.get("share_of_peak") or "GPU" in str(row.get("device", "")):
        return "–"
    return f"{row['share_of_peak']:.0%} of {row['peak_gflops']:.0f}"


def seed_table(rows: list[dict]) -> str:
    lines = ["| size | preset | seed loop s/step | steps/s | CPU s/step | peak RSS MiB | load |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        if row["kind"] == "seed_loop":
            if "error" in row:
                lines.append(f"| {row['size']} | {row['preset']} | failed: {row['error'][:80]} |||")
            else:
                lines.append(f"| {row['size']} | {row['preset']} | {row['seconds_per_step']:.3f} | "
                             f"{row['steps_per_second']:.2f} | {row['cpu_seconds_per_step']:.3f} | "
                             f"{row['peak_rss_bytes'] / 2**20:,.0f} | {_load(row)} |")
    return "\n".join(lines)


def _load(row: dict) -> str:
    """The 1-minute load average before this configuration (each round's, when repeated)."""
    return " / ".join(f"{x:.1f}" for x in row.get("load_1min_rounds", [row["load_1min"]]))


def flops_table(rows: list[dict]) -> str:
    """One row per (size, preset): the float32, XLA-off step's FLOPs, and what the counters see."""
    lines = ["| size | preset | fwd conv, analytic | Conv2D (TF) | Conv2DBackpropInput (TF) | Gram products (ours) | "
             "rest (TF) | step total | TF profiler raw total | of which dead |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    seen = set()
    for row in rows:
        key = (row["size"], row["preset"])
        if row["kind"] != "nstkit" or "error" in row or key in seen:
            continue
        seen.add(key)
        by_op = row["by_op"]
        main = {k: by_op.get(k, 0) for k in ("Conv2D", "Conv2DBackpropInput")}
        main["Gram"] = sum(by_op.get(k, 0) for k in ("BatchMatMulV2", "BatchMatMulV3", "Einsum"))
        rest = row["flops"] - sum(main.values())
        cells = [row["forward_conv_flops_analytic"], *main.values(), rest, row["flops"], row["tf_profiler_total"],
                 row["dead_flops"]]
        lines.append(f"| {row['size']} | {row['preset']} | " + " | ".join(f"{c / 1e9:.2f}" for c in cells) + " |")
    return "\n".join(lines) + "\n\n(GFLOP per step)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--presets", nargs="+", default=["robust", "vanilla"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--jit-sizes", type=int, nargs="*", default=[256, 512],
                        help="sizes at which float32 is also run with XLA on")
    parser.add_argument("--steps", type=int, help="timed nstkit steps (default: 20/10/5 by size)")
    parser.add_argument("--eager-steps", type=int, help="timed seed-loop steps (default: 8/5/3 by size)")
    parser.add_argument("--no-eager", action="store_true", help="skip the seed's eager loop")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every configuration this many times, in rounds; report the fastest round")
    parser.add_argument("--json", type=Path, help="also write every row (and the machine) here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 and 96 px, 3 steps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.quick:
        args.sizes, args.jit_sizes = [64, 96], [64]
        args.steps, args.eager_steps = args.steps or 3, args.eager_steps or 2

    from measure import machine

    info = machine()
    configs = configurations(args)
    print(f"# {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, GPUs: {info['gpus'] or 'none'}, "
          f"TF {info['tensorflow']}, Keras {info['keras']}; load average {info['loadavg']}; "
          f"{len(configs)} configurations", flush=True)
    rounds: dict[tuple, list[dict]] = {}
    started = time.perf_counter()
    total = len(configs) * args.repeat
    for number, config in enumerate(configs * args.repeat, 1):  # rounds: every config once, then again
        row = run_child(config)
        rounds.setdefault(_key(row), []).append(row)
        label = " ".join(str(config[k]) for k in ("size", "preset", "precision", "jit_compile") if k in config)
        outcome = row.get("error") or f"{row['seconds_per_step']:.3f} s/step, {row['cpu_seconds_per_step']:.3f} CPU s"
        print(f"[{number}/{total}] {config['kind']} {label}: {outcome} "
              f"({time.perf_counter() - started:.0f} s, load {row['load_1min']:.2f})", file=sys.stderr, flush=True)
    rows = [best_of_rounds(rounds[_key(config)]) for config in configs]
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    info["suite_seconds"] = round(time.perf_counter() - started)
    print("\n" + speed_table(rows) + "\n\n" + seed_table(rows) + "\n\n" + flops_table(rows))
    print(f"\n# load average at the end {info['loadavg_end']}; suite took {info['suite_seconds']} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1) + "\n")
    if any("error" in row for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
