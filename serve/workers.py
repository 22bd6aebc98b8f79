"""Which inference workers are alive, as seen from the API-server process.

LitServe (``restart_workers=True``) notices a dead worker within ``monitor_internal`` seconds and
starts a new one, but it only marks the dead worker's requests as failed in the *main* process's
response buffer; the API-server process (a fork, with its own buffer) never learns of it, so those
requests would hang until a timeout. ``WorkerPids`` closes that gap: each worker writes its PID into
a shared-memory table once its model is ready, and the API-server process checks those PIDs —
for ``/health`` (503 from the moment the worker dies until its replacement is ready) and to fail,
at once, the requests a dead worker had taken (serve/spec.py)."""
from __future__ import annotations

import multiprocessing as mp
import os

import psutil

MAX_WORKERS = 16


def pid_alive(pid: int) -> bool:
    """True for a running process; a killed worker stays a zombie until LitServe reaps it."""
    if pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class WorkerPids:
    """Shared table worker_id → PID of the ready worker (0 = none yet). Created in the main process
    before the workers start: spawned workers get it with the pickled LitAPI, the forked API-server
    process inherits it."""

    def __init__(self, size: int = MAX_WORKERS):
        self._pids = mp.get_context("spawn").RawArray("i", size)

    def mark_ready(self, worker_id: int | None = None) -> None:
        """Called by a worker (serve/api.py ``setup``) once it can serve."""
        wid = int(os.environ.get("LITSERVE_WORKER_ID", "0")) if worker_id is None else worker_id
        self._pids[wid] = os.getpid()

    def pid(self, worker_id: int) -> int:
        return self._pids[worker_id] if 0 <= worker_id < len(self._pids) else 0

    def alive(self, worker_id: int) -> bool:
        return pid_alive(self.pid(worker_id))

    def all_ready_alive(self) -> bool:
        """At least one worker registered, and every registered one still running."""
        pids = [p for p in self._pids if p > 0]
        return bool(pids) and all(pid_alive(p) for p in pids)
