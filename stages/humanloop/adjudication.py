"""From filled review sheets to final verdicts: agreement, disagreements for adjudication, the rule
for unresolved ones, and the round's metrics.

A disagreement is an item whose reviewers gave different verdicts, or who all chose ``edit`` with
different corrected answers. Disagreements are listed in ``adjudication.csv`` next to the sheets;
an adjudicator fills ``final_verdict`` (+ ``final_answer`` for an edit, ``final_reason``,
``adjudicator``). Rows left empty are resolved by ``review.unresolved``: ``strictest`` (reject >
edit > accept; the first reviewer, by name, who chose it supplies answer and reason) or ``pending``
(no verdict is written for them until adjudicated)."""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from stages.humanloop.kappa import agreement
from stages.humanloop.masking import clean_user_text
from stages.humanloop.sheets import REASON_ALIASES, REASONS, VERDICT_ALIASES, VERDICTS, Row, _cell

STRICTNESS = {"reject": 2, "edit": 1, "accept": 0}
ADJ_FINAL = ["final_verdict", "final_answer", "final_reason", "adjudicator"]


def _answer_of(row: Row) -> str:
    return clean_user_text(row.corrected_answer) if row.verdict == "edit" else ""


def find_disagreements(by_reviewer: dict[str, dict[str, Row]], ids: list[str]) -> list[str]:
    out = []
    for rid in ids:
        rows = [by_reviewer[n][rid] for n in sorted(by_reviewer)]
        verdicts = {r.verdict for r in rows}
        if len(verdicts) > 1 or (verdicts == {"edit"} and len({_answer_of(r) for r in rows}) > 1):
            out.append(rid)
    return out


def adjudication_columns(reviewers: list[str]) -> list[str]:
    cols = ["record_id", "question", "answer", "tier"]
    for n in sorted(reviewers):
        cols += [f"{n}:verdict", f"{n}:corrected_answer", f"{n}:reason_code"]
    return cols + ADJ_FINAL


def write_adjudication(path: Path, items: dict[str, dict], by_reviewer, disagreements: list[str], filled: dict) -> None:
    import pandas as pd

    rows = []
    for rid in disagreements:
        it = items[rid]
        row = {"record_id": rid, "question": it["question"], "answer": it["answer"], "tier": it["tier"]}
        for n in sorted(by_reviewer):
            r = by_reviewer[n][rid]
            row.update({f"{n}:verdict": r.verdict, f"{n}:corrected_answer": _answer_of(r),
                        f"{n}:reason_code": r.reason})
        row.update(filled.get(rid, {k: "" for k in ADJ_FINAL}))
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=adjudication_columns(list(by_reviewer))).to_csv(path, index=False, encoding="utf-8-sig")


def read_adjudication(path: Path, disagreements: list[str]) -> tuple[dict[str, dict], list[str]]:
    """Filled final_* rows of adjudication.csv (record_id → dict) and problems (file/row/column)."""
    import pandas as pd

    if not path.is_file():
        return {}, []
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    problems = [f"{path.name}: row 1: missing column {c!r}" for c in ["record_id", *ADJ_FINAL] if c not in df.columns]
    if problems:
        return {}, problems
    wanted, filled = set(disagreements), {}
    for i, rec in enumerate(df.to_dict("records")):
        where = f"{path.name}: row {i + 2}"
        rid = _cell(rec["record_id"])
        final = {k: _cell(rec[k]) for k in ADJ_FINAL}
        if not final["final_verdict"]:
            continue                                   # not adjudicated yet: review.unresolved applies
        if rid not in wanted:
            problems.append(f"{where}: column record_id: {rid!r} is not a disagreement of this round")
            continue
        v = VERDICT_ALIASES.get(final["final_verdict"], final["final_verdict"].lower())
        reason = REASON_ALIASES.get(final["final_reason"].lower(), final["final_reason"].lower())
        if v not in VERDICTS:
            problems.append(f"{where}: column final_verdict: {final['final_verdict']!r} — expected {list(VERDICTS)}")
        elif v == "edit" and not final["final_answer"]:
            problems.append(f"{where}: column final_answer: empty, but final_verdict is 'edit'")
        elif v != "accept" and reason not in REASONS:
            problems.append(f"{where}: column final_reason: {final['final_reason']!r} — expected {list(REASONS)}")
        else:
            filled[rid] = dict(final, final_verdict=v, final_reason=reason if reason in REASONS else "")
    return filled, problems


def decide(round_name: str, items: dict[str, dict], by_reviewer: dict[str, dict[str, Row]],
           disagreements: list[str], adjudicated: dict[str, dict], unresolved: str) -> tuple[list[dict], list[str]]:
    """Final verdict records (sorted by record id) and the ids still pending."""
    names = sorted(by_reviewer)
    out, pending = [], []
    disputed = set(disagreements)
    for rid in sorted(items):
        rows = [by_reviewer[n][rid] for n in names]
        base = {"verdict_id": f"{round_name}:{rid}", "round": round_name, "record_id": rid,
                "reviewed_by": names}
        if rid in adjudicated:
            a = adjudicated[rid]
            v = {"verdict": a["final_verdict"], "reason": a["final_reason"],
                 "decided_by": f"adjudication:{a['adjudicator'] or 'unnamed'}"}
            if a["final_verdict"] == "edit":
                v["answer"] = clean_user_text(a["final_answer"])
        elif rid in disputed:
            if unresolved == "pending":
                pending.append(rid)
                continue
            top = max(STRICTNESS[r.verdict] for r in rows)
            chosen = next(r for r in rows if STRICTNESS[r.verdict] == top)
            v = {"verdict": chosen.verdict, "reason": chosen.reason, "decided_by": "rule:strictest"}
            if chosen.verdict == "edit":
                v["answer"] = _answer_of(chosen)
        else:
            reasons = Counter(r.reason for r in rows if r.reason)
            v = {"verdict": rows[0].verdict, "decided_by": "agreement",
                 "reason": min(reasons, key=lambda k: (-reasons[k], k)) if reasons else ""}
            if rows[0].verdict == "edit":
                v["answer"] = _answer_of(rows[0])
        comments = [clean_user_text(f"{r.comment}") for r in rows if r.comment]
        out.append({**base, **v, **({"comments": comments} if comments else {})})
    return out, pending


def round_metrics(round_name: str, items: dict[str, dict], by_reviewer: dict[str, dict[str, Row]],
                  disagreements: list[str], adjudicated: dict, verdicts: list[dict], pending: list[str]) -> dict:
    ids = sorted(items)
    labels = {n: [by_reviewer[n][rid].verdict for rid in ids] for n in sorted(by_reviewer)}
    by_tier: dict[str, Counter] = defaultdict(Counter)
    for v in verdicts:
        by_tier[items[v["record_id"]]["tier"]][v["verdict"]] += 1
    return {
        "round": round_name, "reviewers": sorted(by_reviewer), "items": len(ids),
        "kappa": agreement(labels, list(VERDICTS)),
        "disagreements": len(disagreements),
        "adjudicated": sum(1 for rid in disagreements if rid in adjudicated),
        "resolved_by_rule": sum(1 for v in verdicts if v["decided_by"].startswith("rule:")),
        "pending": len(pending),
        "verdicts": {k: sum(v["verdict"] == k for v in verdicts) for k in VERDICTS},
        "reasons": dict(sorted(Counter(v["reason"] for v in verdicts if v["reason"]).items())),
        "by_tier": {t: {k: c[k] for k in VERDICTS} for t, c in sorted(by_tier.items())},
        "by_reviewer": {n: {k: labels[n].count(k) for k in VERDICTS} for n in sorted(labels)},
    }
