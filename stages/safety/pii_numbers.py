"""Numbers for ``stages.safety.pii.mask_pii``: resident IDs, bank cards, mobiles, landlines, international and service
numbers, long record-like numbers, and numbers dictated in Chinese numerals — runs of digit groups classified window
by window (the table in stages/safety/pii.py says which forms; moved here from pii.py in session 24 to keep each module
to one concern). ``PII_TAGS`` (every kind's placeholder) lives here because the number forms use it; pii.py
re-exports it."""
from __future__ import annotations

import re
from collections import Counter

PII_TAGS = {"email": "[邮箱]", "wechat": "[微信号]", "qq": "[QQ号]", "record": "[编号]",
            "passport": "[护照号]", "id": "[身份证号]", "bank": "[银行卡号]", "mobile": "[手机号]",
            "landline": "[电话]", "name": "[姓名]", "address": "[地址]"}

# --- checksums -----------------------------------------------------------------------------------
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _plausible_date(y: int, m: int, d: int) -> bool:
    return 1900 <= y <= 2100 and 1 <= m <= 12 and 1 <= d <= 31


def valid_id_number(s: str) -> bool:
    """Mainland 18-digit resident ID: GB 11643 checksum and a plausible birth date."""
    if not re.fullmatch(r"[1-9]\d{16}[\dXx]", s):
        return False
    total = sum(int(d) * w for d, w in zip(s[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != s[17].upper():
        return False
    return _plausible_date(int(s[6:10]), int(s[10:12]), int(s[12:14]))


def valid_id15(s: str) -> bool:
    """Old 15-digit resident ID: region code (first digit 1-8) and a YYMMDD birth date."""
    return bool(re.fullmatch(r"[1-8]\d{14}", s)) and _plausible_date(1900 + int(s[6:8]), int(s[8:10]), int(s[10:12]))


def luhn_ok(s: str) -> bool:
    digits = [int(c) for c in s][::-1]
    total = 0
    for i, d in enumerate(digits):
        if i % 2:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return total % 10 == 0


# --- numbers: runs of digit groups, classified window by window ----------------------------------
_RUN = re.compile(r"(?<![\d])\d+(?:[ \-.–—()（）]{1,3}\d+)*(?:[Xx](?![A-Za-z]))?")
_GROUP = re.compile(r"\d+[Xx]?")
_PHONE_CONTEXT = re.compile(r"(?:电话|座机|固话|手机|联系|联络|手提|拨打|致电|号码|热线|总机|分机|打给|打俾|打畀|搵我|回电|传真|"
                            r"短信|短讯|(?<![A-Za-z])(?:tel|phone|call|fax|whatsapp|signal|telegram|sms)(?![A-Za-z]))", re.I)
_ID_CONTEXT = re.compile(r"身份证|身分证|证件号|身份号|证号|(?<![A-Za-z])(?:HKID|ID card|ID No)", re.I)
# a long number of a product, not a person: 国药准字H20050123, 国械注准20193070123, 条形码6901234567892
_PRODUCT = (r"(?:准字|健字|注准|注进|注许|械备|备字|批准文号|批号|货号|型号|条形码|商品码|追溯码|监管码|药监码|"
            r"(?<![A-Za-z])(?:EAN|UPC|SN|Model)[:：]?)")
_PRODUCT_BEFORE = re.compile(_PRODUCT + r"[A-Za-z]?[:：]? ?$", re.I)
_PRODUCT_NEAR = re.compile(r"追溯码|监管码|药监码|条形码|商品码|罐底|盒上|包装上")
# a record word near a number without its own label (就诊卡：大宝4180945315，二宝6948440634; 用9151009110这个门诊号)
_RECORD_WORD = re.compile(r"病历|病案|住院号|门诊号|就诊卡|就诊号|医保|社保|体检号|档案号|编号|卡号|登记号|流水号|单号|条码|"
                          r"发票号|检查号|放射号|影像号|CT号|B超号|(?<![A-Za-z])(?:ID|MRN|No\.?)(?![A-Za-z])", re.I)
_RECORD_AFTER = re.compile(r"^[ ]?(?:这个|那个|的|是)?[^，。！？,.!?\d\s]{0,6}?(?:" + _RECORD_WORD.pattern + ")", re.I)
_DATE8 = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
# a case, order or image number of capital letters and digits: ZY00458213, MZ2405170088, CT240312-0458, Z-0395821,
# RIS20240315088 — six digits or more; not a product's (国药准字H20050123, 型号…) (session 24)
_CODE = re.compile(r"(?<![A-Za-z0-9.\-_@])[A-Z]{1,4}-?\d[\d-]*\d(?![A-Za-z0-9_@]|\.\d)")
_BANK_CONTEXT = re.compile(r"银行卡|信用卡|储蓄卡|借记卡|(?<![医保诊社])卡号|账号|帐号|户口(?![本簿所迁登在])")   # 户口: HK account
_ID_SHAPE = re.compile(r"[1-8]\d{5}(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX]")
_YEAR_RANGE = re.compile(r"(?:19|20)\d\d")
_EXTENSION = re.compile(r" ?(?:转|分机|-|(?<![A-Za-z])ext\.?) ?\d{1,6}(?!\d)", re.I)   # 010-62345678转123
# phone and ID numbers dictated in Chinese numerals (一三八零零一三八零零零, 幺三九…), or half digits
_SPOKEN_DIGIT = dict(zip("零〇洞一幺二两三四五六七拐八九叉", "000112234567789X"))   # 拐 = 7, 叉 = an ID's final X
_SPOKEN = re.compile(r"[0-9零〇洞一幺二两三四五六七拐八九Xx](?:[ \-，,、]?[0-9零〇洞一幺二两三四五六七拐八九Xx叉]){7,18}")   # 8+: HK


_ANY_GROUPING = re.compile(r"(?:0086|86)?1[3-9]\d{9}")


def _mobile(digits: str, sizes: list[int], spaced: bool = False) -> bool:
    """11-digit mobile (optionally after 86/0086) written whole or grouped 3-8, 7-4, or three groups of
    3-5 digits (3-4-4, 4-3-4, 3-3-5 …); a range like "13000-150000" is not a phone number."""
    m = re.fullmatch(r"(0086|86|0)?1[3-9]\d{9}", digits)
    if not m:
        return False
    if m.group(1):                            # +86 138…, 86138…: group sizes of the 11-digit part
        cut = len(m.group(1))
        sizes = sizes[1:] if sizes[0] == cut else [sizes[0] - cut, *sizes[1:]]
    if any(n < 3 for n in sizes[:-1]):        # the caller only passes these for a whole run (see _mask_numbers)
        return True
    if len(sizes) == 2:                       # 138 12345678, 1381234-5678; split elsewhere only by a space
        return sizes in ([3, 8], [7, 4]) or (spaced and min(sizes) >= 3)      # (157477 92466; not 13000-150000)
    return len(sizes) == 1 or (len(sizes) == 3 and all(3 <= n <= 5 for n in sizes))


def _classify(digits: str, sizes: list[int], before: str, dotted: bool, spaced: bool = False,
              intl: bool = False) -> str | None:
    """The PII kind of a window of digit groups (``digits`` = the groups joined, ``sizes`` their
    lengths), or None. Dotted groups ("10.052196.5830…" lab values) can only be a mobile (138.1234.5678).
    ``intl``: the window follows a "+"."""
    n = len(digits)
    if dotted:       # a Hong Kong number after a phone word may be dotted too (phone: 5431.5762; session 27)
        if _mobile(digits, sizes):
            return "mobile"
        return "landline" if sizes == [4, 4] and _PHONE_CONTEXT.search(before) else None
    if n == 18 and (valid_id_number(digits) or _ID_SHAPE.fullmatch(digits)):     # a mistyped check digit too
        return "id"
    if 14 <= n <= 19 and _ID_CONTEXT.search(before):       # 15 or 18, or an ID mistyped by a digit (session 24)
        return "id"
    if "X" in digits.upper():
        return None
    if n == 15 and valid_id15(digits):
        return "id"
    # bank cards are written whole or in groups of four
    if 16 <= n <= 19 and luhn_ok(digits) and all(k == 4 for k in sizes[:-1]):
        return "bank"
    if 12 <= n <= 19 and _BANK_CONTEXT.search(before):
        return "bank"
    if _mobile(digits, sizes, spaced):
        return "mobile"
    # an international number: "+" or "00", a country code, 8-15 digits in all (E.164): +852 9123 4567,
    # +886 912 345 678, 00853 6612 3456
    if (intl and 8 <= n <= 15) or (re.match(r"00[1-9]", digits) and 10 <= n <= 17 and len(sizes) > 1):
        return "landline"
    # a country code written without "+" or "00" but apart (852-9123-4567, (852) 91234567, 853 6612 3456,
    # 886-912-345-678): Hong Kong and Macau numbers have 8 digits, Taiwan's 8-9 after the code (session 27)
    if len(sizes) > 1 and sizes[0] == 3 and re.fullmatch(r"85[23][2-9]\d{7}|886[2-9]\d{7,8}", digits):
        return "landline"
    if re.fullmatch(r"[48]00\d{7}", digits) and len(sizes) <= 3 and sizes[0] in (3, 4, n):
        return "landline"           # 400-123-4567, 4001234567; not a range "每天40000-10000ml" (session 28)
    # area code 0xx(x) then a 7-8 digit local number, whole or in two groups
    if re.fullmatch(r"0[1-9]\d{1,2}[2-9]\d{6,7}", digits) and sizes[0] in (3, 4, n) and len(sizes) <= 3:
        return "landline"
    if re.fullmatch(r"[2-9]\d{6,7}", digits) and len(sizes) <= 2 and (_PHONE_CONTEXT.search(before)
                                                                      or re.search(r"(?:打|拨)$", before)):
        if len(sizes) == 2 and all(_YEAR_RANGE.fullmatch(g) for g in (digits[:sizes[0]], digits[sizes[0]:])):
            return None
        return "landline"
    return None


def _record_word_near(text: str, start: int, end: int, reach: int) -> bool:
    """A record word up to ``reach`` characters before ``text[start:end]`` or right after it ("…这个门诊号")."""
    return bool(_RECORD_WORD.search(text[max(0, start - reach):start]) or _RECORD_AFTER.match(text[end:end + 12]))


def _long_number(text: str, start: int, end: int, after_record: bool = False) -> tuple[int, str] | None:
    """A lone run of digits no form above took: 15 digits or more is somebody's number (an insurance or member
    number, an ID mistyped beyond recognition); 10–14 digits with a record word up to 24 characters before it or
    right after it; 6–9 digits (not a date) with one up to 12 characters before, right after it, or right after
    another record number (a list: 就诊卡号分别是：100238761（我）、100238762（我老婆）). Not a product's number (国械注准…,
    条形码…, 追溯码…). Session 24."""
    digits = text[start:end]
    if not digits.isdigit() or len(digits) < 6 or (start and text[start - 1].isascii() and text[start - 1].isalpha()):
        return None
    if _PRODUCT_BEFORE.search(text[max(0, start - 8):start]) or _PRODUCT_NEAR.search(text[max(0, start - 24):start]):
        return None
    if len(digits) >= 15 or (len(digits) >= 10 and _record_word_near(text, start, end, 24)):
        return (1, "record")
    if len(digits) >= 10 or (len(digits) == 8 and _DATE8.fullmatch(digits)):
        return None
    if _record_word_near(text, start, end, 12) or after_record or "[编号]" in text[max(0, start - 12):start]:
        return (1, "record")
    return None


def mask_codes(text: str, counts: Counter) -> str:
    """Case, order and image numbers of capital letters and 6+ digits (``_CODE``), as [编号], where a record word
    stands up to 24 characters before, right after, or another such number just before (a list: 病历号、住院号我都有：
    BL0032218，ZY2021004567) — "检查结果是CG14892599" alone is not one."""
    last = [-100]

    def repl(m):
        code, start = m.group(0), m.start()
        if sum(c.isdigit() for c in code) < 6 or code.count("-") > 2 \
                or _PRODUCT_BEFORE.search(text[max(0, start - 8):start]):
            return code
        near = (_record_word_near(text, start, m.end(), 24) or "[编号]" in text[max(0, start - 12):start]
                or start - last[0] <= 12)
        if not near:
            return code
        last[0] = m.end()
        counts["record"] += 1
        return PII_TAGS["record"]
    return _CODE.sub(repl, text)


def _mask_numbers(text: str, counts: Counter) -> str:
    out, last, last_record = [], 0, -1
    for run in _RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start(), m.group(0)) for m in _GROUP.finditer(run.group(0))]
        i = 0
        while i < len(groups):
            found = None
            top = len(groups) if i == 0 and len(groups) <= 13 else min(len(groups), i + 6)   # 13: "+86 1 3 8 …"
            for j in range(top, i, -1):      # longest window first
                window = [g[2] for g in groups[i:j]]
                # every group but the last has >= 3 digits; a leading country code 86 is allowed — except
                # a whole run of digits that is exactly a mobile number, in any grouping ("1 3 8 1 2 …",
                # "13 81 23 45 678"): a run that is nothing else but the 11 digits is dictated, not a lab series
                intl = text[groups[i][0] - 1:groups[i][0]] == "+"
                short = not intl and any(len(g) < 3 and not (k == 0 and g == "86") for k, g in enumerate(window[:-1]))
                whole = i == 0 and j == len(groups) and "." not in run.group(0)
                # dictated digit by digit after a phone word: 电话 9 7 5 2 8 8 9 2 (an 8-digit Hong Kong number; session 27)
                dictated = short and whole and len("".join(window)) == 8 and _PHONE_CONTEXT.search(
                    text[max(0, groups[0][0] - 12):groups[0][0]])
                if short and not (whole and _ANY_GROUPING.fullmatch("".join(window))) and not dictated:
                    continue
                if any(g[-1] in "Xx" for g in window[:-1]):
                    continue
                start = groups[i][0]
                before = text[max(0, start - 12):start].rsplit("\n", 1)[-1]
                dotted = "." in text[groups[i][0]:groups[j - 1][1]]
                spaced = not re.search(r"[^\d ]", text[groups[i][0]:groups[j - 1][1]])
                sizes = [len("".join(window))] if dictated else [len(g) for g in window]
                kind = _classify("".join(window), sizes, before, dotted, spaced, intl)
                if kind:
                    found = (j, kind)
                    break
            if found is None and len(groups) == 1:
                found = _long_number(text, groups[0][0], groups[0][1],
                                     after_record=last_record >= 0 and 0 <= groups[0][0] - last_record <= 12)
            if found is None:
                i += 1
                continue
            j, kind = found
            start, end = groups[i][0], groups[j - 1][1]
            while start > last and text[start - 1] in "+(（":
                start -= 1
            ext = _EXTENSION.match(text, end) if kind == "landline" else None
            end = ext.end() if ext else end
            out.append(text[last:start] + PII_TAGS[kind])
            counts[kind] += 1
            last = end
            last_record = end if kind == "record" else last_record
            i = j
            while i < len(groups) and groups[i][0] < last:      # an extension in the same run
                i += 1
    out.append(text[last:])
    return "".join(out)


def _mask_spoken_numbers(text: str, counts: Counter) -> str:
    """Numbers written (partly) in Chinese numerals, classified like digits written whole."""
    def repl(m):
        run = m.group(0)
        if not any(c in _SPOKEN_DIGIT for c in run):
            return run
        before = text[max(0, m.start() - 12):m.start()]
        # the whole run, or — when the run went on past a comma or space into the next words ("…424九7，幺是一啊"
        # took "，幺") — the longest head that ends before such a separator (session 24)
        cuts = [len(run)] + [k for k in range(len(run) - 1, 10, -1) if run[k] in " -，,、"]
        for cut in cuts:
            digits = "".join(_SPOKEN_DIGIT.get(c, c) for c in run[:cut] if c not in " -，,、").upper()
            kind = _classify(digits, [len(digits)], before, dotted=False)
            if kind is not None:
                counts[kind] += 1
                return PII_TAGS[kind] + run[cut:]
        return run
    return _SPOKEN.sub(repl, text)
