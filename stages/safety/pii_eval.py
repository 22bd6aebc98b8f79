"""How well ``mask_pii`` masks: recall per PII kind and what it wrongly masks, on labelled messages
(tests/fixtures/pii/*.jsonl: ``{"text", "pii": [{"kind", "value"}], "keep": [...], "category"}``; the
values are fictitious, written for this test — see tests/fixtures/pii/README.md).

A labelled value counts as **leaked** when, after masking, the text still shows it (compared after
``normalize``, with spaces, dashes, dots and brackets removed and Chinese numerals read as digits):

* number-like kinds (mobile, landline, id, bank, qq, record, passport, wechat): any 6 consecutive
  characters of the value (the whole value if shorter) are still there — "138 [手机号]" leaves 3 digits,
  not a number anyone can call;
* email: the part before the @ (or the whole address) is still there;
* name: the whole name is still there;
* address: a run of at least half the value (and at least 4 characters) is still there — "建国路" alone
  is not a leak, "3栋2单元301室" of "建国路88号3栋2单元301室" is.

A ``keep`` item (a lab value, a dose, a date, a floor of the hospital, "我是应届生") counts as
**over-masked** when it no longer appears unchanged; a message without PII counts as a **false
positive** when masking changes it at all (a placeholder appears)."""
from __future__ import annotations

import re
from collections import defaultdict

from stages.safety.pii import _SPOKEN_DIGIT, PII_TAGS, mask_pii
from stages.safety.triage_eval import _rate

NUMBER_KINDS = ("mobile", "landline", "id", "bank", "qq", "record", "passport", "wechat")
KINDS = NUMBER_KINDS + ("email", "name", "address")
_SEPARATORS = re.compile(r"[\s\-.–—()（）]")


def compact(text: str, numerals: bool = False) -> str:
    """``normalize``d text without separators; with ``numerals``, Chinese numerals read as digits."""
    from stages.data.text import normalize

    text = _SEPARATORS.sub("", normalize(text)).upper()
    return "".join(_SPOKEN_DIGIT.get(c, c) for c in text) if numerals else text


def _longest_common_run(a: str, b: str) -> int:
    best, prev = 0, [0] * (len(b) + 1)
    for ca in a:
        cur = [0] * (len(b) + 1)
        for j, cb in enumerate(b, 1):
            if ca == cb:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def leaked(kind: str, value: str, masked: str) -> bool:
    """Whether ``value`` (a labelled PII value of ``kind``) still shows in the ``masked`` text."""
    if kind in NUMBER_KINDS:
        v, m = compact(value, numerals=True), compact(masked, numerals=True)
        w = min(6, len(v))
        return any(v[i:i + w] in m for i in range(len(v) - w + 1))
    v, m = compact(value), compact(masked)
    if kind == "email":
        local = v.split("@")[0]
        return v in m or (len(local) >= 3 and local + "@" in m) or (len(local) >= 5 and local in m)
    if kind == "name":
        return v in m
    if kind == "address":
        return _longest_common_run(v, m) >= max(4, (len(v) + 1) // 2)
    raise ValueError(f"unknown PII kind {kind!r} (one of {', '.join(KINDS)})")


def score(rows: list[dict], mask=mask_pii) -> dict:
    """Recall per kind, over-masked ``keep`` items, false-positive messages; ``cases`` lists every leak and
    over-mask (text, masked text, what) for a reader — not for metrics files, the texts hold the values."""
    found, total = defaultdict(int), defaultdict(int)
    keep_n = keep_lost = neg_n = neg_fp = 0
    cases = []
    for r in rows:
        masked = mask(r["text"])
        for p in r["pii"]:
            total[p["kind"]] += 1
            if leaked(p["kind"], p["value"], masked):
                cases.append({"what": f"leak:{p['kind']}", "value": p["value"], "text": r["text"], "masked": masked})
            else:
                found[p["kind"]] += 1
        for k in r.get("keep", []):
            keep_n += 1
            if compact(k) not in compact(masked):
                keep_lost += 1
                cases.append({"what": "over-masked", "value": k, "text": r["text"], "masked": masked})
        if not r["pii"]:
            neg_n += 1
            if any(tag in masked for tag in PII_TAGS.values()) and not any(t in r["text"] for t in PII_TAGS.values()):
                neg_fp += 1
                cases.append({"what": "false-positive", "value": "", "text": r["text"], "masked": masked})
    kinds = sorted(total, key=lambda k: (KINDS.index(k) if k in KINDS else len(KINDS), k))
    return {"messages": len(rows), "values": sum(total.values()),
            "recall": _rate(sum(found.values()), sum(total.values())),
            "recall_per_kind": {k: {"n": total[k], "recall": _rate(found[k], total[k])} for k in kinds},
            "keep_items": keep_n, "keep_over_masked": keep_lost, "keep_survival": _rate(keep_n - keep_lost, keep_n),
            "messages_without_pii": neg_n, "false_positive_messages": neg_fp,
            "false_positive_rate": _rate(neg_fp, neg_n), "cases": cases}


def check_rows(rows: list[dict], origin: str) -> None:
    """Every row is well formed: known kinds, values and keep items are substrings of the text."""
    for i, r in enumerate(rows, 1):
        where = f"{origin}:{i}"
        if not isinstance(r.get("text"), str) or not isinstance(r.get("pii"), list):
            raise ValueError(f"{where}: needs a string 'text' and a list 'pii'")
        for p in r["pii"]:
            if p.get("kind") not in KINDS:
                raise ValueError(f"{where}: unknown kind {p.get('kind')!r}")
            if not p.get("value") or p["value"] not in r["text"]:
                raise ValueError(f"{where}: pii value is not a substring of the text")
        for k in r.get("keep", []):
            if k not in r["text"]:
                raise ValueError(f"{where}: keep item {k!r} is not a substring of the text")
