"""Issue 12: the inference worker is SIGKILLed while the server is under load (real ``python -m
serve`` with the tiny model). Emergency replies (pre-check, no model) keep working throughout,
/health reports 503 from the kill until the restarted worker is ready, the requests the dead worker
had taken fail fast with 503 instead of hanging, and model answers resume. Before: LitServe ran
without ``restart_workers`` and shut the whole server down when its worker died."""
from __future__ import annotations

import os
import signal
import statistics
import threading
import time

import psutil
import requests

from serve.launcher import ServerProcess
from stages.safety.rules import EMERGENCY_REPLY

KEY = "resilience-key-3b1"
HEADERS = {"Authorization": f"Bearer {KEY}"}
DEADLINE_S = 20


def inference_worker_pids(srv: ServerProcess) -> list[int]:
    """LitServe spawns its inference workers (multiprocessing 'spawn'): python -c '...spawn_main...'."""
    out = []
    for pid in srv.process_tree():
        try:
            cmd = " ".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmd and "resource_tracker" not in cmd:
            out.append(pid)
    return out


class Load:
    """Background clients: model questions (distinct, so no cache hits), emergencies, health polls.
    Every result is (sent_at, finished_at, status, ok)."""

    def __init__(self, url: str):
        self.url, self.stop = url, threading.Event()
        self.model, self.emergency, self.health = [], [], []
        self._n, self._lock = 0, threading.Lock()
        self.threads = [threading.Thread(target=f, daemon=True) for f in
                        (self._model, self._model, self._model, self._emergency, self._health)]

    def _post(self, question, out, check):
        t0 = time.monotonic()
        try:
            r = requests.post(self.url + "/predict", json={"question": question}, headers=HEADERS,
                              timeout=DEADLINE_S + 30)
            out.append((t0, time.monotonic(), r.status_code, check(r)))
        except requests.RequestException as err:
            out.append((t0, time.monotonic(), 0, repr(err)))

    def _next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    def _model(self):
        while not self.stop.is_set():
            self._post(f"第{self._next()}个问题：感冒发烧吃什么好？", self.model,
                       lambda r: r.json()["safety"]["model_used"] if r.status_code == 200 else r.json()["error"]["code"])

    def _emergency(self):
        while not self.stop.is_set():
            self._post("我爸突然胸痛，出冷汗，怎么办", self.emergency,
                       lambda r: r.status_code == 200 and r.json()["answer"].startswith(EMERGENCY_REPLY))
            time.sleep(0.05)

    def _health(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                status = requests.get(self.url + "/health", timeout=5).status_code
            except requests.RequestException:
                status = 0
            self.health.append((t0, time.monotonic(), status, None))
            time.sleep(0.05)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(DEADLINE_S + 40)


def test_worker_sigkill_under_load(tiny_model_dir, tmp_path):
    srv = ServerProcess(["--model", str(tiny_model_dir), "--max-new-tokens", "8", "--max-batch-size", "4",
                         "--no-warmup", "--rules-only-triage", "--api-key-env", "MEDQA_RES_KEY", "--generation-timeout", str(DEADLINE_S),
                         "--audit-log", str(tmp_path / "audit.jsonl")],
                        log_path=tmp_path / "server.log", env={"MEDQA_RES_KEY": KEY}, shutdown_key="res-shutdown-5e")
    with srv:
        [worker] = inference_worker_pids(srv)
        with Load(srv.url) as load:
            deadline = time.monotonic() + 120
            while sum(1 for r in load.model if r[2] == 200) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert sum(1 for r in load.model if r[2] == 200) >= 5, srv.log_tail()
            t_kill = time.monotonic()
            os.kill(worker, signal.SIGKILL)
            while time.monotonic() < t_kill + 180:
                if any(r[0] > t_kill and r[2] == 200 and r[3] is True for r in load.model):
                    break
                time.sleep(0.1)
            time.sleep(1.0)
        log = srv.log_tail(10 ** 6)
        survivors = srv.stop("api")

    resumed = min((r[1] for r in load.model if r[0] > t_kill and r[2] == 200 and r[3] is True), default=None)
    assert resumed is not None, f"model answers never resumed:\n{log[-3000:]}"
    assert survivors == [], survivors

    # emergencies: every one answered, during the outage too
    assert load.emergency and all(r[2] == 200 and r[3] is True for r in load.emergency), \
        [r for r in load.emergency if r[2] != 200 or r[3] is not True][:5]
    outage = [r for r in load.emergency if t_kill <= r[0] <= resumed]
    assert len(outage) >= 3, "no emergency request was sent while the worker was down"

    # health: 503 soon after the kill, 200 again once the new worker is ready
    first_503 = min(r[1] for r in load.health if r[0] >= t_kill and r[2] == 503)
    back_200 = min(r[1] for r in load.health if r[0] > first_503 and r[2] == 200)
    assert first_503 - t_kill < 1.5
    assert not any(r[2] == 200 for r in load.health if t_kill + 0.5 < r[0] and r[1] < back_200)

    # model requests: none hung; those the dead worker had taken failed fast with 503
    assert all(r[2] in (200, 503) for r in load.model), [r for r in load.model if r[2] not in (200, 503)][:5]
    failed = [r for r in load.model if r[2] == 503]
    assert all(r[3] in ("model_restarting", "deadline_exceeded") for r in failed), failed
    assert all(r[1] - r[0] < DEADLINE_S + 5 for r in load.model)
    fast_fail = [r[1] - t_kill for r in failed if r[3] == "model_restarting"]
    assert all(r[2] == 200 for r in load.model if r[0] > back_200)

    em_lat = [1000 * (r[1] - r[0]) for r in outage]
    print(f"\nworker kill: health 503 after {first_503 - t_kill:.2f}s, 200 again after {back_200 - t_kill:.2f}s; "
          f"first model answer after the kill at {resumed - t_kill:.2f}s; "
          f"{len(failed)} in-flight model requests failed with 503 "
          f"({len(fast_fail)} model_restarting, at {', '.join(f'{t:.2f}s' for t in fast_fail) or '-'}); "
          f"{len(outage)} emergency replies during the outage, p50 {statistics.median(em_lat):.1f} ms, "
          f"max {max(em_lat):.1f} ms; {len(load.model)} model / {len(load.emergency)} emergency requests in all")
