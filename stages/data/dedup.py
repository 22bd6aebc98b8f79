"""Duplicate detection: exact keys and MinHash-LSH near-duplicate clusters (datasketch)."""
from __future__ import annotations

import hashlib
import re

from datasketch import MinHash, MinHashLSH

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def dedup_key(*texts: str) -> str:
    """Key for exact duplicates: case-folded, punctuation and whitespace removed."""
    return hashlib.sha1("\x1f".join(_PUNCT.sub("", t).casefold() for t in texts).encode("utf-8")).hexdigest()


def content_id(question: str, answer: str) -> str:
    return hashlib.sha1(f"{question}\x1f{answer}".encode("utf-8")).hexdigest()[:16]


def shingles(text: str, k: int) -> set[bytes]:
    t = _PUNCT.sub("", text).casefold()
    if len(t) <= k:
        return {t.encode("utf-8")}
    return {t[i:i + k].encode("utf-8") for i in range(len(t) - k + 1)}


def minhash(text: str, num_perm: int, k: int) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch(list(shingles(text, k)))
    return m


class NearDupIndex:
    """Incremental near-duplicate finder: ``query_add(key, text)`` returns the first earlier key whose
    estimated Jaccard similarity ≥ threshold (and then does not add), else adds and returns None."""

    def __init__(self, threshold: float, num_perm: int = 128, k: int = 3):
        self.threshold, self.num_perm, self.k = threshold, num_perm, k
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.sigs: dict[str, MinHash] = {}

    def query_add(self, key: str, text: str) -> str | None:
        m = minhash(text, self.num_perm, self.k)
        best, best_sim = None, -1.0
        for cand in self.lsh.query(m):
            sim = m.jaccard(self.sigs[cand])
            if sim >= self.threshold and (sim > best_sim or (sim == best_sim and cand < best)):
                best, best_sim = cand, sim
        if best is not None:
            return best
        self.lsh.insert(key, m)
        self.sigs[key] = m
        return None


def clusters(keys: list[str], texts: list[str], threshold: float, num_perm: int = 128, k: int = 3) -> dict[str, str]:
    """Union-find clusters of near-duplicate texts; returns key → cluster representative (smallest key)."""
    parent = {key: key for key in keys}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    if threshold < 1.0 and keys:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        sigs = {}
        for key, text in zip(keys, texts):
            m = minhash(text, num_perm, k)
            for cand in lsh.query(m):
                if m.jaccard(sigs[cand]) >= threshold:
                    a, b = find(key), find(cand)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
            lsh.insert(key, m)
            sigs[key] = m
    return {key: find(key) for key in keys}

