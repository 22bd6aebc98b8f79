"""SQLite store (WAL mode, created on first open) for what service users and reviewers say:

- ``answers``: every answer the gateway served, by ``request_id`` (question and answer PII-masked,
  the safety rules that fired) — so feedback can name an answer by its id alone;
- ``feedback``: 👍/👎 ratings with an optional corrected answer and comment (masked);
- ``queue``: answers waiting for a reviewer — every answer whose post-check fired a ``risky:`` rule
  and every 👎 (or suggested correction) — with the reviewer's decision: approved / corrected /
  dismissed, the final answer and category.

Each call opens its own short connection (the store is used from the gateway, FastAPI routes, worker
threads and the export CLI); WAL lets readers and the one writer proceed together."""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from stages.humanloop.masking import clean_user_text, mask

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
  request_id TEXT PRIMARY KEY, ts REAL NOT NULL, endpoint TEXT NOT NULL,
  question TEXT NOT NULL, answer TEXT NOT NULL, rules TEXT NOT NULL, action TEXT, cached INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
  id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL REFERENCES answers(request_id),
  ts REAL NOT NULL, rating TEXT NOT NULL CHECK (rating IN ('up', 'down')), correction TEXT, comment TEXT);
CREATE TABLE IF NOT EXISTS queue (
  request_id TEXT PRIMARY KEY REFERENCES answers(request_id), ts REAL NOT NULL, reasons TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'corrected', 'dismissed')),
  final_answer TEXT, category TEXT, reviewer TEXT, decided_ts REAL);
CREATE INDEX IF NOT EXISTS queue_status ON queue(status, ts);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback(request_id);
"""
DECISIONS = {"approve": "approved", "correct": "corrected", "dismiss": "dismissed"}


class NotFound(LookupError):
    pass


class FeedbackStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def _db(self):
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA busy_timeout = 10000")
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA synchronous = NORMAL")   # WAL: durable across app crashes, no fsync per commit
            yield con
        finally:
            con.close()

    def init(self) -> "FeedbackStore":
        """Create the file and tables (idempotent) and switch the database to WAL mode."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as con:
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode})")
            con.executescript(SCHEMA)
        return self

    def journal_mode(self) -> str:
        with self._db() as con:
            return con.execute("PRAGMA journal_mode").fetchone()[0]

    # ------------------------------------------------------------------ serving side
    def record_answer(self, request_id: str, endpoint: str, question: str, answer: str, rules: list[str],
                      action: str | None, cached: bool) -> bool:
        """Store a served answer (masked); queue it when a risky rule fired (not again for cache hits of
        it). Returns whether it was queued."""
        # a cache hit repeats an answer already queued when it was first generated
        risky = not cached and any(r.startswith("risky:") for r in rules)
        with self._db() as con:
            con.execute("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?)",
                        (request_id, time.time(), endpoint, clean_user_text(question), mask(answer), json.dumps(list(rules)),
                         action, int(bool(cached))))
            if risky:
                self._enqueue(con, request_id, "risky_rule")
        return bool(risky)

    @staticmethod
    def _enqueue(con, request_id: str, reason: str) -> None:
        row = con.execute("SELECT reasons FROM queue WHERE request_id = ?", (request_id,)).fetchone()
        if row is None:
            con.execute("INSERT INTO queue (request_id, ts, reasons) VALUES (?,?,?)",
                        (request_id, time.time(), json.dumps([reason])))
        else:
            reasons = sorted(set(json.loads(row["reasons"])) | {reason})
            con.execute("UPDATE queue SET reasons = ?, status = CASE WHEN status = 'dismissed' THEN 'open' "
                        "ELSE status END WHERE request_id = ?", (json.dumps(reasons), request_id))

    def add_feedback(self, request_id: str, rating: str, correction: str | None, comment: str | None) -> dict:
        """Store a rating (texts normalised + masked); 👎 or a suggested correction queues the answer."""
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            if con.execute("SELECT 1 FROM answers WHERE request_id = ?", (request_id,)).fetchone() is None:
                con.execute("ROLLBACK")
                raise NotFound(request_id)
            cur = con.execute("INSERT INTO feedback (request_id, ts, rating, correction, comment) VALUES (?,?,?,?,?)",
                              (request_id, time.time(), rating, clean_user_text(correction) if correction else None,
                               clean_user_text(comment) if comment else None))
            queued = rating == "down" or bool(correction)
            if queued:
                self._enqueue(con, request_id, "thumbs_down" if rating == "down" else "correction")
            con.execute("COMMIT")
        return {"feedback_id": cur.lastrowid, "queued": queued}

    # ------------------------------------------------------------------ reviewer side
    def queue(self, status: str = "open", limit: int = 200) -> list[dict]:
        with self._db() as con:
            rows = con.execute(
                "SELECT q.request_id, q.reasons, q.status, q.final_answer, q.category, q.reviewer, "
                "a.question, a.answer, a.rules, a.action FROM queue q JOIN answers a USING (request_id) "
                "WHERE q.status = ? ORDER BY q.ts, q.request_id LIMIT ?", (status, limit)).fetchall()
            out = []
            for r in rows:
                fb = con.execute("SELECT rating, correction, comment FROM feedback WHERE request_id = ? ORDER BY id",
                                 (r["request_id"],)).fetchall()
                out.append({"request_id": r["request_id"], "reasons": json.loads(r["reasons"]), "status": r["status"],
                            "question": r["question"], "answer": r["answer"], "rules": json.loads(r["rules"]),
                            "action": r["action"], "final_answer": r["final_answer"], "category": r["category"],
                            "reviewer": r["reviewer"], "feedback": [dict(f) for f in fb]})
        return out

    def decide(self, request_id: str, action: str, reviewer: str, answer: str | None = None,
               category: str | None = None) -> dict:
        """approve: the latest suggested correction becomes the final answer (none: the served answer
        is confirmed and nothing is exported); correct: the reviewer's ``answer``; dismiss: discard."""
        status = DECISIONS[action]
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            if con.execute("SELECT 1 FROM queue WHERE request_id = ?", (request_id,)).fetchone() is None:
                con.execute("ROLLBACK")
                raise NotFound(request_id)
            final = None
            if action == "correct":
                final = clean_user_text(answer or "")
            elif action == "approve":
                row = con.execute("SELECT correction FROM feedback WHERE request_id = ? AND correction IS NOT NULL "
                                  "ORDER BY id DESC LIMIT 1", (request_id,)).fetchone()
                final = row["correction"] if row else None
            con.execute("UPDATE queue SET status = ?, final_answer = ?, category = ?, reviewer = ?, decided_ts = ? "
                        "WHERE request_id = ?", (status, final, clean_user_text(category) if category else None,
                                                 mask(reviewer), time.time(), request_id))
            con.execute("COMMIT")
        return {"request_id": request_id, "status": status, "final_answer": final}

    def approved_corrections(self) -> list[dict]:
        """Decided items with a final answer (approved with a correction, or corrected), by request id."""
        with self._db() as con:
            rows = con.execute(
                "SELECT q.request_id, q.status, q.final_answer, q.category, q.reviewer, a.question "
                "FROM queue q JOIN answers a USING (request_id) WHERE q.status IN ('approved', 'corrected') "
                "AND q.final_answer IS NOT NULL AND q.final_answer != '' ORDER BY q.request_id").fetchall()
        return [dict(r) for r in rows]

    def decided_ids(self) -> dict[str, str]:
        with self._db() as con:
            return {r[0]: r[1] for r in con.execute("SELECT request_id, status FROM queue WHERE status != 'open'")}
