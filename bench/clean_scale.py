"""Clean stage at corpus scale: wall time, records/s and peak RSS for 10k / 100k / 1M rows, on 1 and N
workers, in one run.

    flock /tmp/medqa-heavy.lock python bench/clean_scale.py [--sizes 10000 100000 1000000]
        [--workers 1 2] [--dup-frac 0.2] [--tmp /tmp]

Rows are synthetic but realistic, built from real data (../shared/data, stages/data/noise.py):
distinct rows splice three real QA pairs; ``--dup-frac`` of rows are noisy copies of a recent row
("，谢谢"+number suffixes, ~10-character answer insertions, punctuation, full width, traditional).
Each run is ``python -m stages.clean`` in a child process with params.yaml's clean section; peak RSS is
the largest sum of RSS over the whole process tree (main + record workers + datatrove tasks),
sampled every 0.2 s; shared pages are counted once per process, so it is an upper bound.
Done means (issue 17): the largest size on 2 workers peaks ≤ 1.5 GB and seconds/row stays flat
(time linear in rows); printed as ratios to the smallest size measured in the same run.
Exit status 1 when the RSS bound is missed."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
RSS_LIMIT = 1.5e9


def make_corpus(path: Path, n: int, dup_frac: float) -> None:
    from stages.data.noise import load_real_pairs, synthetic_rows

    pairs = load_real_pairs([SHARED / "cmd_internal_medicine.gb18030.csv", SHARED / "medicalgpt_sft_1k.sharegpt.jsonl"])
    with path.open("w", encoding="utf-8") as f:
        for q, a, c in synthetic_rows(pairs, n, dup_frac):
            f.write(json.dumps({"question": q, "answer": a, "category": c}, ensure_ascii=False) + "\n")


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_clean(src: Path, workers: int, tmp: Path) -> dict:
    out = tmp / f"out_{workers}"
    cmd = [sys.executable, "-m", "stages.clean", "--source", str(src), "--out", str(out),
           "--metrics", str(tmp / "m.json"), "--workers", str(workers)]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(tmp / "log.txt", "w"),
                             env={**os.environ, "TMPDIR": str(tmp)})
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if child.returncode:
        raise SystemExit(f"clean failed ({child.returncode}); see {tmp / 'log.txt'}:\n"
                         + (tmp / "log.txt").read_text()[-2000:])
    m = json.loads((tmp / "m.json").read_text())
    return {"wall_s": round(wall, 1), "rec_per_s": round(m["read"] / wall), "peak_rss_mb": round(peak / 1e6),
            "read": m["read"], "kept": m["kept"], "rejected_by_reason": m["rejected_by_reason"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dup-frac", type=float, default=0.2)
    ap.add_argument("--tmp", default=None, help="folder for the corpus and work files (default: system temp)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as t:
        tmp = Path(t)
        for n in args.sizes:
            src = tmp / f"corpus_{n}.jsonl"
            make_corpus(src, n, args.dup_frac)
            for w in args.workers:
                r = {"rows": n, "workers": w, **run_clean(src, w, tmp)}
                results.append(r)
                print(json.dumps(r, ensure_ascii=False), flush=True)
            src.unlink()
    base = {w: next(r for r in results if r["workers"] == w) for w in args.workers}
    print(f"\n{'rows':>9} {'workers':>7} {'wall s':>8} {'rec/s':>7} {'peak MB':>8} {'s/row ÷ smallest':>17} {'speedup vs 1w':>14}")
    for r in results:
        per_row = r["wall_s"] / r["rows"] / (base[r["workers"]]["wall_s"] / base[r["workers"]]["rows"])
        one = next((x for x in results if x["rows"] == r["rows"] and x["workers"] == 1), None)
        speed = f"{one['wall_s'] / r['wall_s']:.2f}x" if one else "-"
        print(f"{r['rows']:>9} {r['workers']:>7} {r['wall_s']:>8} {r['rec_per_s']:>7} {r['peak_rss_mb']:>8} "
              f"{per_row:>17.2f} {speed:>14}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    worst = max(r["peak_rss_mb"] for r in results)
    print(f"\npeak RSS max {worst} MB (bound {RSS_LIMIT / 1e6:.0f} MB): {'OK' if worst * 1e6 <= RSS_LIMIT else 'MISSED'}")
    return 0 if worst * 1e6 <= RSS_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
