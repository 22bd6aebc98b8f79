"""Review sheets: the stratified sample, one sheet per reviewer (.xlsx and .csv, same items in a
different seeded order each), and strict reading of filled sheets.

Reading never skips a row silently: every problem is reported with the sheet, the spreadsheet row
(the header is row 1) and the column, all at once, in a ``SheetError``."""
from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ["record_id", "question", "answer", "tier", "category",
           "verdict", "corrected_answer", "reason_code", "comment"]
FILL_COLUMNS = ["verdict", "corrected_answer", "reason_code", "comment"]
VERDICTS = ("accept", "edit", "reject")
REASONS = ("wrong_fact", "unsafe", "outdated", "off_topic", "style")
# reviewers may type the Chinese label instead of the code
VERDICT_ALIASES = {"接受": "accept", "通过": "accept", "修改": "edit", "编辑": "edit", "拒绝": "reject", "删除": "reject"}
REASON_ALIASES = {"事实错误": "wrong_fact", "不安全": "unsafe", "过时": "outdated", "离题": "off_topic", "文风": "style",
                  "wrong fact": "wrong_fact", "off-topic": "off_topic"}
MAX_ERRORS_SHOWN = 50


class SheetError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_ERRORS_SHOWN]
        more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{len(problems)} problem(s) in the review sheets:\n  " + "\n  ".join(shown) + more)


def _key(seed: int, *parts: str) -> str:
    return hashlib.sha256("\x1f".join((str(seed),) + parts).encode()).hexdigest()


def stratified_sample(records: list[dict], size: int, seed: int) -> list[dict]:
    """Seeded sample stratified by tier × category: proportional allocation (largest remainder),
    at least one item per stratum while the size allows, records ordered by id within a stratum
    before the seeded draw, so the result depends only on the records' content and the seed."""
    strata: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        strata[(r.get("difficulty", ""), r.get("category", ""))].append(r)
    keys = sorted(strata)
    total = len(records)
    if size >= total:
        alloc = {k: len(strata[k]) for k in keys}
    else:
        # every stratum gets one item first (smallest strata first when size < number of strata)
        alloc = {k: 0 for k in keys}
        order = sorted(keys, key=lambda k: (len(strata[k]), k))
        left = size
        for k in order:
            if left == 0:
                break
            alloc[k], left = 1, left - 1
        if left:
            quotas = {k: left * (len(strata[k]) - alloc[k]) / max(1, total - sum(alloc.values())) for k in keys}
            for k in keys:
                alloc[k] += min(int(quotas[k]), len(strata[k]) - alloc[k])
            rest = size - sum(alloc.values())
            for k in sorted(keys, key=lambda k: (-(quotas[k] - int(quotas[k])), k)):
                if rest == 0:
                    break
                if alloc[k] < len(strata[k]):
                    alloc[k], rest = alloc[k] + 1, rest - 1
    sample = []
    for k in keys:
        items = sorted(strata[k], key=lambda r: r["id"])
        rng = random.Random(int(_key(seed, *k)[:16], 16))
        sample.extend(rng.sample(items, alloc[k]))
    return sorted(sample, key=lambda r: r["id"])


def reviewer_order(items: list[dict], seed: int, reviewer: str) -> list[dict]:
    """The same items in an order of their own for each reviewer (seeded by seed and name)."""
    return sorted(items, key=lambda r: _key(seed, reviewer, r["id"]))


def sheet_rows(items: list[dict]) -> list[dict]:
    return [{"record_id": r["id"], "question": r["question"], "answer": r["answer"],
             "tier": r.get("difficulty", ""), "category": r.get("category", ""),
             "verdict": "", "corrected_answer": "", "reason_code": "", "comment": ""} for r in items]


def write_sheet(rows: list[dict], stem: Path) -> list[Path]:
    """``stem``.xlsx and ``stem``.csv (UTF-8 with BOM so Excel opens the Chinese text correctly)."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=COLUMNS)
    stem.parent.mkdir(parents=True, exist_ok=True)
    xlsx, csv = stem.with_suffix(".xlsx"), stem.with_suffix(".csv")
    with pd.ExcelWriter(xlsx, engine="openpyxl") as w:
        df.to_excel(w, index=False, sheet_name="review")
        ws = w.sheets["review"]
        for col, width in zip("ABCDEFGHI", (18, 40, 60, 12, 12, 10, 60, 14, 30)):
            ws.column_dimensions[col].width = width
    df.to_csv(csv, index=False, encoding="utf-8-sig")
    return [xlsx, csv]


@dataclass
class Row:
    sheet: str
    row: int            # spreadsheet row (header = 1)
    record_id: str
    verdict: str
    corrected_answer: str
    reason: str
    comment: str


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v != v:  # NaN = empty cell
        return ""
    return str(v).strip()


def read_sheet(path: Path) -> tuple[list[dict], list[str]]:
    """Raw rows (strings, empty cells as "") and header problems for one filled sheet."""
    import pandas as pd

    try:
        if path.suffix.lower() == ".xlsx":
            df = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as err:  # unreadable file: say which and why
        return [], [f"{path.name}: cannot read the sheet: {type(err).__name__}: {err}"]
    header = [str(c).strip() for c in df.columns]
    problems = [f"{path.name}: row 1: missing column {c!r}" for c in COLUMNS if c not in header]
    problems += [f"{path.name}: row 1: unknown column {c!r} (expected {COLUMNS})" for c in header if c not in COLUMNS]
    df.columns = header
    rows = [{c: _cell(v) for c, v in rec.items()} for rec in df.to_dict("records")]
    return rows, problems


def validate(path: Path, rows: list[dict], expected: list[str]) -> tuple[list[Row], list[str]]:
    """Check one reviewer's rows against the exported ids; returns (rows, problems)."""
    name, out, problems, seen = path.name, [], [], {}
    expected_set = set(expected)
    for i, r in enumerate(rows):
        n = i + 2
        where = f"{name}: row {n}"
        rid = r.get("record_id", "")
        if not rid:
            problems.append(f"{where}: column record_id: empty")
            continue
        if rid not in expected_set:
            problems.append(f"{where}: column record_id: {rid!r} is not in this round's export")
            continue
        if rid in seen:
            problems.append(f"{where}: column record_id: {rid!r} already on row {seen[rid]}")
            continue
        seen[rid] = n
        verdict = VERDICT_ALIASES.get(r.get("verdict", ""), r.get("verdict", "").lower())
        reason = r.get("reason_code", "")
        reason = REASON_ALIASES.get(reason.lower(), REASON_ALIASES.get(reason, reason.lower()))
        corrected = r.get("corrected_answer", "")
        bad = len(problems)
        if verdict not in VERDICTS:
            problems.append(f"{where}: column verdict: {r.get('verdict', '')!r} — expected one of {list(VERDICTS)}"
                            + (" (the row was left unfilled)" if not r.get("verdict") else ""))
        elif verdict == "edit" and not corrected:
            problems.append(f"{where}: column corrected_answer: empty, but verdict is 'edit'")
        elif verdict != "edit" and corrected:
            problems.append(f"{where}: column corrected_answer: filled, but verdict is {verdict!r} (use 'edit')")
        if verdict in ("edit", "reject") and reason not in REASONS:
            problems.append(f"{where}: column reason_code: {reason!r} — expected one of {list(REASONS)}")
        elif verdict == "accept" and reason:
            if reason not in REASONS:
                problems.append(f"{where}: column reason_code: {reason!r} — expected one of {list(REASONS)} or empty")
        if len(problems) == bad:
            out.append(Row(name, n, rid, verdict, corrected, reason if reason in REASONS else "", r.get("comment", "")))
    missing = [rid for rid in expected if rid not in seen]
    for rid in missing:
        problems.append(f"{name}: record_id {rid!r} is missing (every exported row must come back)")
    return out, problems
