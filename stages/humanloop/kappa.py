"""Inter-rater agreement with statsmodels' implementations: Cohen's κ for each reviewer pair,
Fleiss' κ over all reviewers, plus raw percent agreement. A κ whose chance agreement is 1 (every
rating in one category) is undefined and reported as None."""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa, to_table


def _codes(ratings: list[list[str]], labels: list[str]) -> np.ndarray:
    index = {lab: i for i, lab in enumerate(labels)}
    return np.array([[index[r] for r in item] for item in ratings], dtype=int)


def _finite(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, 4)


def cohen(a: list[str], b: list[str], labels: list[str]) -> float | None:
    """Cohen's κ of two raters over the same items (statsmodels ``cohens_kappa`` on the k×k table)."""
    if len(a) != len(b) or not a:
        raise ValueError("cohen: both raters must rate the same, non-empty list of items")
    table, _ = to_table(_codes([list(p) for p in zip(a, b)], labels), bins=len(labels))
    if table.sum() == 0:
        return None
    pe = float((table.sum(0) * table.sum(1)).sum()) / table.sum() ** 2
    if pe >= 1:
        return None
    return _finite(cohens_kappa(table, return_results=False))


def fleiss(ratings: list[list[str]], labels: list[str]) -> float | None:
    """Fleiss' κ: ``ratings[item]`` holds every rater's label for that item (same count per item)."""
    if not ratings or len({len(r) for r in ratings}) != 1 or len(ratings[0]) < 2:
        raise ValueError("fleiss: every item needs the same number (>= 2) of ratings")
    codes = _codes(ratings, labels)
    counts = np.stack([np.bincount(row, minlength=len(labels)) for row in codes])
    p = counts.sum(0) / counts.sum()
    if (p ** 2).sum() >= 1:
        return None
    return _finite(fleiss_kappa(counts, method="fleiss"))


def agreement(by_rater: dict[str, list[str]], labels: list[str]) -> dict:
    """κ report for raters' labels over the same items (lists aligned by item)."""
    names = sorted(by_rater)
    pairs = {}
    for x, y in combinations(names, 2):
        same = sum(p == q for p, q in zip(by_rater[x], by_rater[y]))
        pairs[f"{x}|{y}"] = {"cohen_kappa": cohen(by_rater[x], by_rater[y], labels),
                             "percent_agreement": round(same / len(by_rater[x]), 4)}
    items = list(zip(*(by_rater[n] for n in names)))
    return {"labels": list(labels), "pairs": pairs,
            "fleiss_kappa": fleiss([list(i) for i in items], labels) if len(names) >= 2 else None,
            "all_agree": round(sum(len(set(i)) == 1 for i in items) / len(items), 4) if items else None}
