"""Encoding detection and line decoding for source files, streamed (memory does not grow with file size).

Encodings: UTF-8 with BOM, UTF-8, GB18030 (superset of GBK/GB2312), in that order. When no encoding
decodes every line, the one with fewer undecodable lines is used and the bad lines are rejected.
Per-line decoding equals whole-file decoding here: ``\\n`` is never a trail byte in UTF-8 or GB18030."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

ENCODINGS = ("utf-8", "gb18030")
BOM = b"\xef\xbb\xbf"


def _pick(lines: Iterable[bytes], first: bytes) -> str:
    if first.startswith(BOM):
        return "utf-8-sig"
    bad = dict.fromkeys(ENCODINGS, 0)
    for line in lines:
        for enc in ENCODINGS:
            try:
                line.decode(enc)
            except UnicodeDecodeError:
                bad[enc] += 1
    for enc in ENCODINGS:
        if not bad[enc]:
            return enc
    return min(ENCODINGS, key=lambda e: bad[e])


def sniff_encoding(raw: bytes) -> str:
    """Encoding of an in-memory file (same rule as ``sniff_file``)."""
    return _pick(raw.split(b"\n"), raw)


def sniff_file(path: Path) -> str:
    with open(path, "rb") as f:
        first = f.read(3)
        f.seek(0)
        return _pick(f, first)


def decode_lines(path: Path, source: str, reject) -> Iterator[tuple[int, str | None, object]]:
    """``(line number, text or None, reject or None)`` per physical line; ``reject(origin, source,
    reason, detail)`` builds the rejection for an undecodable line."""
    enc = sniff_file(path)
    with open(path, "rb") as f:
        for n, b in enumerate(f, 1):
            if n == 1 and enc == "utf-8-sig":
                b = b[len(BOM):]
            if b.endswith(b"\n"):
                b = b[:-1]
            try:
                yield n, b.decode("utf-8" if enc == "utf-8-sig" else enc).rstrip("\r"), None
            except UnicodeDecodeError as err:
                yield n, None, reject(f"{path}:{n}", source, "undecodable", f"{enc}: {err.reason} at byte {err.start}")
