"""Exact duplicate keys, record ids, and the in-memory MinHash-LSH clusters (datasketch) that the split
stage uses to keep paraphrased questions in one split. The clean stage's corpus-scale dedup is
stages/data/dupkeys.py + stages/data/neardup.py (datatrove, on disk)."""
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

