"""Run ``python -m serve`` as a managed subprocess (own process group) — used by the end-to-end tests
and bench/serve_load.py. ``stop()`` shuts the server down through LitServe's shutdown API or
SIGTERM and reports any process of the server's tree that survived."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, args: list[str], log_path: str | Path, env: dict | None = None, port: int | None = None,
                 shutdown_key: str | None = None, cwd: str | Path = REPO, python_args: list[str] | None = None):
        """``python_args``: what follows the interpreter instead of ``-m serve`` (e.g. ``-c CODE``)."""
        self.python_args = python_args or ["-m", "serve"]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shutdown_key = shutdown_key
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        if shutdown_key:
            self.args.append("--enable-shutdown-api")
        self.env = dict(os.environ, **(env or {}))
        if shutdown_key:
            self.env["LIT_SHUTDOWN_API_KEY"] = shutdown_key
        self.env.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.env.setdefault("HF_HUB_OFFLINE", "1")
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.tree: list[int] = []

    def start(self, ready_timeout: float = 600) -> "ServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, *self.python_args, *self.args], cwd=self.cwd, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} during start:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    self.tree = self.process_tree()
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.kill()
        raise TimeoutError(f"server not ready after {ready_timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def process_tree(self) -> list[int]:
        """PIDs of the server and everything it started (API server, inference workers, manager...)."""
        try:
            root = psutil.Process(self.proc.pid)
            return [root.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def group_members(self) -> list[int]:
        out = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(p.pid) == self.proc.pid and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p.pid)
            except (ProcessLookupError, psutil.Error, OSError):
                continue
        return out

    def survivors(self) -> list[int]:
        alive = set()
        for pid in self.tree:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.add(pid)
            except psutil.NoSuchProcess:
                pass
        return sorted(alive | set(self.group_members()))

    def pause(self) -> None:
        """Freeze the whole server (SIGSTOP to its process group): it uses no CPU until ``resume``.
        Benchmarks use it to run two servers side by side without the idle one's polling competing."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self, how: str = "api", timeout: float = 60) -> list[int]:
        """Graceful shutdown (``api``: POST /shutdown; ``sigterm``: SIGTERM to the main process only).
        Waits for the main process, then returns the PIDs of the server tree still alive after a
        short grace period (empty = clean)."""
        self.tree = sorted(set(self.tree) | set(self.process_tree()))
        self.resume()                   # a paused server could not shut down
        if how == "api":
            r = requests.post(self.url + "/shutdown", headers={"Authorization": f"Bearer {self.shutdown_key}"},
                              timeout=10)
            r.raise_for_status()
        elif how == "sigterm":
            self.proc.send_signal(signal.SIGTERM)
        else:
            raise ValueError(how)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while self.survivors() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.survivors()

    def kill(self) -> None:
        """Last resort (test teardown): SIGKILL the whole process group."""
        if self.proc is None:
            return
        for pid in self.survivors():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
