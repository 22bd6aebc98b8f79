"""LRU + TTL answer cache, keyed on the normalised (PII-masked) question and the generation params.

Decoding is greedy, so (question, max_new_tokens) fully determines the model's answer for a given
model — that is what makes caching answers correct. The cache lives in the API-server process
(in front of the batching queue), so a hit never waits for a batch; ``serve`` runs one API-server
process so every request sees the same cache."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0


class AnswerCache:
    """``max_size`` 0 disables the cache; ``ttl_s`` 0 means entries never expire."""

    def __init__(self, max_size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        if max_size < 0 or ttl_s < 0:
            raise ValueError("cache size and ttl must be >= 0")
        self.max_size = max_size
        self.ttl_s = ttl_s
        self._clock = clock
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_size > 0

    @staticmethod
    def key(question: str, max_new_tokens: int) -> tuple:
        return (question, int(max_new_tokens), "greedy")

    def get(self, key: Hashable) -> Any | None:
        if not self.enabled:
            return None
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.stats.misses += 1
                return None
            stored_at, value = item
            if self.ttl_s and self._clock() - stored_at > self.ttl_s:
                del self._data[key]
                self.stats.expirations += 1
                self.stats.misses += 1
                return None
            self._data.move_to_end(key)
            self.stats.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._data[key] = (self._clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)
                self.stats.evictions += 1

    def __len__(self) -> int:
        return len(self._data)
