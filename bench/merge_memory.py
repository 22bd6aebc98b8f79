"""Peak memory of the two merge methods on the same base + adapter, each in its own process.

    python bench/merge_memory.py [--base models/base] [--adapter models/lora] [--scale 1.0]

Runs ``python -m stages.merge --method peft`` (baseline: peft merge_and_unload) and
``--method streaming`` as child processes with verification off, takes each child's peak RSS from
the kernel (os.wait4 → ru_maxrss, so imports and everything else the process did are included),
then compares the two outputs tensor by tensor. Without --adapter and with no models/lora, a random
adapter (stages.model.random_adapter) is written first — said so in the output.

Targets (issue 5): streaming peak ≤ 0.4 × peft peak on a base with ≥ 2 shards; max |Δ| ≤ 1e-6 (fp32).
Exit status 1 when a target is missed."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RATIO_TARGET, DIFF_TARGET = 0.4, 1e-6


def run_child(method: str, base: Path, adapter: Path, out: Path, scale: float) -> dict:
    cmd = [sys.executable, "-m", "stages.merge", "--method", method, "--base", str(base), "--adapter", str(adapter),
           "--out", str(out), "--metrics", str(out.with_suffix(".json")), "--scale", str(scale),
           "--no-verify", "--no-progress"]
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{method} merge failed (exit {proc.returncode}): {' '.join(cmd)}")
    kib = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return {"method": method, "peak_rss_mb": kib / 1024, "seconds": time.time() - t0}


def tensor_files(model_dir: Path):
    from stages.model.safetensors_stream import model_shards, read_header

    out = {}
    for f in model_shards(model_dir)[0]:
        h = read_header(model_dir / f)
        out.update({name: h for name in h.tensors})
    return out


def compare(a_dir: Path, b_dir: Path, base_dir: Path) -> dict:
    """max |a − b| over all tensors (one tensor in memory at a time), and how far b moved from the base."""
    from tqdm import tqdm

    from stages.model.safetensors_stream import load_tensor

    a, b, base = tensor_files(a_dir), tensor_files(b_dir), tensor_files(base_dir)
    if set(a) != set(b):
        raise SystemExit(f"outputs hold different tensors: only peft {sorted(set(a) - set(b))[:5]}, "
                         f"only streaming {sorted(set(b) - set(a))[:5]}")
    worst, worst_name, moved, changed = 0.0, "", 0.0, 0
    for name in tqdm(sorted(a), desc="compare", unit="tensor"):
        ta, tb = load_tensor(a[name], name), load_tensor(b[name], name)
        if ta.dtype != tb.dtype or ta.shape != tb.shape:
            raise SystemExit(f"{name}: {ta.dtype}{list(ta.shape)} vs {tb.dtype}{list(tb.shape)}")
        if ta.is_floating_point():
            d = (ta.float() - tb.float()).abs().max().item() if ta.numel() else 0.0
            if d > worst or worst_name == "":
                worst, worst_name = d, name
            m = (tb.float() - load_tensor(base[name], name).float()).abs().max().item() if tb.numel() else 0.0
            moved = max(moved, m)
            changed += m > 0
        elif not bool((ta == tb).all()):
            worst, worst_name = float("inf"), name
    return {"max_abs_diff": worst, "worst_tensor": worst_name, "tensors": len(a), "changed_vs_base": changed,
            "max_abs_change_vs_base": moved}


def main(argv=None) -> int:
    from stages.model.safetensors_stream import model_shards

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, default=REPO / "models/base")
    ap.add_argument("--adapter", type=Path, help="default: models/lora if present, else a random adapter")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workdir", type=Path, help="keep outputs here (default: a temp dir, removed)")
    args = ap.parse_args(argv)

    shards = len(model_shards(args.base)[0])
    with tempfile.TemporaryDirectory(prefix="merge-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        adapter = args.adapter or (REPO / "models/lora" if (REPO / "models/lora/adapter_config.json").exists() else None)
        if adapter is None:
            from stages.model.random_adapter import write_random_adapter

            adapter = write_random_adapter(args.base, work / "lora-random", r=8, alpha=16, layers="all")
            print(f"NOTE: models/lora absent — using a RANDOM adapter (r=8, all layers, 7 projections) at {adapter}")
        print(f"base {args.base} ({shards} shard(s)), adapter {adapter}, scale {args.scale}")
        runs = [run_child(m, args.base, adapter, work / f"merged-{m}", args.scale) for m in ("peft", "streaming")]
        cmp = compare(work / "merged-peft", work / "merged-streaming", args.base)

    peft, stream = runs
    ratio = stream["peak_rss_mb"] / peft["peak_rss_mb"]
    print()
    print(f"{'method':<10} {'peak RSS (MB)':>14} {'seconds':>8}")
    for r in runs:
        print(f"{r['method']:<10} {r['peak_rss_mb']:>14.0f} {r['seconds']:>8.1f}")
    print(f"streaming / peft peak RSS: {ratio:.3f}  (target ≤ {RATIO_TARGET}; base has {shards} shards)")
    print(f"max |peft − streaming| over {cmp['tensors']} tensors: {cmp['max_abs_diff']:.3g} "
          f"(at {cmp['worst_tensor']}; target ≤ {DIFF_TARGET:g})")
    print(f"adapter effect: {cmp['changed_vs_base']} tensors changed, max |merged − base| "
          f"{cmp['max_abs_change_vs_base']:.3g}")
    ok = ratio <= RATIO_TARGET and cmp["max_abs_diff"] <= DIFF_TARGET and shards >= 2 and cmp["changed_vs_base"] > 0
    print("TARGETS MET" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
