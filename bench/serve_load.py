"""Serving load benchmark on 127.0.0.1: batching on vs off, and cache-hit latency.

Starts ``python -m serve`` twice as subprocesses (serve/launcher.py) with the same model:
  A. batching off  (--max-batch-size 1)
  B. batching on   (--max-batch-size from params serve.max_batch_size, or --batch-size)
and drives each with C concurrent clients × N requests to POST /predict (every question distinct,
so no cache hits), in ``--rounds`` alternating rounds (A, B, A, B, ...) while the idle server is
frozen with SIGSTOP: on a shared machine whose speed drifts, both see the same conditions.
Prints req/s, p50/p95 latency, errors and the batch sizes the worker actually ran (from its log)
for both, the ratio B/A (target ≥ 3×), then on server B asks one question repeatedly and reports
the cache-hit p50 (target ≤ 5 ms).

    python bench/serve_load.py                         # models/merged, else models/base (stand-in)
    python bench/serve_load.py --model /tmp/tiny --requests 4   # any HF model dir, e.g. the tiny test model

Real-model runs on a shared machine: wrap in ``flock /tmp/medqa-heavy.lock``."""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from serve.launcher import ServerProcess  # noqa: E402
from stages.common.config import load_params  # noqa: E402
from stages.model.quantize import resolve_serving_precision  # noqa: E402
from stages.safety.precheck import precheck  # noqa: E402
from stages.safety.triage import load_triager  # noqa: E402

KEY = "bench-key"
BASE_QUESTIONS = [
    "高血压患者平时饮食需要注意什么？", "感冒发烧可以洗澡吗？", "体检前一天晚上可以吃东西吗？",
    "糖尿病人能吃水果吗？", "孩子反复咳嗽一周了该挂什么科？", "胃疼一般是什么原因引起的？",
    "做胃镜之前需要准备什么？", "医保卡可以给家人用吗？", "长期失眠应该怎么调理？", "缺铁性贫血吃什么好？",
    "过敏性鼻炎怎么预防？", "颈椎病平时要注意什么？", "乙肝疫苗需要打几针？", "血脂高需要吃药吗？",
    "拔牙后多久可以吃饭？", "孕早期有哪些注意事项？",
]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def load_phase(url: str, questions: list[list[str]]) -> dict:
    """One thread per client; each sends its questions one after another."""
    results, wall = _drive(url, questions)
    return _summary(results, wall)


def _drive(url: str, questions: list[list[str]]) -> tuple[list[dict], float]:
    def client(qs):
        out = []
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {KEY}"
            for q in qs:
                t0 = time.perf_counter()
                try:
                    r = s.post(url + "/predict", json={"question": q}, timeout=1800)
                    ok = r.status_code == 200
                    cached = ok and r.json().get("cached") is True
                    status = r.status_code
                except requests.RequestException as err:
                    ok, cached, status = False, False, type(err).__name__
                out.append({"latency_s": time.perf_counter() - t0, "ok": ok, "cached": cached, "status": status})
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(questions)) as pool:
        results = [r for rs in pool.map(client, questions) for r in rs]
    return results, time.perf_counter() - t0


def _summary(results: list[dict], wall: float) -> dict:
    lat = [r["latency_s"] for r in results if r["ok"]]
    return {"requests": len(results), "wall_s": round(wall, 2), "req_per_s": round(len(results) / wall, 4),
            "ok_req_per_s": round(len(lat) / wall, 4),
            "p50_s": round(percentile(lat, 0.5), 3), "p95_s": round(percentile(lat, 0.95), 3),
            "errors": sum(not r["ok"] for r in results),
            "error_statuses": sorted({str(r["status"]) for r in results if not r["ok"]}),
            "cache_hits": sum(r["cached"] for r in results), "results": results}


def combine(rounds: list[dict]) -> dict:
    """One summary over all rounds of a configuration (wall = sum of the rounds' walls)."""
    out = _summary([r for rd in rounds for r in rd["results"]], sum(rd["wall_s"] for rd in rounds))
    logs = [rd["worker"] for rd in rounds if rd["worker"].get("batches")]
    sizes: dict[str, int] = {}
    for w in logs:
        for k, v in w["batch_sizes"].items():
            sizes[k] = sizes.get(k, 0) + v
    n = sum(sizes.values())
    out["worker"] = {"batches": n, "batch_sizes": sizes,
                     "mean_batch_size": round(sum(int(k) * v for k, v in sizes.items()) / n, 2) if n else None,
                     **{k: round(sum(w[k] for w in logs), 1) for k in
                        ("model_seconds", "prompt_tokens", "prefix_cached_tokens", "new_tokens")}}
    out["rounds"] = [{k: v for k, v in rd.items() if k != "results"} for rd in rounds]
    del out["results"]
    return out


BATCH_LINE = re.compile(r"batch of (\d+): (\d+) prompt tokens \((\d+) from the shared prefix cache\), "
                        r"(\d+) new tokens \(longest (\d+)\), ([\d.]+)s")


def batch_stats(log_text: str) -> dict:
    """What the inference worker logged per generate call (serve/api.py): how full the batches were."""
    rows = [tuple(float(v) for v in m.groups()) for m in BATCH_LINE.finditer(log_text)]
    if not rows:
        return {"batches": 0}
    sizes = [int(r[0]) for r in rows]
    return {"batches": len(rows), "mean_batch_size": round(sum(sizes) / len(sizes), 2),
            "batch_sizes": {str(k): sizes.count(k) for k in sorted(set(sizes))},
            "model_seconds": round(sum(r[5] for r in rows), 1),
            "prompt_tokens": int(sum(r[1] for r in rows)), "prefix_cached_tokens": int(sum(r[2] for r in rows)),
            "new_tokens": int(sum(r[3] for r in rows))}


def cache_phase(url: str, question: str, repeats: int) -> dict:
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {KEY}"
        first = s.post(url + "/predict", json={"question": question}, timeout=1800).json()
        client_ms, server_ms, hits = [], [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = s.post(url + "/predict", json={"question": question}, timeout=60)
            client_ms.append((time.perf_counter() - t0) * 1000)
            body = r.json()
            hits += body.get("cached") is True
            server_ms.append(body["latency_ms"])
    return {"miss_latency_ms": first["latency_ms"], "repeats": repeats, "hits": hits,
            "hit_p50_ms": round(percentile(client_ms, 0.5), 2), "hit_p95_ms": round(percentile(client_ms, 0.95), 2),
            "hit_server_p50_ms": round(percentile(server_ms, 0.5), 3)}


def run_server(args, batch: int, tag: str, out_dir: Path) -> ServerProcess:
    cmd = ["--model", args.model, "--max-new-tokens", str(args.max_new_tokens), "--max-batch-size", str(batch),
           "--api-key-env", "MEDQA_BENCH_KEY", "--audit-log", str(out_dir / f"serve_audit_{tag}.jsonl"),
           "--log-level", "warning"]
    if args.adapter:
        cmd += ["--adapter", args.adapter]
    if args.batch_timeout is not None:
        cmd += ["--batch-timeout", str(args.batch_timeout)]
    if args.no_prefix_cache:
        cmd.append("--no-prefix-cache")
    if args.dtype:
        cmd += ["--dtype", args.dtype]
    srv = ServerProcess(cmd, log_path=out_dir / f"serve_{tag}.log", env={"MEDQA_BENCH_KEY": KEY},
                        shutdown_key="bench-shutdown")
    t0 = time.perf_counter()
    srv.start(ready_timeout=1800)
    print(f"[{tag}] server ready in {time.perf_counter() - t0:.1f}s (batch {batch})", flush=True)
    return srv


def main() -> int:
    params = load_params(REPO / "params.yaml")
    default_model = next((str(p) for p in (REPO / "models/merged", REPO / "models/base")
                          if (p / "config.json").is_file()), None)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=default_model, help="HF model dir (default: models/merged, else models/base)")
    ap.add_argument("--adapter")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=2, help="requests per client (over all rounds)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternate batching off/on this many times (the idle server is frozen with SIGSTOP)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=params.serve.max_batch_size, help="batching-on max_batch_size")
    ap.add_argument("--batch-timeout", type=float, help="default: params serve.batch_timeout")
    ap.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16", "int8"], help="default: params serve.dtype")
    ap.add_argument("--no-prefix-cache", action="store_true", help="both servers without the system-prompt KV cache")
    ap.add_argument("--cache-repeats", type=int, default=200)
    ap.add_argument("--out", default=str(REPO / "artifacts/bench/serve_load.json"))
    args = ap.parse_args()
    if args.model is None:
        ap.error("no models/merged or models/base: pass --model")
    if not 1 <= args.rounds <= args.requests:
        ap.error("--rounds must be between 1 and --requests")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    n = args.clients * args.requests
    qs = [f"{BASE_QUESTIONS[i % len(BASE_QUESTIONS)]}（咨询编号{i + 1}）" for i in range(n)]
    triager = load_triager(REPO / params.serve.triage_model)   # what the served pre-check loads
    assert len(set(qs)) == n and all(precheck(q, triager).action == "pass" for q in qs), \
        "bench questions must reach the model"
    per_client = [qs[c::args.clients] for c in range(args.clients)]
    print(f"model {args.model}{' + ' + args.adapter if args.adapter else ''}; {args.clients} clients × "
          f"{args.requests} requests, max_new_tokens {args.max_new_tokens}, dtype {args.dtype or params.serve.dtype}",
          flush=True)

    report = {"model": args.model, "adapter": args.adapter, "clients": args.clients, "requests_per_client":
              args.requests, "max_new_tokens": args.max_new_tokens, "batch_size_on": args.batch_size,
              "prefix_cache": not args.no_prefix_cache, "dtype": args.dtype or params.serve.dtype,
              "dtype_resolved": resolve_serving_precision(args.dtype or params.serve.dtype)}
    servers = {}
    try:
        for tag, batch in (("batching_off", 1), ("batching_on", args.batch_size)):
            servers[tag] = run_server(args, batch, tag, out.parent)
            servers[tag].pause()
        phases = {tag: [] for tag in servers}
        for rnd in range(args.rounds):              # interleaved, so drifts in machine speed hit both alike
            for tag, srv in servers.items():
                srv.resume()
                log_start = len(srv.log_path.read_bytes())
                res = load_phase(srv.url, [qs[rnd::args.rounds] for qs in per_client])
                res["worker"] = batch_stats(srv.log_path.read_bytes()[log_start:].decode("utf-8", "replace"))
                phases[tag].append(res)
                shown = {k: v for k, v in res.items() if k != "results"}
                print(f"[{tag} round {rnd + 1}/{args.rounds}] {json.dumps(shown, ensure_ascii=False)}", flush=True)
                srv.pause()
        for tag, rounds in phases.items():
            report[tag] = combine(rounds)
        on_srv = servers["batching_on"]
        on_srv.resume()
        report["cache"] = cache_phase(on_srv.url, BASE_QUESTIONS[0], args.cache_repeats)
        print(f"[cache] {json.dumps(report['cache'])}", flush=True)
        for tag, srv in servers.items():
            report[tag]["survivors_after_shutdown"] = srv.stop("api")
    finally:
        for srv in servers.values():
            srv.kill()

    off, on, cache = report["batching_off"], report["batching_on"], report["cache"]
    report["batching_ratio"] = round(on["ok_req_per_s"] / off["ok_req_per_s"], 2) if off["ok_req_per_s"] else None
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print("\n| run | req/s | p50 s | p95 s | errors | batches (mean size) | model s |\n|---|---|---|---|---|---|---|")
    for tag in ("batching_off", "batching_on"):
        r, w = report[tag], report[tag]["worker"]
        print(f"| {tag} | {r['ok_req_per_s']:.3f} | {r['p50_s']:.2f} | {r['p95_s']:.2f} | {r['errors']} | "
              f"{w['batches']} ({w.get('mean_batch_size', '-')}) | {w.get('model_seconds', '-')} |")
    print(f"\nbatching ratio (on/off req/s): {report['batching_ratio']}×  (target ≥ 3×: "
          f"{'met' if (report['batching_ratio'] or 0) >= 3 else 'NOT met'})")
    print(f"cache hit p50: {cache['hit_p50_ms']} ms client-side, {cache['hit_server_p50_ms']} ms in the server "
          f"({cache['hits']}/{cache['repeats']} hits; target ≤ 5 ms: {'met' if cache['hit_p50_ms'] <= 5 else 'NOT met'})")
    print(f"report: {out}")
    leftovers = off["survivors_after_shutdown"] + on["survivors_after_shutdown"]
    return 1 if leftovers or on["errors"] or off["errors"] or cache["hits"] != cache["repeats"] else 0


if __name__ == "__main__":
    sys.exit(main())
