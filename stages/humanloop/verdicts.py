"""Expert verdicts as the clean stage applies them, one record at a time.

``data/review/verdicts.jsonl`` (written by ``python -m stages.review import``) holds one line per
reviewed record: ``{"verdict_id", "round", "record_id", "verdict": accept|edit|reject, "answer"
(edit: the corrected answer, already normalised and PII-masked), "reason", "reviewed_by",
"decided_by"}``. ``record_id`` is the clean record id (content hash of the cleaned question +
answer), so a verdict keeps applying to the same content on every run. A later round's verdict on
the same record replaces an earlier one (rounds are kept in import order)."""
from __future__ import annotations

from pathlib import Path

from stages.common.jsonio import iter_json_objects

VERDICT_FIELDS = ("verdict_id", "round", "record_id", "verdict", "reviewed_by")


class VerdictError(ValueError):
    pass


def load_verdicts(path: str | Path | None) -> dict[str, dict]:
    """record_id → verdict. ``path`` "" / None: no verdicts. A missing file or a bad line fails with
    the file:line."""
    if not path:
        return {}
    path = Path(path)
    if not path.is_file():
        raise VerdictError(f"clean.verdicts: {path} does not exist (run `python -m stages.review import`, "
                           "or set clean.verdicts: '' to apply no expert verdicts)")
    book: dict[str, dict] = {}
    for n, v in iter_json_objects(path, VerdictError):
        missing = [k for k in VERDICT_FIELDS if k not in v]
        if missing:
            raise VerdictError(f"{path}:{n}: missing {missing}")
        if v["verdict"] not in ("accept", "edit", "reject"):
            raise VerdictError(f"{path}:{n}: verdict {v['verdict']!r} is not accept/edit/reject")
        if v["verdict"] == "edit" and not (isinstance(v.get("answer"), str) and v["answer"].strip()):
            raise VerdictError(f"{path}:{n}: an edit needs a non-empty 'answer'")
        book[v["record_id"]] = v        # a later line (a later round) replaces an earlier one
    return book


def apply_verdict(verdict: dict | None, answer: str) -> tuple[str | None, dict]:
    """(answer to keep or None when the record is rejected, provenance fields for the record)."""
    if verdict is None:
        return answer, {}
    prov = {"reviewed_by": list(verdict["reviewed_by"]), "verdict_id": verdict["verdict_id"]}
    if verdict["verdict"] == "reject":
        return None, prov
    if verdict["verdict"] == "edit":
        return verdict["answer"], dict(prov, review="edited")
    return answer, dict(prov, review="accepted")
