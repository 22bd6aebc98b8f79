"""Medical term accuracy: dictionary terms (canonical forms from the term file, synonyms folded)
mentioned in an answer vs those in the reference. Per answer we keep the counts; groups are
micro-averaged (precision = Σ matched / Σ predicted terms, recall = Σ matched / Σ reference terms)."""
from __future__ import annotations

from stages.data.text import TermDict


def term_match(terms: TermDict, prediction: str, reference: str) -> dict:
    pred, ref = terms.terms_in(prediction), terms.terms_in(reference)
    return {"matched": len(pred & ref), "predicted": len(pred), "reference": len(ref),
            "missed": sorted(ref - pred), "extra": sorted(pred - ref)}
