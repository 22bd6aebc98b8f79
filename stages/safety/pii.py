"""PII masking: THE one function (``mask_pii``) every stored or logged text goes through — clean
(qa.jsonl and rejected.jsonl), the audit log and serving (stages/data/text.py re-exports it). Text is
normalised first (``stages.data.text.normalize``), so zero-width characters, full-width digits/＠ or ideographic spaces
cannot hide a number; text in traditional characters is matched in simplified script and keeps its own script
(``_restore_script``). Each form is replaced by a typed placeholder; the label before it is kept. Names live in
stages/safety/pii_names.py, addresses in stages/safety/pii_address.py, numbers in stages/safety/pii_numbers.py; how well it all works, measured on
independently written messages and real patient text: stages/PRIVACY.md.

| form | examples | placeholder |
| --- | --- | --- |
| email (incl. full-width ＠) | zhang.san@example.com, zhangsan＠qq.com, zhoujie0521@163com, liuyang0706 at 163 dot com; dictated with spaces (z h a n g 1 2 3 at 163 dot com, li.ming @ gmail . com) | [邮箱] |
| WeChat id | 微信号：wxid_abc123, vx: zhang_san88, V：zgq1975, WeChat ID: Tony_Lam, 加我微信 13812345678, 加微信也行xiaoyu_0316, 加dabaoma_xx2021这个微信, wxid_k8f3m2 anywhere, V信chen2019, 卫星lucky_77, xiaomei_88这是我的微信 | [微信号] |
| QQ number | QQ号：123456789, 扣扣 88886666, q号29655007, 扣扣吧一六四四九三九一七; up to 8 characters after the word with no other contact, card or record word and no 群 between (微信号跟QQ号一样，76139851, 请Q我 30918254, qq 363-078-205); 球球, QQ number:, 係 | [QQ号] |
| record number | 病历号/病案号/住院号/门诊号/医保卡号/就诊卡(号)/社保卡号/病理号/影像号/体检号/建档号/放疗号/化疗号/手册编号/条码上的号：ZY20230001, 1234 5678 9012, T J 0 3 2 0, 八八零二三… | [编号] |
| long number | a lone run of 15+ digits no other form takes (医保个人编号330183556620024603, an ID mistyped beyond recognition); 10–14 digits with a record word up to 24 characters before it or right after it (用9151009110这个门诊号); not a product's number (国械注准…, 条形码…) | [编号] |
| passport / travel permit | 护照号 E12345678, EA1234567, G12345678, passport AB985567, 台胞证, 回乡证 H60281937 / M1234567801 | [护照号] |
| resident ID, 18 digits | 11010519491231002X, 110105 19491231 002X (checksum + birth date; a mistyped check digit too) | [身份证号] |
| resident ID, 15 digits | 110105491231002 (region + birth date) | [身份证号] |
| ID after 身份证 | any 14–19 digits/X after 身份证(号) / 身分证 / 证件号 / 身份号 / HKID (a digit too many or too few is still the ID) | [身份证号] |
| Hong Kong / Taiwan / Macau ID | A123456(3), AB987654 (3), Y6543210 (HKID check digit, or after an ID word); A123456789 (Taiwan checksum, or after one); 5215299(8) (Macau, bracketed; eight digits after an ID word) | [身份证号] |
| bank card | 16–19 digits passing Luhn, any grouping; 12–19 digits after 银行卡/卡号 | [银行卡号] |
| mobile | 13812345678, 138 1234 5678, 1381-234-5678, 138.1234.5678, 157477 92466, +86 138…, 0086-138…; a run that is exactly a mobile in any grouping (1 3 8 1 2 …, 13 81 23 45 678); in Chinese numerals 一三八零零…, 幺三九…, 拐 = 7, 叉 = X (also IDs, landlines) | [手机号] |
| international | +852 9123 4567, +886 912 345 678, 00853 6612 3456 (a "+" or "00", 8–15 digits); 852-6123-4567, (852) 98765432, 886-912-345-678 (the code apart, without "+") | [电话] |
| landline with area code | 010-62345678, (0755) 8888 6666, （010）62345678; an extension (转123, -123, 分机 12) goes with it | [电话] |
| landline without area code | 电话/座机/固话/联系/联络/拨打/热线/WhatsApp/打俾… then 6234 5678 or 62345678 (a Hong Kong or Macau number); right after 打 / 拨 (白天打7658296找我) | [电话] |
| service numbers | 400-123-4567, 800 810 8888 | [电话] |
| name | labelled (我叫/我是/姓名：/联系人/户名/收件人…), after a relative or role (我老公吴德福, 帮我爷爷…, 32床孔繁星), before 的家属/，男/a contact/收, as a signature (——龙雪梅, 柯雨欣 敬上, （尚晨星）), greeted first (杨帆你好), in a list (张三、李四), transliterated (阿依古丽·买买提), Tibetan / Mongolian / Yi / Dai (我阿爸乌力吉, 沙马拉布是我表哥, 岩温香: pii_names_minority.py), a run of names before a count (金哲洙朴英姬两位老人), pinyin (my name is Chen Yiming), Hong Kong / Macau / Taiwan romanised (Patient: Wong Ka-yan, my son Lee Siu-ming, Peter Chan; Chan Tai Man anywhere but a place of the same spelling: pii_names_roman.py); see pii_names.py | [姓名] |
| address | labelled (住在/住/家在/地址/寄到…) with a street, estate, building or village unit and a number; bare road + number + building + room (建国路88号恒信大厦4208室), estate + building (幸福小区5号楼1单元602), village + group (李楼村三组), Taiwan / Hong Kong (信义路三段134巷5弄7号, 21座15楼G室, 沥源邨福海楼803室, 屋企喺…), English (Room 1203, 88 Jianguo Road; Flat B, 12/F, Block 3, Kornhill, 2 Hong On Street); not a city or floor alone (住在28楼), not the hospital's own building; see pii_address.py | [地址] |

Numbers may be grouped by spaces, ``-``, ``.``, en/em dashes (each group but the last at least 3
digits, so lab series like "13.5 12.3 14.1" never combine into a phone number). Not masked: blood
pressure 140/90, glucose 7.8, doses, dates (2023-01-15, 20230115 without a phone label), ages,
temperatures, ranges like 3000-4000ml, times."""
from __future__ import annotations

import re
from collections import Counter

from stages.safety.pii_address import mask_addresses
from stages.safety.pii_names import mask_names
from stages.safety.pii_numbers import (_ID_CHECK, _ID_WEIGHTS, _SPOKEN_DIGIT, PII_TAGS, _mask_numbers,  # noqa: F401
                                       _PRODUCT_BEFORE, _mask_spoken_numbers, luhn_ok, mask_codes, valid_id15,
                                       valid_id_number)
from stages.safety.pii_regional_ids import mask_regional_ids


# --- labelled forms (the label is kept, the value masked) ----------------------------------------
_LABEL_SEP = r"[ ]?(?:[:：=]|是|为|(?<=[A-Za-z]) is)?[ ]?"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+ ?@ ?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
                    r"|[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]{2,}(?:\.[A-Za-z0-9-]+)*")    # "zhoujie0521@163com" (dot missing)
# written out so crawlers miss it: "liuyang0706 at 163 dot com", "zhang(at)qq.com", "wang艾特126点com"
_EMAIL_SPELLED = re.compile(r"(?<![A-Za-z0-9._-])[A-Za-z0-9._-]{3,}[ ]?(?:\(at\)|\[at\]|(?<= )at(?= )|艾特|圈a)[ ]?"
                            r"[A-Za-z0-9-]+(?:[ ]?(?:\(dot\)|\[dot\]|(?<= )dot(?= )|点|\.)[ ]?[A-Za-z0-9-]+)*?"
                            r"[ ]?(?:\(dot\)|\[dot\]|(?<= )dot(?= )|点|\.)[ ]?[A-Za-z][A-Za-z0-9-]+", re.I)   # ends in a name: not "at 3.5"
# dictated with spaces: "z h a n g w e i 1 2 3 at 163 dot com", "zhang wei 88 @ qq.com", "li.ming_2020 @ gmail . com"
# (letter by letter, or up to three words before a marker with a space before it; the domain ends in letters)
_EMAIL_SPACED = re.compile(r"(?<![A-Za-z0-9._-])(?:[A-Za-z0-9](?: [A-Za-z0-9._-]){3,40} ?|(?:[A-Za-z0-9._-]+ ){1,3})"
                           r"(?:@|\(at\)|\[at\]|at|艾特|圈a) ?[A-Za-z0-9-]+"
                           r"(?: ?(?:\.|点|dot|\(dot\)) ?[A-Za-z0-9-]+)*? ?(?:\.|点|dot|\(dot\)) ?[A-Za-z]{2,}(?![A-Za-z0-9])", re.I)
_WECHAT = re.compile(r"((?:微信|威信|薇信|(?<![A-Za-z])v信|卫星号?(?=[ :：]?[A-Za-z][-_.A-Za-z]*[\d_])|"
                     r"(?<![A-Za-z])(?:vx|wx|wechat|weixin|v(?=[:：❤♥]))(?![A-Za-z]))[❤♥]?(?:号|账号|帐号| ?ID| ?id)?"
                     + _LABEL_SEP + r")([A-Za-z][-_.A-Za-z0-9]{4,19}[-_A-Za-z0-9]|\+?\d{5,13})(?![-_A-Za-z0-9])", re.I)
# a handle a few characters after 微信 / 加我 (加微信也行xiaoyu_0316, 加我Qin-yy2009): letters first, with a digit,
# "_" or "-" in it, so an English word is not one
_WECHAT_NEAR = re.compile(r"((?:微信|威信|(?<![A-Za-z])(?:vx|wechat|weixin)|加我|加[Vv](?![A-Za-z]))[^A-Za-z0-9\n。！？]{0,6}?[(（]?)"
                          r"((?=[-_A-Za-z]*[\d_-])[A-Za-z][-_A-Za-z0-9]{5,19})(?![-_A-Za-z0-9@.])", re.I)
# a handle right before the word: 加dabaoma_xx2021这个微信, 加 Tony_Lam88 的 vx (session 24)
_WECHAT_BEFORE = re.compile(r"((?:加|添加|搜|^|[，,。 ])[ ]?)((?=[-_.A-Za-z]*[\d_.-])[A-Za-z][-_.A-Za-z0-9]{4,19}[-_A-Za-z0-9])"
                            r"(?=[ ]?(?:←|<-)?[ ]?(?:这个|这|的)?(?:是|就是|系)?(?:我[的嘅]?)?(?:个人)?[ ]?"
                            r"(?:微信|威信|赖|(?<![A-Za-z])(?:vx|wx|wechat|weixin|line|telegram|tg|signal|ig|instagram)(?![A-Za-z])))",
                            re.I)
# LINE (赖 in Taiwan), Telegram, Signal, Instagram handles and usernames (session 27; not "TG" after it: triglycerides):
# the app's name, up to 8 characters (an ID word among them), then a handle; kept only with a digit, "_", "." or "-" in
# it, an "@" before it or an ID word before it; not without letters (a phone number: the number forms decide), not all
# capitals (TI-RADS), not a number with a unit (0.48-1.88mmol), not an official account (官方)
_APP = (r"(?:(?<![A-Za-z])(?:line|telegram|signal|ig|instagram|wechat|username|user name|handle)(?![A-Za-z])"
        r"|(?<=加)赖|赖(?= ?(?:ID|id|[:：]|是|系))|用户名|(?<!\[)微信(?=[^A-Za-z0-9\n。！？]{0,4}(?:ID|id)))")
_HANDLE_NEAR = re.compile(r"(" + _APP + r"(?: is| ?[:：])?[^A-Za-z0-9@\n。！？!?\[\]]{0,8}?(?:(?<![A-Za-z])(?:ID|id)(?![A-Za-z])"
                          r"[^A-Za-z0-9@\n。！？!?\[\]]{0,4})?)(@?[A-Za-z0-9](?:[-_.]?[A-Za-z0-9]){2,29}_?)"
                          r"(?![-_A-Za-z0-9@]|\.[A-Za-z0-9])", re.I)
_HANDLE_ID_WORD = re.compile(r"(?<![A-Za-z])(?:ID|username|user name|handle)(?![A-Za-z])|用户名", re.I)
# WeChat's own id form is one anywhere: wxid_k8f3m2p9x1 (session 25)
_WXID = re.compile(r"()((?<![A-Za-z0-9_])wxid_[A-Za-z0-9_]{4,30})(?![A-Za-z0-9_])", re.I)
_QQ_DIGIT = "[0-9零〇洞一幺二两三四五六七八九拐]"
_QQ = re.compile(r"((?<![A-Za-z])(?:QQ|Q ?Q|扣扣|企鹅号?|球球|Q(?=号|[:：])|(?<=我)q(?=上))(?:号码|号| number| No\.?)?"
                 r"(?:[ ]?(?:[:：=]|是|为|吧|系|(?<=[A-Za-z]) is)){0,2}[ ]?)"
                 r"((?=[1-9一二三四五六七八九幺拐])" + _QQ_DIGIT + r"(?:[ ]?" + _QQ_DIGIT + r"){4,11})(?![ ]?" + _QQ_DIGIT + ")",
                 re.I)
# the number before the word: 加我1094837265这个扣扣, 2710493865 这个企鹅是我老公的 (session 24)
_QQ_BEFORE = re.compile(r"()((?<![\dA-Za-z])[1-9]\d{4,11})(?=[ ]?(?:这个|这|的)?(?:是|就是)?(?:我的?)?[ ]?(?:QQ|扣扣|企鹅|球球)(?!群))",
                        re.I)
# a few characters between the word and the number (微信号跟QQ号一样，7613985196; 可以加个QQ吗？6037550240; 请Q我74228170;
# Q 1643475702), or the number in groups (qq 363-078-205): 5-11 digits, no other contact, ID or card word, not a QQ group
# (session 25)
_QQ_NEAR = re.compile(r"((?<![A-Za-z])(?:QQ|Q ?Q|扣扣|企鹅|球球|Q(?=我|[ ]\d))[^\d\n。！!；;]{0,8}?)"
                      r"((?<!\d)[1-9]\d{1,4}(?:[ -]?\d{2,5}){0,3})(?![\d.%])", re.I)
_QQ_NEAR_NOT = re.compile(r"群|手机|电话|座机|身份证|卡|病历|住院|门诊|编号|订单")
# record numbers: a card / case / sample label (病历号, 住院号, 病理号, 影像号, 条码上的号, 手册编号 …); the value in
# digits and letters ("ZY20230001", "1234 5678 9012", "B2024-96431") or dictated in Chinese numerals
_RECORD = re.compile(r"((?:(?:病历|病案|住院|门诊|就诊|医保|社保|体检|挂号|病理|影像|检验|化验|标本|报告单?|预约|登记|参保|"
                     r"建档|放疗|化疗|透析|产检|急诊|留观|保单|理赔|健保|"
                     r"健康卡|医疗卡|手册|档案)(?:卡号码|卡号|号码|号|ID|编号)|(?:就诊|医保|社保|健康|医疗|诊疗|健保)卡"
                     r"|(?:条码|条形码)[^，。,\d]{0,4}?号|保单)"
                     + _LABEL_SEP
                     + r")([A-Za-z0-9][-/A-Za-z0-9]{3,24}(?:[ ]\d{2,8})*|[A-Za-z0-9](?: [A-Za-z0-9]){5,24}"
                     r"|[零〇一二三四五六七八九幺两洞拐]{6,20})"
                     r"(?![-A-Za-z0-9])")
# an insurance policy or a lab accession number in English, with a digit in it (Policy No. 652-617498-93; session 27)
_POLICY = re.compile(r"((?<![A-Za-z])(?i:policy|accession)(?: (?i:no\.?|number))?[ ]?[:：#]?[ ]?)"
                     r"((?=[-/A-Za-z0-9]*\d)[A-Za-z0-9][-/A-Za-z0-9]{3,24})(?![-/A-Za-z0-9])")
# Hong Kong Hospital Authority numbers: HN, eight digits and a check character (HN12345678(9), HN 1234 5678 9; session 27)
_HN = re.compile(r"((?<![A-Za-z])HN[ :：]*(?:(?:是|系)[ ]?)?(?:HN ?)?)(\d{4} ?\d{4} ?[(（]?[0-9A-Za-z][)）]?)(?![0-9A-Za-z])")
_PASSPORT_LABEL = re.compile(r"((?:护照|通行证|台胞证|回乡证|回乡卡|居留证|(?i:passport)(?: (?i:no\.?|number))?)(?:号码|号)?" + _LABEL_SEP + r")([A-Za-z0-9]{6,12})(?![A-Za-z0-9])")
# mainland passports: E/G + 8 digits, E + letter + 7 digits, diplomatic/service/public D/S/P(E) + 7
_PASSPORT = re.compile(r"(?<![A-Za-z0-9])(?:[EG]\d{8}|E[A-Z]\d{7}|[DSP]E?\d{7})(?![A-Za-z0-9])")

# --- names: stages/safety/pii_names.py ----------------------------------------------------------


# --- the one function ----------------------------------------------------------------------------
def _labelled(kind: str, pattern: re.Pattern, text: str, counts: Counter) -> str:
    def repl(m):
        counts[kind] += 1
        return m.group(1) + PII_TAGS[kind]
    return pattern.sub(repl, text)


def _mask(text: str, counts: Counter, names: bool = True, scored_names: bool = True) -> str:
    """Every form of the table, in order, on normalised (simplified-script) text (``names=False``: all but the
    names — the view of a text the name scorer is fitted on, stages/safety/pii_name_fit.py; ``scored_names``:
    see ``mask_pii_counts``)."""
    def email(m):
        counts["email"] += 1
        return PII_TAGS["email"]

    text = _EMAIL_SPELLED.sub(email, _EMAIL.sub(email, _EMAIL_SPACED.sub(email, text)))
    text = _labelled("wechat", _WECHAT, text, counts)
    text = _labelled("wechat", _WECHAT_NEAR, text, counts)
    text = _labelled("wechat", _WECHAT_BEFORE, text, counts)
    text = _labelled("wechat", _WXID, text, counts)

    def handle(m):
        value, label = m.group(2), m.group(1)
        if not re.search(r"[a-z]", value, re.I) or value.isupper() or "官方" in m.string[max(0, m.start() - 6):m.start()] \
                or (value[0].isdigit() and not re.fullmatch(r"\d+[A-Za-z_]\w*", value)) or not (
                value[0] == "@" or re.search(r"[\d_.-]", value) or _HANDLE_ID_WORD.search(label)):
            return m.group(0)
        counts["wechat"] += 1
        return label + PII_TAGS["wechat"]

    text = _HANDLE_NEAR.sub(handle, text)
    text = _labelled("qq", _QQ, text, counts)
    text = _labelled("qq", _QQ_BEFORE, text, counts)

    def qq_near(m):
        digits = re.sub(r"\D", "", m.group(2))
        if not 5 <= len(digits) <= 11 or _QQ_NEAR_NOT.search(m.group(1)):
            return m.group(0)
        counts["qq"] += 1
        return m.group(1) + PII_TAGS["qq"]

    text = _QQ_NEAR.sub(qq_near, text)
    text = _labelled("record", _RECORD, text, counts)
    text = _labelled("record", _HN, text, counts)
    text = _labelled("record", _POLICY, text, counts)
    text = _labelled("passport", _PASSPORT_LABEL, text, counts)

    def passport(m):
        if _PRODUCT_BEFORE.search(text[max(0, m.start() - 8):m.start()]):      # 国食健字G20140321: a product
            return m.group(0)
        counts["passport"] += 1
        return PII_TAGS["passport"]

    text = _PASSPORT.sub(passport, text)
    text = mask_codes(text, counts)
    text = _mask_spoken_numbers(text, counts)
    text = _mask_numbers(text, counts)
    text = mask_regional_ids(text, counts)       # after the mainland forms: "110105 19491231 002X" is one ID
    if names:
        text = mask_names(text, counts, scored=scored_names)
    masked = mask_addresses(text, counts)
    if names and masked != text:             # an address placeholder can give a name away ("住[地址]陈阳…"): masking
        masked = mask_names(masked, counts, scored=scored_names)        # twice must change nothing
    return masked


def _restore_script(original: str, simplified: str, masked: str) -> str:
    """``masked`` (the masking of ``simplified``, which is ``original`` character for character in simplified
    script) with every character that masking left alone taken back from ``original``: the user's traditional
    characters are kept, the placeholders are the masking's. Only characters that survived masking come back,
    so nothing masked can return."""
    from difflib import SequenceMatcher

    out = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, simplified, masked, autojunk=False).get_opcodes():
        out.append(original[i1:i2] if op == "equal" else masked[j1:j2])
    return "".join(out)


def mask_pii_counts(text: str, answer: bool = False) -> tuple[str, dict[str, int]]:
    """``mask_pii`` plus how many of each form were masked (for clean metrics and the audit line). Text in
    traditional characters (病歷號, 電話, 羅美玲) is matched in simplified script (OpenCC t2s) and keeps its
    own script where nothing was masked. ``answer=True`` for text a doctor or the model wrote (corpus answers, the
    served answer): names are masked by the rules only — the learned scorer for names without a cue
    (stages/safety/pii_name_scorer.py) was fitted on what patients type and, on 8,644 real doctor answers, took
    mostly drug names (甘利欣, 扑尔敏) for names (stages/PRIVACY.md, *Session 24*)."""
    from stages.data.text import normalize  # deferred: text.py re-exports this module
    from stages.safety.normalize import to_simplified

    counts: Counter = Counter()
    text = normalize(text)
    simplified = to_simplified(text)
    if simplified == text:
        return _mask(text, counts, scored_names=not answer), dict(sorted(counts.items()))
    masked = _mask(simplified, counts, scored_names=not answer)
    if len(simplified) != len(text):                 # t2s changed the length (rare): the simplified masking
        return masked, dict(sorted(counts.items()))
    return _restore_script(text, simplified, masked), dict(sorted(counts.items()))


def mask_pii(text: str, answer: bool = False) -> str:
    """Normalise ``text`` and replace every PII form in the table above by its typed placeholder (``answer``: see
    ``mask_pii_counts``)."""
    return mask_pii_counts(text, answer)[0]
