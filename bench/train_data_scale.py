"""Training data at scale: peak memory and time to validate, subset and tokenise N synthetic examples
(default 100k) the way the train stage does (🤗 datasets: memory-mapped Arrow, ``map`` with
``num_proc``, fingerprint cache), against the previous way (records and encoded examples held as
Python lists), in the same run. Each way runs in a fresh subprocess, so its peak RSS is its own.

    flock /tmp/medqa-heavy.lock python bench/train_data_scale.py [--n 100000] [--tokenizer models/base]

Rows: ``lists`` (baseline: read_split → Python dicts → encode_example per record → lists of ints),
``datasets`` (read_split(keep_text=False) → load_split_dataset → encode_dataset, cold cache) and
``datasets-cached`` (the same again: the fingerprint finds the tokenised Arrow table). Prints seconds,
peak RSS of the process (and of its largest worker), and ratios to the baseline."""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SYMPTOMS = ["头痛", "发热", "咳嗽", "胃痛", "腹泻", "失眠", "胸闷", "皮疹", "关节痛", "乏力", "心慌", "耳鸣"]
ADVICE = ["多喝水，注意休息", "清淡饮食，规律作息", "避免劳累，保持心情舒畅", "及时到医院相应科室就诊",
          "按医嘱用药，不要自行加量或停药", "如症状加重或出现高热、呼吸困难，请立即拨打120"]
TIERS = ["basic", "intermediate", "advanced", "emergency", "prevention"]


def make_data(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            s = rng.sample(SYMPTOMS, 2)
            q = f"医生您好，我{rng.randint(18, 80)}岁，最近{s[0]}伴{s[1]}已经{rng.randint(1, 30)}天了，请问需要做什么检查？"
            a = "您好，" + "".join(f"{rng.choice(SYMPTOMS)}时建议{rng.choice(ADVICE)}。" for _ in range(rng.randint(4, 9)))
            a += "以上建议不能替代医生面诊，请以医生意见为准。"
            f.write(json.dumps({"id": f"s{i:06d}", "question": q, "answer": a, "category": "内科",
                                "difficulty": TIERS[i % 5], "source": "synthetic"}, ensure_ascii=False) + "\n")


def worker(mode: str, data: Path, tokenizer: Path, cache: Path, max_len: int) -> dict:
    from stages.model.modeling import load_tokenizer
    from stages.training.train_data import (encode_dataset, encode_example, load_split_dataset, read_split,
                                            subset_indices)

    system = "你是一家医院的智能客服助手，请用简体中文准确、清晰、礼貌地回答患者的问题。"
    tok = load_tokenizer(tokenizer)
    t0 = time.perf_counter()
    if mode == "lists":
        recs = read_split(data)
        encoded = [encode_example(tok, r["question"], r["answer"], system, max_len) for r in recs]
        n, tokens = len(encoded), sum(len(e.input_ids) for e in encoded)
    else:
        recs = read_split(data, keep_text=False)
        idx = subset_indices(recs, 0, 42)
        ds = load_split_dataset(data, idx, cache)
        ex, stats = encode_dataset(ds, tok, system, max_len, "drop", 0, fingerprint=f"bench-{data.stat().st_size}-{max_len}")
        n, tokens = len(ex), sum(ex.lengths)
    seconds = time.perf_counter() - t0
    return {"mode": mode, "n": n, "tokens": tokens, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--tokenizer", type=Path, default=REPO / "models/base")
    ap.add_argument("--max-len", type=int, default=320)
    ap.add_argument("--worker", nargs=3, metavar=("MODE", "DATA", "CACHE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        mode, data, cache = args.worker
        print(json.dumps(worker(mode, Path(data), args.tokenizer, Path(cache), args.max_len)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        data, cache = Path(tmp) / "train.jsonl", Path(tmp) / "cache"
        t0 = time.perf_counter()
        make_data(data, args.n)
        print(f"{args.n} synthetic examples, {data.stat().st_size / 2**20:.1f} MiB JSONL ({time.perf_counter() - t0:.1f}s)",
              flush=True)
        rows = []
        for mode in ("lists", "datasets", "datasets-cached"):
            out = subprocess.run([sys.executable, __file__, "--tokenizer", str(args.tokenizer), "--max-len",
                                  str(args.max_len), "--worker", mode.split("-")[0], str(data), str(cache)],
                                 capture_output=True, text=True, check=True)
            rows.append({**json.loads(out.stdout.strip().splitlines()[-1]), "mode": mode})
            print(f"  {mode}: {rows[-1]['seconds']:.1f}s, peak RSS {rows[-1]['peak_rss_mb']:.0f} MiB", flush=True)
    base = rows[0]
    print(f"\n| way | examples | tokens | seconds | peak RSS MiB (largest worker) | time vs lists | RSS vs lists |\n"
          f"|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['n']} | {r['tokens']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} "
              f"({r['peak_child_rss_mb']:.0f}) | {r['seconds'] / base['seconds']:.2f}x | "
              f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
