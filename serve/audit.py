"""Audit log: one JSON line per request (time, endpoint, status, latency, safety rules, cache hit).
The ``question`` and ``error`` fields are normalised and masked here (serve/privacy.py: the
pipeline's one masking function) whatever the caller passes — raw phone numbers, ID numbers,
emails or names never reach the log, in whatever unicode disguise they were sent."""
from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from serve.privacy import clean

QUESTION_LOG_CHARS = 200


def masked_excerpt(text: str) -> tuple[str, dict[str, int]]:
    masked, counts = clean(text)
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
        """``question`` and ``error`` are normalised + masked here; ``pii`` (counts of what was masked)
        is the caller's when given (the gateway passes the counts from the raw question)."""
        rec = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        rec.update(record)
        if rec.get("question") is not None:
            rec["question"], counts = masked_excerpt(str(rec["question"]))
            rec.setdefault("pii", counts)
        if rec.get("error") is not None:
            rec["error"] = masked_excerpt(str(rec["error"]))[0]
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
