"""What counts as a duplicate QA pair: the keys and MinHash-LSH band signature used by the clean stage.

A pair is a near-duplicate of another when one side is the same after normalisation and the other
side is similar (tuned on the labelled set of stages/data/noise.py; bench/dedup_quality.py):

- **core** of a text: case-folded, traditional → simplified (OpenCC t2s), punctuation and whitespace
  removed (full/half width is already folded by ``text.normalize``). A question's core also drops
  trailing courtesy phrases and the numbers after them (``，谢谢12``, ``麻烦了``, ``在线等``).
- family A (answer-focused): same question core, answer character ``answer_shingle_chars``-grams similar.
  ``answer_bands`` bands of ``rows`` MinHashes, each band prefixed with the question-core hash.
- family B: same answer core, question character ``question_shingle_chars``-grams similar
  (``question_bands`` bands, prefixed with the answer-core hash).

Why not plain Jaccard on question+answer: noisy copies of short pairs (a suffix on the question and a
~10-character insertion in the answer) fall to 0.4-0.85, while the same question about another
disease (one term swapped in a long pair) stays at 0.9-0.98; requiring one side to match after
normalisation separates the two. Probability that a pair with similarity ``s`` on the varying side
collides in some band: ``1 - (1 - s**rows) ** bands`` (defaults: 0.5 → 0.65, 0.7 → 0.99, 0.3 → 0.12).

Exact duplicates (``dedup.dedup_key``) give identical bands, so they always share a cluster."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from xxhash import xxh64_intdigest

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_COURTESY_TAIL = re.compile(r"(?:(?:谢谢|多谢|感谢)(?:医生|大夫|您|你|了)?|麻烦(?:您|你)?了|在线等|急|\d)+$")
_PRIME = np.uint64((1 << 61) - 1)
SEP = "\x1f"


@dataclass(frozen=True)
class BandConfig:
    rows: int = 4
    answer_bands: int = 16
    question_bands: int = 8
    answer_shingle_chars: int = 4
    question_shingle_chars: int = 3
    near: bool = True          # False: exact duplicates only (one band: the exact key)
    seed: int = 1

    @property
    def num_buckets(self) -> int:
        return self.answer_bands + self.question_bands if self.near else 1

    @property
    def hashes_per_bucket(self) -> int:
        return self.rows + 1


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def core(text: str) -> str:
    return _t2s().convert(_PUNCT.sub("", text).casefold())


def question_core(text: str) -> str:
    c = core(text)
    return _COURTESY_TAIL.sub("", c) or c


def dedup_text(question: str, answer: str) -> str:
    """The text the signature step reads: ``question core SEP answer core``."""
    return f"{question_core(question)}{SEP}{core(answer)}"


def _h(s: str) -> int:
    return xxh64_intdigest(s.encode("utf-8")) % int(_PRIME)


@lru_cache(maxsize=8)
def _params(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.RandomState(seed)
    return (gen.randint(1, _PRIME, dtype=np.uint64, size=(1, n)), gen.randint(0, _PRIME, dtype=np.uint64, size=(1, n)))


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def gram_hashes(text: str, k: int) -> np.ndarray:
    """64-bit hashes of the character k-grams of text (a polynomial over code points, splitmix64-mixed),
    vectorised; repeated grams repeat (MinHash of a multiset equals MinHash of its set)."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(cps) < k:
        k = max(1, len(cps))
        if not len(cps):
            cps = np.zeros(1, dtype=np.uint64)
    n = len(cps) - k + 1
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * np.uint64(1_000_003) + cps[j:j + n]
        h ^= h >> np.uint64(30)
        h *= _MIX1
        h ^= h >> np.uint64(27)
        h *= _MIX2
        h ^= h >> np.uint64(31)
    return h % _PRIME


def minhashes(text: str, k: int, n: int, seed: int) -> np.ndarray:
    """n MinHash values of the character k-gram set of text (datatrove's universal-hash scheme)."""
    a, b = _params(n, seed)
    with np.errstate(over="ignore"):
        return ((gram_hashes(text, k).reshape(-1, 1) * a + b) % _PRIME).min(axis=0)


def bands(text: str, cfg: BandConfig) -> list[list[int]]:
    """The LSH band signature of a ``dedup_text``: ``num_buckets`` lists of ``rows + 1`` ints."""
    if not cfg.near:                  # text is the exact key: one band, equal iff the keys are equal
        return [[_h(text)] + [0] * cfg.rows]
    q, _, a = text.partition(SEP)
    qh, ah = _h("q" + q), _h("a" + a)
    am = minhashes(a, cfg.answer_shingle_chars, cfg.answer_bands * cfg.rows, cfg.seed).tolist()
    qm = minhashes(q, cfg.question_shingle_chars, cfg.question_bands * cfg.rows, cfg.seed + 1).tolist()
    r = cfg.rows
    return ([[qh] + am[i * r:(i + 1) * r] for i in range(cfg.answer_bands)]
            + [[ah] + qm[i * r:(i + 1) * r] for i in range(cfg.question_bands)])
