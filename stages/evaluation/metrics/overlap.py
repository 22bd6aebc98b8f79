"""N-gram overlap metrics that work on Chinese.

rouge-score's default tokenizer keeps only ``[a-z0-9]`` runs, so every Chinese text scores 0; we pass
our own tokenizers: one token per character (the usual Chinese ROUGE) and jieba words. Whitespace and
punctuation are dropped so "，。" matches do not inflate scores. BLEU uses sacrebleu's ``zh`` tokenizer
(CJK characters split, other runs kept as words); chrF is character n-gram F-score (β=2). All scores
are on a 0–100 scale. BLEU and chrF are corpus-level (computed over a whole group of answers), ROUGE is
the mean of per-answer F-measures."""
from __future__ import annotations

import logging
import unicodedata
from functools import lru_cache

from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _keep(token: str) -> bool:
    return any(not (c.isspace() or unicodedata.category(c).startswith("P")) for c in token)


class CharTokenizer:
    """One token per non-space, non-punctuation character (Latin lower-cased)."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text.lower() if _keep(c)]


class JiebaTokenizer:
    """jieba word segmentation (precise mode), punctuation and whitespace removed."""

    def __init__(self):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._cut = jieba.lcut

    def tokenize(self, text: str) -> list[str]:
        return [w for w in self._cut(text.lower()) if _keep(w)]


TOKENIZERS = {"char": CharTokenizer, "word": JiebaTokenizer}


@lru_cache(maxsize=4)
def _scorer(kind: str) -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=TOKENIZERS[kind]())


def rouge(prediction: str, reference: str, kind: str = "char") -> dict[str, float]:
    """ROUGE-1/2/L F-measure ×100 for one answer, keys ``rouge1_char`` … ``rougeL_word``."""
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown ROUGE tokenizer {kind!r}; use one of {sorted(TOKENIZERS)}")
    scores = _scorer(kind).score(reference, prediction)  # rouge-score takes (target, prediction)
    return {f"{t}_{kind}": 100.0 * scores[t].fmeasure for t in ROUGE_TYPES}


def corpus_bleu(predictions: list[str], references: list[str]) -> float:
    from sacrebleu.metrics import BLEU

    _check(predictions, references)
    return float(BLEU(tokenize="zh").corpus_score(predictions, [references]).score)


def corpus_chrf(predictions: list[str], references: list[str]) -> float:
    from sacrebleu.metrics import CHRF

    _check(predictions, references)
    return float(CHRF().corpus_score(predictions, [references]).score)


def _check(predictions: list[str], references: list[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions vs {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
