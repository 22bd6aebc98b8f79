"""Audit log: one JSON line per request (time, endpoint, status, latency, safety rules, cache hit),
with the question masked by the same ``mask_pii`` the clean stage uses — raw phone numbers, ID
numbers, emails or names never reach the log."""
from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from stages.data.text import mask_pii

QUESTION_LOG_CHARS = 200


def masked_excerpt(text: str) -> tuple[str, dict[str, int]]:
    masked, counts = mask_pii(text)
    if len(masked) > QUESTION_LOG_CHARS:
        masked = masked[:QUESTION_LOG_CHARS] + "…"
    return masked, counts


class AuditLog:
    """Append-only JSONL writer; ``path`` None or "-" writes to stderr."""

    def __init__(self, path: str | Path | None):
        self.path = None if path in (None, "", "-") else Path(path)
        self._fh = None
        self._lock = threading.Lock()

    def _stream(self):
        if self._fh is None:
            if self.path is None:
                self._fh = sys.stderr
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")
        return self._fh

    def write(self, record: dict) -> None:
        """``record['question']``, when present, is masked here (callers pass raw text)."""
        rec = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        rec.update(record)
        if "question" in rec and rec["question"] is not None:
            rec["question"], rec["pii"] = masked_excerpt(str(rec["question"]))
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            fh = self._stream()
            fh.write(line + "\n")
            fh.flush()

    def close(self) -> None:
        if self._fh is not None and self._fh is not sys.stderr:
            self._fh.close()
        self._fh = None


def now_ms() -> float:
    return time.perf_counter() * 1000.0
