"""Hong Kong, Macau and Taiwan identity card numbers for ``stages.safety.pii.mask_pii`` (session 27; stages/PRIVACY.md),
written from their published formats: the HKID and Taiwan check digits, Macau's bracketed check digit. Called after the
mainland number forms (stages/safety/pii_numbers.py), so "110105 19491231 002X" stays one mainland ID."""
from __future__ import annotations

import re
from collections import Counter

from stages.safety.pii_numbers import _PRODUCT_BEFORE, PII_TAGS

# HKID: one or two letters, six digits, a check digit (0-9 or A), often in brackets: A123456(3), AB987654(9)
_HKID = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{1,2}) ?(\d{6}) ?[(（]?([0-9Aa])[)）]?(?![A-Za-z0-9])")
# Taiwan 身分證統一編號: a letter, 1 / 2 (8 / 9 on residence permits), eight digits with the check digit last
_TWID = re.compile(r"(?<![A-Za-z0-9])([A-Za-z])([1289]\d{8})(?![A-Za-z0-9])")
# Macau BIR: 1 / 5 / 7, six digits and the check digit in brackets: 1234567(8); eight digits after an ID word
_MOID = re.compile(r"(?<![\dA-Za-z])(?:[157]\d{6} ?[(（]\d[)）]|[157]/\d{6}/\d(?!\d))|(?<![\dA-Za-z])[157]\d{7}(?![\dA-Za-z])")
_TW_LETTERS = dict(zip("ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36)))
_ID_CUE = re.compile(r"身份证|身分证|证件|(?<![A-Za-z])(?:HKID|ID|identity)(?![A-Za-z])", re.I)


def valid_hkid(letters: str, digits: str, check: str) -> bool:
    """HKID check digit: weights 9..2 over the two letter places (a single letter counts the first as 36; A = 10 …
    Z = 35) and the six digits; check = (11 − sum mod 11) mod 11, 10 written A."""
    letters = letters.upper()
    values = ([36] if len(letters) == 1 else []) + [ord(c) - 55 for c in letters] + [int(d) for d in digits]
    c = (11 - sum(v * w for v, w in zip(values, range(9, 1, -1))) % 11) % 11
    return ("A" if c == 10 else str(c)) == check.upper()


def valid_twid(letter: str, digits: str) -> bool:
    """Taiwan ID checksum: the letter's code (A = 10 … as issued) as two digits, then the nine digits, weighted
    1 9 8 7 6 5 4 3 2 1 1: the sum is divisible by 10."""
    code = _TW_LETTERS[letter.upper()]
    values = [code // 10, code % 10] + [int(d) for d in digits]
    return sum(v * w for v, w in zip(values, (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1))) % 10 == 0


def mask_regional_ids(text: str, counts: Counter) -> str:
    """Hong Kong, Taiwan and Macau identity card numbers as [身份证号]: with a valid check digit anywhere, or after
    an ID word (身份證 / 身分證 / 證件 / HKID / ID) up to 12 characters before (a mistyped check digit is still the
    ID); Macau's in its bracketed form anywhere. Not a product's number (型号…, 批号…)."""
    def cued(m) -> bool:
        return bool(_ID_CUE.search(text[max(0, m.start() - 12):m.start()]))

    def product(m) -> bool:
        return bool(_PRODUCT_BEFORE.search(text[max(0, m.start() - 8):m.start()]))

    def masker(valid):          # replace a match that is no product's number and is valid or after an ID word
        def repl(m):
            if product(m) or not (valid(m) or cued(m)):
                return m.group(0)
            counts["id"] += 1
            return PII_TAGS["id"]
        return repl

    text = _TWID.sub(masker(lambda m: valid_twid(m.group(1), m.group(2))), text)
    text = _HKID.sub(masker(lambda m: valid_hkid(m.group(1), m.group(2), m.group(3))), text)
    return _MOID.sub(masker(lambda m: bool(re.search(r"[(（/]", m.group(0)))), text)
