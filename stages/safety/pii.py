"""PII masking: THE one function (``mask_pii``) every stored or logged text goes through — clean
(qa.jsonl and rejected.jsonl), the audit log and serving (stages/data/text.py re-exports it). Text is
normalised first (``stages.data.text.normalize``), so zero-width characters, full-width digits/＠ or ideographic spaces
cannot hide a number. Each form is replaced by a typed placeholder; the label before it is kept.

| form | examples | placeholder |
| --- | --- | --- |
| email (incl. full-width ＠) | zhang.san@example.com, zhangsan＠qq.com | [邮箱] |
| WeChat id | 微信号：wxid_abc123, vx: zhang_san88, 加我微信 13812345678 | [微信号] |
| QQ number | QQ号：123456789, 扣扣 88886666 | [QQ号] |
| record number | 病历号/病案号/住院号/门诊号/医保卡号/就诊卡号/社保卡号：ZY20230001, 1234 5678 9012 | [编号] |
| passport / travel permit | 护照号 E12345678, EA1234567, G12345678 | [护照号] |
| resident ID, 18 digits | 11010519491231002X, 110105 19491231 002X (checksum + birth date) | [身份证号] |
| resident ID, 15 digits | 110105491231002 (region + birth date) | [身份证号] |
| ID after 身份证 | any 15–18 digits/X after 身份证(号) | [身份证号] |
| bank card | 16–19 digits passing Luhn, any grouping; 12–19 digits after 银行卡/卡号 | [银行卡号] |
| mobile | 13812345678, 138 1234 5678, 1381-234-5678, 138.1234.5678, +86 138…, 0086-138…; in Chinese numerals 一三八零零…, 幺三九… (also IDs, landlines) | [手机号] |
| landline with area code | 010-62345678, (0755) 8888 6666, （010）62345678; an extension (转123, -123, 分机 12) goes with it | [电话] |
| landline without area code | 电话/座机/固话/联系/拨打/热线… then 6234 5678 or 62345678 | [电话] |
| service numbers | 400-123-4567, 800 810 8888 | [电话] |
| name | 我叫/我是/我姓/患者/病人/姓名：/患者姓名：/联系人 + 2–4-character name; 我妈叫/孩子名叫/他叫… + surname and 1–2 characters | [姓名] |
| address | 住在/地址/家住… + 省/市/区/县/镇/路/街/号/栋/单元/室…; 建国路88号3栋2单元301室 | [地址] |

Numbers may be grouped by spaces, ``-``, ``.``, en/em dashes (each group but the last at least 3
digits, so lab series like "13.5 12.3 14.1" never combine into a phone number). Not masked: blood
pressure 140/90, glucose 7.8, doses, dates (2023-01-15, 20230115 without a phone label), ages,
temperatures, ranges like 3000-4000ml, times."""
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


# --- labelled forms (the label is kept, the value masked) ----------------------------------------
_LABEL_SEP = r"[ ]?(?:[:：=]|是|为)?[ ]?"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+ ?@ ?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_WECHAT = re.compile(r"((?:微信|威信|薇信|(?<![A-Za-z])(?:vx|wx|v信|wechat|weixin)(?![A-Za-z]))(?:号|账号|帐号|ID|id)?"
                     + _LABEL_SEP + r")([A-Za-z][-_A-Za-z0-9]{5,19}|\+?\d{5,13})(?![-_A-Za-z0-9])", re.I)
_QQ = re.compile(r"((?<![A-Za-z])(?:QQ|扣扣)(?:号码|号)?" + _LABEL_SEP + r")([1-9]\d{4,11})(?!\d)", re.I)
_RECORD = re.compile(r"((?:病历|病案|住院|门诊|就诊|医保|社保|体检|挂号)(?:卡)?(?:号码|号|ID|编号)" + _LABEL_SEP
                     + r")([A-Za-z0-9][-A-Za-z0-9]{3,24}(?:[ ]\d{2,8})*)(?![-A-Za-z0-9])")   # "1234 5678 9012"
_PASSPORT_LABEL = re.compile(r"((?:护照|通行证)(?:号码|号)?" + _LABEL_SEP + r")([A-Za-z0-9]{6,12})(?![A-Za-z0-9])")
# mainland passports: E/G + 8 digits, E + letter + 7 digits, diplomatic/service/public D/S/P(E) + 7
_PASSPORT = re.compile(r"(?<![A-Za-z0-9])(?:[EG]\d{8}|E[A-Z]\d{7}|[DSP]E?\d{7})(?![A-Za-z0-9])")

# --- numbers: runs of digit groups, classified window by window ----------------------------------
_RUN = re.compile(r"(?<![\d])\d+(?:[ \-.–—()（）]{1,3}\d+)*(?:[Xx](?![A-Za-z]))?")
_GROUP = re.compile(r"\d+[Xx]?")
_PHONE_CONTEXT = re.compile(r"(?:电话|座机|固话|手机|联系|拨打|致电|号码|热线|总机|分机|打给|回电|传真|"
                            r"(?<![A-Za-z])(?:tel|phone|call|fax)(?![A-Za-z]))", re.I)
_ID_CONTEXT = re.compile(r"身份证|证件号")
_BANK_CONTEXT = re.compile(r"银行卡|信用卡|储蓄卡|借记卡|(?<![医保诊社])卡号|账号|帐号")
_YEAR_RANGE = re.compile(r"(?:19|20)\d\d")
_EXTENSION = re.compile(r" ?(?:转|分机|-|(?<![A-Za-z])ext\.?) ?\d{1,6}(?!\d)", re.I)   # 010-62345678转123
# phone and ID numbers dictated in Chinese numerals (一三八零零一三八零零零, 幺三九…), or half digits
_SPOKEN_DIGIT = dict(zip("零〇洞一幺二两三四五六七八九", "00011223456789"))
_SPOKEN = re.compile(r"[0-9零〇洞一幺二两三四五六七八九Xx](?:[ \-，,、]?[0-9零〇洞一幺二两三四五六七八九Xx]){10,18}")


def _mobile(digits: str, sizes: list[int]) -> bool:
    """11-digit mobile (optionally after 86/0086) written whole or grouped 3-8, 7-4, or three groups of
    3-5 digits (3-4-4, 4-3-4, 3-3-5 …); a range like "13000-150000" is not a phone number."""
    m = re.fullmatch(r"(0086|86|0)?1[3-9]\d{9}", digits)
    if not m:
        return False
    if m.group(1):                            # +86 138…, 86138…: group sizes of the 11-digit part
        cut = len(m.group(1))
        sizes = sizes[1:] if sizes[0] == cut else [sizes[0] - cut, *sizes[1:]]
    return len(sizes) == 1 or sizes in ([3, 8], [7, 4]) or (len(sizes) == 3 and all(3 <= n <= 5 for n in sizes))


def _classify(digits: str, sizes: list[int], before: str, dotted: bool) -> str | None:
    """The PII kind of a window of digit groups (``digits`` = the groups joined, ``sizes`` their
    lengths), or None. Dotted groups ("10.052196.5830…" lab values) can only be a mobile (138.1234.5678)."""
    n = len(digits)
    if dotted:
        return "mobile" if _mobile(digits, sizes) else None
    if n == 18 and valid_id_number(digits):
        return "id"
    if n in (15, 18) and _ID_CONTEXT.search(before):
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
    if _mobile(digits, sizes):
        return "mobile"
    if re.fullmatch(r"[48]00\d{7}", digits) and len(sizes) <= 3:
        return "landline"
    # area code 0xx(x) then a 7-8 digit local number, whole or in two groups
    if re.fullmatch(r"0[1-9]\d{1,2}[2-9]\d{6,7}", digits) and sizes[0] in (3, 4, n) and len(sizes) <= 3:
        return "landline"
    if re.fullmatch(r"[2-9]\d{6,7}", digits) and len(sizes) <= 2 and _PHONE_CONTEXT.search(before):
        if len(sizes) == 2 and all(_YEAR_RANGE.fullmatch(g) for g in (digits[:sizes[0]], digits[sizes[0]:])):
            return None
        return "landline"
    return None


def _mask_numbers(text: str, counts: Counter) -> str:
    out, last = [], 0
    for run in _RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start(), m.group(0)) for m in _GROUP.finditer(run.group(0))]
        i = 0
        while i < len(groups):
            found = None
            for j in range(min(len(groups), i + 6), i, -1):      # longest window first
                window = [g[2] for g in groups[i:j]]
                # every group but the last has >= 3 digits; a leading country code 86 is allowed
                if any(len(g) < 3 and not (k == 0 and g == "86") for k, g in enumerate(window[:-1])):
                    continue
                if any(g[-1] in "Xx" for g in window[:-1]):
                    continue
                start = groups[i][0]
                before = text[max(0, start - 12):start].rsplit("\n", 1)[-1]
                dotted = "." in text[groups[i][0]:groups[j - 1][1]]
                kind = _classify("".join(window), [len(g) for g in window], before, dotted)
                if kind:
                    found = (j, kind)
                    break
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
        digits = "".join(_SPOKEN_DIGIT.get(c, c) for c in run if c not in " -，,、").upper()
        kind = _classify(digits, [len(digits)], text[max(0, m.start() - 12):m.start()], dotted=False)
        if kind is None:
            return run
        counts[kind] += 1
        return PII_TAGS[kind]
    return _SPOKEN.sub(repl, text)


# --- names ---------------------------------------------------------------------------------------
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
            "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
            "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮"
            "柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古"
            "吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇"
            "桑郎甄丛仲虞敖巩明佘池查麻苑迟邝")
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
                     "司徒", "夏侯", "令狐", "端木", "西门", "南宫", "独孤", "轩辕", "呼延")
# characters that do not occur in a given name but do in phrases after 我是/患者 ("我是高血压患者")
_NOT_NAME = set("的了是在有不没很也都就要会能还被吗呢吧啊呀么什怎多少个岁年日周病症炎痛疼癌瘤药科医院患者护"
                "胃肝肾肺脑腿胸腹背腰咳嗽冒烧血压糖尿检查治疗术吃喝睡说去来看到给让把对从这那他她它们你我每次孩"
                "儿妈爸爷奶姐哥弟妹婆家人友事省市县区镇乡村路街号已经刚最近因所但候里外过得着想觉坏太需用做名叫姓")
_SURNAME = "(?:" + "|".join(COMPOUND_SURNAMES) + f"|[{SURNAMES}])"
_NAME_CHAR = "[^" + "".join(sorted(_NOT_NAME)) + r"\W\da-zA-Z_]"
_BOUNDARY = r"[^\u4e00-\u9fa5]|男|女|今年|岁|$"      # a name ends at a non-Chinese character or these
# labelled: any 2-4-character name; 我叫/我的名字 also need a surname (or 小/阿) so "我叫救护车" is not one
_LABELLED = re.compile(r"((?:本人姓名|患者姓名|病人姓名|家属姓名|联系人|姓名)[:：]? ?)(" + _NAME_CHAR + "{2,4})"
                       r"(?=" + _BOUNDARY + r"|的|在|来自|住|电话|手机|身份证|患有|得了|有|因)")
_SELF = re.compile(r"((?:我叫|我的名字(?:是|叫))[:：]? ?)((?:" + _SURNAME + "|[小阿])" + _NAME_CHAR + "{1,3})"
                   r"(?=" + _BOUNDARY + r"|的|在|来自|住|电话|手机|身份证|患有|得了|有|因)")
# "我是/患者/病人" are followed by names less often ("我是高血压患者", "患者康复，"): surname + 1-2
# characters, then for 我是 punctuation/男/女/an age/the end, for 患者/病人 a colon before the name
# or a sex/age right after it ("患者张三，男，45岁")
# occupations and roles whose first character is also a surname ("我是程序员", "我是司机", "我是安全员"):
# not names after 我是 ("我是刘老师" / "我是钱工" — a surname with a title — still are)
_ROLES = ("程序员 安全员 司机 农民 白领 工人 军人 警察 保安 会计 律师 记者 商人 房东 车主 歌手 画家 作家 教练 销售 码农 "
          "高管 文员 职员 店员 柜员 海员 船员 学员 党员 演员 司仪 骑手 车手 全职妈妈 全职太太 上班族 单身 单亲妈妈 "
          "孕妇 产妇 宝妈 新手妈妈 新手爸爸 独生子女 退休工人 退休职工 华侨 留学生 研究生 博士生 本科生 高中生 初中生")
_NOT_ROLE = "(?!(?:" + "|".join(sorted(_ROLES.split(), key=len, reverse=True)) + ")(?:" + _BOUNDARY + "))"
_WEAK = re.compile(r"((?:我是)[:：]? ?)" + _NOT_ROLE + "(" + _SURNAME + _NAME_CHAR + "{1,2})(?=" + _BOUNDARY + ")")
_PATIENT = re.compile(r"((?:患者|病人|患儿)(?:[:：] ?)?)(" + _SURNAME + _NAME_CHAR + "{1,2})"
                      r"(?=[,，、 ]?(?:男|女|\d+岁|今年|\d+个?月))")
_PATIENT_COLON = re.compile(r"((?:患者|病人|患儿)[:：] ?)(" + _SURNAME + _NAME_CHAR + "{1,2})(?=" + _BOUNDARY + ")")
# someone else's name: 我妈叫刘桂英, 孩子名叫王子涵, 我老公的名字是陈建华, 他叫李强
_KIN = ("妈妈 母亲 老妈 爸爸 父亲 老爸 老公 老婆 丈夫 妻子 爱人 媳妇 对象 儿子 女儿 闺女 孩子 宝宝 小孩 爷爷 奶奶 外公 外婆 "
        "姥姥 姥爷 哥哥 姐姐 弟弟 妹妹 婆婆 公公 岳母 岳父 丈母娘 老人 家人 朋友 同事 邻居 室友 同学 妈 爸 他 她")
_OTHER = re.compile(r"((?:" + "|".join(sorted(_KIN.split(), key=len, reverse=True)) + r")(?:的名字(?:是|叫)|名叫|叫做|叫)"
                    r"[:：]? ?)(" + _SURNAME + _NAME_CHAR + "{1,2})"
                    r"(?=" + _BOUNDARY + r"|的|在|来自|住|电话|手机|身份证|患有|得了|有|因)")
_SURNAME_ONLY = re.compile(r"((?:我姓|本人姓|患者姓|病人姓)[:：]? ?)(" + _SURNAME + r")(?![\u4e00-\u9fa5])")


def _mask_names(text: str, counts: Counter) -> str:
    for pattern in (_LABELLED, _SELF, _OTHER, _WEAK, _PATIENT, _PATIENT_COLON, _SURNAME_ONLY):
        text = _labelled("name", pattern, text, counts)
    return text


# --- addresses -----------------------------------------------------------------------------------
_PLACE_CHAR = r"(?:(?![在住是我你他她家的了到去从和与及或离附近旁边对面])[\u4e00-\u9fa5])"
_UNIT = r"(?:省|自治区|市|区|县|镇|乡|街道|村|组|路|街|大道|巷|弄|胡同|小区|花园|公寓|大厦|广场|号楼|号院|号|栋|幢|座|单元|楼|层|室|户)"
_UNIT_RE = re.compile(_UNIT)
_ADDR_LABEL = re.compile(r"((?:家庭住址|家庭地址|住址|地址|家住|住在|居住在|居住地|户籍地|户籍所在地)[:：]? ?)"
                         r"((?:[\u4e00-\u9fa5A-Za-z0-9#\-]{0,12}?" + _UNIT + r")+)")
_ADDR_HINT = re.compile(r"(?:路|街|大道|巷|弄)\d+号")
_ADDR = re.compile("(?:" + _PLACE_CHAR + r"{2,6}(?:省|自治区|市))?(?:" + _PLACE_CHAR + r"{1,6}(?:区|县))?"
                   + _PLACE_CHAR + r"{2,8}(?:路|街|大道|巷|弄)\d+号(?:院|楼)?"
                   r"(?:\d+(?:号楼|栋|幢|座))?(?:\d+单元)?(?:\d+(?:楼|层))?(?:\d+(?:室|号|户))?")


def _mask_addresses(text: str, counts: Counter) -> str:
    def labelled(m):
        # "住在重症监护室" is not an address: need a digit or two address units
        if not re.search(r"\d", m.group(2)) and len(_UNIT_RE.findall(m.group(2))) < 2:
            return m.group(0)
        counts["address"] += 1
        return m.group(1) + PII_TAGS["address"]

    def bare(m):
        counts["address"] += 1
        return PII_TAGS["address"]

    text = _ADDR_LABEL.sub(labelled, text)
    return _ADDR.sub(bare, text) if _ADDR_HINT.search(text) else text     # _ADDR is slow to scan


# --- the one function ----------------------------------------------------------------------------
def _labelled(kind: str, pattern: re.Pattern, text: str, counts: Counter) -> str:
    def repl(m):
        counts[kind] += 1
        return m.group(1) + PII_TAGS[kind]
    return pattern.sub(repl, text)


def mask_pii_counts(text: str) -> tuple[str, dict[str, int]]:
    """``mask_pii`` plus how many of each form were masked (for clean metrics and the audit line)."""
    from stages.data.text import normalize  # deferred: text.py re-exports this module

    counts: Counter = Counter()
    text = normalize(text)

    def email(m):
        counts["email"] += 1
        return PII_TAGS["email"]

    text = _EMAIL.sub(email, text)
    text = _labelled("wechat", _WECHAT, text, counts)
    text = _labelled("qq", _QQ, text, counts)
    text = _labelled("record", _RECORD, text, counts)
    text = _labelled("passport", _PASSPORT_LABEL, text, counts)

    def passport(m):
        counts["passport"] += 1
        return PII_TAGS["passport"]

    text = _PASSPORT.sub(passport, text)
    text = _mask_spoken_numbers(text, counts)
    text = _mask_numbers(text, counts)
    text = _mask_names(text, counts)
    text = _mask_addresses(text, counts)
    return text, dict(sorted(counts.items()))


def mask_pii(text: str) -> str:
    """Normalise ``text`` and replace every PII form in the table above by its typed placeholder."""
    return mask_pii_counts(text)[0]
