"""Memory soak: does the server's RSS grow with the number of requests served?

LitServe 0.2.19's OpenAI spec keeps an entry in ``response_buffer`` for every request forever;
serve/spec.py removes it when the response is done. This bench starts two servers one after the
other with the same model and settings — ``fixed`` (``python -m serve``) and ``litserve`` (the same
server with that removal switched off, i.e. LitServe's own behaviour) — sends each ``--warmup``
requests, then ``--requests`` more (half /predict, half streaming chat, every question distinct,
answer cache off, 4 concurrent clients), and samples the RSS of every server process along the
way. Prints, per server: RSS growth over the measured requests for the API-server process and for
the whole process tree, and bytes per request; target: tree growth ≤ 50 MB over 2,000 requests
(fixed). Writes ``artifacts/bench/serve_soak.json``.

    python bench/serve_soak.py                       # tiny random model (the leak does not depend on it)
    python bench/serve_soak.py --model models/base --requests 400 --max-new-tokens 8

On a shared machine wrap it in ``flock /tmp/medqa-heavy.lock``."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "tests"))

from serve.launcher import ServerProcess  # noqa: E402

KEY = "soak-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
UNFIXED = ("import sys, serve.spec as s; s.MedQAOpenAISpec._release = lambda self, uids: None; "
           "from serve.__main__ import main; sys.exit(main(sys.argv[1:]))")
TARGET_MB = 50.0


def roles(srv: ServerProcess) -> dict[int, str]:
    """PID → role. The API server is the process holding the clients' TCP connections."""
    out = {}
    for pid in srv.process_tree():
        try:
            p = psutil.Process(pid)
            cmd = " ".join(p.cmdline())
            conns = [c for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED]
        except psutil.Error:
            continue
        if pid == srv.proc.pid:
            out[pid] = "main"
        elif "resource_tracker" in cmd:
            out[pid] = "resource-tracker"
        elif "spawn_main" in cmd:
            out[pid] = "inference-worker"
        elif conns:
            out[pid] = "api-server"
        else:
            out[pid] = "manager"
    return out


def rss(pids) -> dict[int, int]:
    out = {}
    for pid in pids:
        try:
            out[pid] = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            out[pid] = 0
    return out


def one_request(session: requests.Session, url: str, i: int) -> int:
    q = f"第{i}位患者问：最近总是头疼，睡不好，应该挂哪个科？"
    if i % 2:
        r = session.post(url + "/predict", json={"question": q}, headers=AUTH, timeout=120)
        return r.status_code
    body = {"model": "medqa", "stream": True, "messages": [{"role": "user", "content": q}]}
    with session.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=120, stream=True) as r:
        for _ in r.iter_content(None):
            pass
        return r.status_code


def drive(url: str, start: int, n: int, clients: int = 4) -> list[int]:
    sessions = [requests.Session() for _ in range(clients)]

    def client(k):
        return [one_request(sessions[k], url, i) for i in range(start + k, start + n, clients)]

    with ThreadPoolExecutor(clients) as pool:
        return [s for part in pool.map(client, range(clients)) for s in part]


def soak(name: str, python_args: list[str], args, out_dir: Path) -> dict:
    srv = ServerProcess(["--model", args.model, "--max-new-tokens", str(args.max_new_tokens), "--cache-size", "0",
                         "--no-warmup", "--rules-only-triage", "--api-key-env", "MEDQA_SOAK_KEY", "--audit-log", str(out_dir / f"{name}.jsonl")],
                        log_path=out_dir / f"{name}.log", env={"MEDQA_SOAK_KEY": KEY}, python_args=python_args)
    with srv:
        statuses = drive(srv.url, 0, args.warmup)
        probe = requests.Session()              # an open keep-alive connection marks the API server
        probe.get(srv.url + "/health", timeout=30)
        who = roles(srv)
        probe.close()
        base = rss(who)
        samples, done, t0 = [], 0, time.perf_counter()
        step = max(1, args.requests // 8)
        while done < args.requests:
            n = min(step, args.requests - done)
            statuses += drive(srv.url, args.warmup + done, n)
            done += n
            now = rss(who)
            samples.append({"requests": done, "tree_mb": round((sum(now.values()) - sum(base.values())) / 2**20, 2),
                            **{who[p]: round((now[p] - base[p]) / 2**20, 2) for p in now}})
        wall = time.perf_counter() - t0
    errors = sum(s != 200 for s in statuses)
    last = samples[-1]
    api_growth = last.get("api-server", float("nan"))
    return {"server": name, "roles": sorted(who.values()), "requests": args.requests, "warmup": args.warmup, "errors": errors,
            "wall_s": round(wall, 1), "api_server_growth_mb": api_growth, "tree_growth_mb": last["tree_mb"],
            "api_server_bytes_per_request": round(api_growth * 2**20 / args.requests),
            "base_rss_mb": {who[p]: round(b / 2**20, 1) for p, b in base.items()}, "samples": samples}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="HF model dir (default: a tiny random Qwen2 made here)")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--max-new-tokens", type=int, default=4)
    ap.add_argument("--only-fixed", action="store_true", help="skip the LitServe-behaviour comparison server")
    ap.add_argument("--out", default=str(REPO / "artifacts/bench/serve_soak.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        made_tiny = not args.model
        if made_tiny:
            from conftest import make_tiny_model
            from stages.model.bundled import cached_tokenizer_dir

            args.model = str(make_tiny_model(out_dir / "tiny", cached_tokenizer_dir()))
        runs = [soak("fixed", ["-m", "serve"], args, out_dir)]
        if not args.only_fixed:
            runs.append(soak("litserve", ["-c", UNFIXED], args, out_dir))
    for r in runs:
        print(f"{r['server']:>8}: {r['requests']} requests after {r['warmup']} warm-up, {r['errors']} errors, "
              f"{r['wall_s']} s; RSS growth API server {r['api_server_growth_mb']:+.2f} MB "
              f"({r['api_server_bytes_per_request']:+d} B/request), whole tree {r['tree_growth_mb']:+.2f} MB")
    fixed = runs[0]
    ok = fixed["tree_growth_mb"] <= TARGET_MB and fixed["errors"] == 0
    if len(runs) > 1:
        print(f"per-request growth of the API server: fixed {fixed['api_server_bytes_per_request']} B, "
              f"LitServe's behaviour {runs[1]['api_server_bytes_per_request']} B")
    print(f"target: tree growth <= {TARGET_MB:g} MB over {args.requests} requests: {'met' if ok else 'NOT met'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": "tiny random Qwen2" if made_tiny else args.model, "max_new_tokens": args.max_new_tokens, "runs": runs},
                              ensure_ascii=False, indent=1), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
