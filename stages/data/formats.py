"""Readers for QA sources. Each yields ``RawRecord`` (with its origin ``file:line``) or ``Reject``
(unreadable input, with a reason) so nothing is lost silently.

Formats: JSONL/JSON records (question/answer[/category/difficulty/source]), ShareGPT
(``conversations`` human/gpt turns → one record per QA pair), Alpaca (instruction+input → question,
output → answer), CSV with a column map. Encodings sniffed: UTF-8, UTF-8 with BOM, GB18030/GBK."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union

from stages.data import encoding
from stages.data.encoding import sniff_encoding  # noqa: F401  (re-exported)

SUFFIXES = {".jsonl", ".json", ".csv"}
# reasons that mean malformed input (clean.strict fails on these)
MALFORMED = {"bad_json", "missing_field", "bad_type", "undecodable", "unpaired_turn", "bad_difficulty", "bad_csv_row",
             "unknown_role"}


@dataclass
class RawRecord:
    question: str
    answer: str
    origin: str
    source: str
    category: str | None = None
    difficulty: str | None = None


@dataclass
class Reject:
    origin: str
    source: str
    reason: str
    detail: str = ""
    record: dict = field(default_factory=dict)


Item = Union[RawRecord, Reject]


class SourceError(ValueError):
    pass


def list_source_files(sources: list[str]) -> list[Path]:
    files: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not found:
                raise SourceError(f"data.sources: folder {s!r} holds no .jsonl/.json/.csv files")
            files.extend(found)
        elif p.is_file():
            if p.suffix.lower() not in SUFFIXES:
                raise SourceError(f"data.sources: {s!r} is not .jsonl/.json/.csv")
            files.append(p)
        else:
            raise SourceError(f"data.sources: {s!r} does not exist")
    return files


def decode_lines(path: Path, source: str) -> Iterator[tuple[int, str | None, Reject | None]]:
    return encoding.decode_lines(path, source, Reject)


def _str_field(obj: dict, key: str, origin: str, source: str, required=True):
    v = obj.get(key)
    if v is None:
        return None, (Reject(origin, source, "missing_field", key, obj) if required else None)
    if not isinstance(v, str):
        return None, Reject(origin, source, "bad_type", f"{key} must be a string, got {type(v).__name__}", obj)
    return v, None


# a JSON object holding a list of records under one of these keys is a container, not a record
CONTAINER_KEYS = ("data", "records", "items", "examples", "rows", "instances")
_RECORD_KEYS = {"question", "answer", "instruction", "output", "conversations"}


def unwrap_container(obj) -> tuple[str, list] | None:
    """``{"records": [...]}`` / ``{"data": [...]}`` (other keys are metadata) → (key, list)."""
    if isinstance(obj, dict) and not (_RECORD_KEYS & obj.keys()):
        for key in CONTAINER_KEYS:
            if isinstance(obj.get(key), list):
                return key, obj[key]
    return None


def _from_object(obj, origin: str, source: str) -> Iterator[Item]:
    container = unwrap_container(obj)
    if container is not None:
        key, items = container
        if not items:
            yield Reject(origin, source, "empty_container", f"{key!r} holds no records")
        for i, item in enumerate(items):
            yield from _from_object(item, f"{origin}[{i}]", source)
        return
    if not isinstance(obj, dict):
        yield Reject(origin, source, "bad_type", f"record must be an object, got {type(obj).__name__}")
        return
    src = obj.get("source") if isinstance(obj.get("source"), str) else source
    if "conversations" in obj:
        yield from _sharegpt(obj, origin, src)
        return
    if "instruction" in obj or "output" in obj:
        q, err = _str_field(obj, "instruction", origin, src)
        a, err2 = _str_field(obj, "output", origin, src)
        extra, err3 = _str_field(obj, "input", origin, src, required=False)
        if err or err2 or err3:
            yield err or err2 or err3
            return
        question = q if not extra else f"{q}\n{extra}"
        yield RawRecord(question, a, origin, src, obj.get("category"), obj.get("difficulty"))
        return
    q, err = _str_field(obj, "question", origin, src)
    a, err2 = _str_field(obj, "answer", origin, src)
    if err or err2:
        yield err or err2
        return
    for opt in ("category", "difficulty"):
        if obj.get(opt) is not None and not isinstance(obj[opt], str):
            yield Reject(origin, src, "bad_type", f"{opt} must be a string", obj)
            return
    yield RawRecord(q, a, origin, src, obj.get("category"), obj.get("difficulty"))


_HUMAN = {"human", "user"}
_BOT = {"gpt", "assistant", "bot"}
_SYSTEM = {"system"}
_BAD_TURN = "turn needs 'from' and a string 'value'"


def _sharegpt(obj: dict, origin: str, source: str) -> Iterator[Item]:
    """One item per human→gpt pair. A malformed turn rejects its pair only (the rest of the
    conversation continues); system turns and unknown roles are rejected with their reason."""
    conv = obj["conversations"]
    if not isinstance(conv, list) or not conv:
        yield Reject(origin, source, "bad_type", "conversations must be a non-empty list", obj)
        return
    pending = None            # (question or None when the human turn was malformed, origin, turn)
    for t, turn in enumerate(conv):
        where = f"{origin}#{t}"
        role = str(turn.get("from", "")).lower() if isinstance(turn, dict) else ""
        ok = isinstance(turn, dict) and isinstance(turn.get("value"), str) and "from" in turn
        if role in _HUMAN:
            if pending is not None:
                yield _unanswered(pending, source)
            pending = (turn["value"] if ok else None, where, turn)
        elif role in _SYSTEM:
            yield Reject(where, source, "system_turn", "system turns are not QA pairs", {"turn": turn})
        elif role and role not in _BOT:
            yield Reject(where, source, "unknown_role",
                         f"role {turn['from']!r} is not one of {sorted(_HUMAN | _BOT | _SYSTEM)}", {"turn": turn})
        elif pending is None:                   # an answer (or a turn without 'from') with no question
            if ok:
                yield Reject(where, source, "unpaired_turn", "answer without a question", {"turn": turn})
            else:
                yield Reject(where, source, "bad_type", _BAD_TURN, {"turn": turn})
        else:
            question, q_origin, q_turn = pending
            pending = None
            if question is None or not ok:
                bad = q_origin if question is None else where
                yield Reject(q_origin, source, "bad_type", f"{bad}: {_BAD_TURN}", {"turns": [q_turn, turn]})
            else:
                yield RawRecord(question, turn["value"], q_origin, source, obj.get("category"), obj.get("difficulty"))
    if pending is not None:
        yield _unanswered(pending, source)


def _unanswered(pending, source: str) -> Reject:
    question, q_origin, q_turn = pending
    if question is None:
        return Reject(q_origin, source, "bad_type", _BAD_TURN, {"turn": q_turn})
    return Reject(q_origin, source, "unpaired_turn", "human turn without an answer", {"turn": q_turn})


def read_jsonl(path: Path, source: str) -> Iterator[Item]:
    for n, line, rej in decode_lines(path, source):
        if rej:
            yield rej
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            yield Reject(f"{path}:{n}", source, "bad_json", str(err), {"raw": line[:2000]})
            continue
        yield from _from_object(obj, f"{path}:{n}", source)


def read_json(path: Path, source: str) -> Iterator[Item]:
    raw = path.read_bytes()      # a .json file is one document: loaded whole (use .jsonl at corpus scale)
    enc = sniff_encoding(raw)
    try:
        data = json.loads(raw.decode(enc))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        yield Reject(f"{path}:1", source, "bad_json" if isinstance(err, json.JSONDecodeError) else "undecodable", str(err))
        return
    container = unwrap_container(data)
    if container is not None:
        data = container[1]
        if not data:
            yield Reject(f"{path}:1", source, "empty_container", f"{container[0]!r} holds no records")
    if not isinstance(data, list):
        data = [data]
    for i, obj in enumerate(data):
        yield from _from_object(obj, f"{path}:[{i}]", source)


def read_csv(path: Path, source: str, columns: dict) -> Iterator[Item]:
    line_of: dict[int, int] = {}            # index of a decoded line → its physical line (pruned as read)
    pending: list[Reject] = []              # undecodable lines, yielded as the reader passes them

    def good_lines():
        i = 0
        for n, line, rej in decode_lines(path, source):
            if rej:
                pending.append(rej)
                continue
            line_of[i] = n
            i += 1
            yield line + "\n"

    reader = csv.reader(good_lines())
    try:
        header = next(reader)
    except StopIteration:
        yield from pending
        return
    header = [h.strip() for h in header]
    need = {c for v in columns.values() for c in ([v] if isinstance(v, str) else v)}
    missing = [c for c in sorted(need) if c not in header]
    required_missing = [c for c in missing
                        if c in ([columns["question"]] if isinstance(columns["question"], str) else columns["question"])
                        or c == columns["answer"]]
    if required_missing:
        raise SourceError(f"{path}: CSV header {header} lacks column(s) {required_missing} "
                          f"(data.csv_columns maps {columns})")
    idx = {h: i for i, h in enumerate(header)}
    start = reader.line_num  # index (0-based) into line_of of the next row's first physical line
    for row in reader:
        yield from pending
        pending.clear()
        origin = f"{path}:{line_of[start]}"
        for i in range(start, reader.line_num):
            line_of.pop(i, None)
        start = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            yield Reject(origin, source, "bad_csv_row", f"{len(row)} fields, header has {len(header)}", {"row": row[:6]})
            continue

        def col(name):
            return row[idx[name]] if name in idx else None

        qcols = [columns["question"]] if isinstance(columns["question"], str) else columns["question"]
        parts = [col(c).strip() for c in qcols if col(c) and col(c).strip()]
        # "title + ask": skip a title the ask already starts with
        if len(parts) == 2 and parts[1].startswith(parts[0]):
            parts = parts[1:]
        question = "\n".join(parts)
        answer = col(columns["answer"]) or ""
        cat = col(columns["category"]) if "category" in columns else None
        diff = col(columns["difficulty"]) if "difficulty" in columns else None
        src = col(columns["source"]) if "source" in columns else None
        yield RawRecord(question, answer, origin, src or source, cat or None, diff or None)
    yield from pending


def read_source(path: Path, source: str, csv_columns: dict) -> Iterator[Item]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from read_jsonl(path, source)
    elif suffix == ".json":
        yield from read_json(path, source)
    else:
        yield from read_csv(path, source, csv_columns)
