"""What stands around a personal name in a Chinese message — the cue words before it, what may follow it, where a
clause or a signature starts, and which characters cannot be in a given name — shared by the name finders
(stages/safety/pii_names.py, pii_names_minority.py) and the learned scorer (pii_name_scorer.py). Moved here from
pii_names.py in session 29 so that each cue is spelled once and the modules import it instead of each other."""
from __future__ import annotations

import re
from collections import Counter

from stages.safety.pii_name_lists import COMPOUND_SURNAMES, ETHNIC_GROUPS, GIVEN_CHARS, KIN, SURNAMES
from stages.safety.pii_name_lists import surname as _surname

# characters that do not occur in a given name but do in phrases after 我是/患者 ("我是高血压患者")
NOT_NAME = set("的了是在有不没很也都就要会能还被吗呢吧啊呀么什怎多个岁年日周病症炎痛疼癌瘤药科医院患者护"
               "胃肝肾肺脑腿胸腹背腰咳嗽冒烧血压糖尿检查治疗术吃喝睡说去来看到给让把对从这那他她它们你我每次孩"
               "儿妈爸爷奶姐哥弟妹婆人友事省市县区镇乡村路街号已经最近因所但候里外过得着想觉坏太需用做名叫姓"
               "和与及跟同才又再向为问找帮替请约挂办查开拿等您咱俺哦嗯哈呵啦嘛呐哇咯无后性类族")
# given-name characters of the older generation that are also function words (孙有财, 陈来福, 王福来): accepted after a
# person cue in a two-character given name next to a character of GIVEN_CHARS (session 28)
VERB_GIVEN = frozenset("有来")      # of these, the verbs: "我是江西来的" is a phrase, not 江西来
OLD_GIVEN = VERB_GIVEN | {"妹"}     # session 29: 妹 of older southern names (蓝春妹, 陈秀妹) — a kin word elsewhere
# a surname + one of these is a form of address, not a name (王主任, 陈女士, 李医生, 张老师)
TITLES = set("主任 医生 大夫 护士 老师 先生 女士 小姐 师傅 院长 教授 经理 总 工 姐 哥 叔 姨 阿姨 叔叔 老板 同学 同志 书记 科长 "
             "处长 局长 部长 队长 班长 厂长 校长 律师 博士 老 家 氏 某 某某".split())
SURNAME_RE = "(?:" + "|".join(COMPOUND_SURNAMES) + f"|[{SURNAMES}])"
NAME_CHAR = "[^" + "".join(sorted(NOT_NAME)) + r"\W\da-zA-Z_]"
AGE = r"(?:\d+|[一二三四五六七八九十两]{1,3})岁"       # 44岁, 五十六岁 (session 28: numerals)
BOUNDARY = r"[^\u4e00-\u9fa5]|男|女|今年|岁|$"      # a name ends at a non-Chinese character or these
KIN_WORDS = set(KIN.split())
KIN_RE = "|".join(sorted(KIN.split(), key=len, reverse=True))
STRONG_BEFORE = ("我叫 俺叫 咱叫 他叫 她叫 名单： 名单: 挂号人 当事人 受益人 投保人 被保险人 收件 名叫 叫做 改名叫 名字是 名字叫 名字 病人叫 患者叫 孩子叫 全名 大名 户名 开户名 开户人 收款人 收件人 "
                  "收货人 寄件人 联系人 姓名 "
                  "署名 签名 经办人 持卡人 就诊人 申请人 委托人 监护人 代理人 入住人 陪护人 @")
WEAK_BEFORE = " ".join(k for k in KIN.split() if k not in ("他", "她")) + " 我是 俺是 本人 家属 患者 病人 患儿 帮 给 找 " \
    "请问 问一下 问下 查一下 床 [手机号]（ [手机号]( [电话]（ [电话]( 让 替 跟 叫 陪 送 通知 联系 告诉 提醒 催一下 叫上 俾 " \
    "市民 学生 家长 护工 护理员 保姆 雇主 客户 业主 住户 村民 居民 职工 工友 战友 学员 会员 老爷子 老太太 [地址] " \
    "工人 班主任 老乡 转告 转告一下 [姓名]， [姓名],"          # session 29; a masked name and a comma: weak (…黄磊，明天的手术)
# weak cues that are verbs or places, not a person (帮, 叫: "也叫艾迪生病"; [地址]): jieba's person-name characters and
# 有 / 来 are not accepted after them (session 28)
VERB_CUES = frozenset("帮 给 找 请问 问一下 问下 查一下 让 替 跟 叫 陪 送 通知 联系 告诉 提醒 催一下 叫上 俾 [地址] 转告 转告一下".split())
CUE = re.compile(r"(?:(" + "|".join(sorted(STRONG_BEFORE.split(), key=len, reverse=True)) + r")|("
                  + "|".join(map(re.escape, sorted(WEAK_BEFORE.split(), key=len, reverse=True))) + r")|(\[姓名\](?:[、和与及]| ?[（(])))儿?[:：]? ?")     # 张三、李四; Chen Yiming (陈一鸣); 老伴儿 (s28)
STRONG_AFTER = re.compile(r"^[,，、 ]?(?:男|女)(?![\u4e00-\u9fa5])")                  # 陈祖金，男，44岁
# a contact right after a name: a masked one ([手机号]) or, after a separator, a contact word ("，QQ：", not 安卓手机)
MASKED_CONTACT = r"\[(?:手机号|电话|邮箱|微信号|QQ号|身份证号)\]"
CONTACT = MASKED_CONTACT + r"|(?<=[,，:： （(/|])(?:电话|手机|QQ|微信|邮箱|身份证)"
CUE_AT_END = re.compile(CUE.pattern + "$")
# a hospital thing that belongs to someone: 邝景行的过敏原检测, 阮明辉的检查结果, 郎平安的号 (session 23)
THEIR = (r"[的嘅](?:号|报告|检查|化验|检验|病历|预约|挂号|住院|体检|结果|医保|就诊卡|床位|费用|手术|过敏原|出院|"
          r"门诊|病理|片子|切片|疫苗|记录|医嘱)")     # 嘅: Cantonese 的 (session 25)
THEIR_AT = re.compile("^" + THEIR)
# what follows a name: 温晓彤，QQ邮箱…, 鲍春燕（138…）, 林婉清收, 张伟和[姓名]; session 28: an ethnic group (蓝春妹畲族), the
# person addressed (邹凯，你妈的手术…)
AFTER_CUES = (THEIR + r"|的?家属|[的嘅](?:" + KIN_RE + r")|是我的?(?:" + KIN_RE + r")|[,，、 ]?" + AGE
               + r"|收(?![\u4e00-\u9fa5])|[,，:： （(/|]*(?:" + CONTACT + r")|[、和与及跟]?\[姓名\]"
               + r"|[,，、 ]?(?:" + "|".join(sorted(ETHNIC_GROUPS.split(), key=len, reverse=True)) + r")族"
               + r"|[,，](?=[你您](?!们))"
               # session 29: a count of the people just named (金哲洙朴英姬两位老人, 林沐阳高钰涵这两个小朋友); the age and
               # the masked name above may follow without a separator (钮春来九十岁, 林沐阳[姓名])
               + r"|(?:这|那)?[两三四几]位|这[两三四几]个(?=[人孩小老朋同病患娃])|[两三四几]个人|两口子|夫妻俩|[兄姐][弟妹]俩")
WEAK_AFTER = re.compile(r"^(?:" + AFTER_CUES + ")")
SIGNATURE_BEFORE = re.compile(r"(?:^|——|—|--|-|~|～|[。！？!?\n（(]|(?<![A-Za-z])[Bb]y|谢谢[您你]?[!！,，]?"
                               r"|\[(?:手机号|电话|邮箱|微信号|QQ号)\][,，;； ])[ ]?$")   # s28: …手机[手机号]，孙丽
CLAUSE_START = re.compile(r"(?:^|[，,。！？!?；;：:\n\]）)】 /|—~～-])$")      # a clause starts here: 曾雨桐 [手机号]
CLAUSE_START_AT = re.compile(r"(?:^|[，,。！？!?；;：:\n\]）)】 /|—~～-])")
AFTER_AT = re.compile(AFTER_CUES + r"|[,，、 ]?[男女](?![\u4e00-\u9fa5])")
# session 25: a name signed after a dash at the end (——常乐), or before a formal sign-off (郑淑芬 敬上), or greeted at the
# start of the message (杨帆你好) is a name even when it is also a word
DASH_SIGNATURE = re.compile(r"(?:——|—|--)[ ]?$")
SIGN_OFF = re.compile(r"^[ ]?(?:敬上|敬启|谨上|拜上|顿首)[ 。!！]*$")
GREETED = re.compile(r"^[,， ]?(?:你好|您好)")
SIGNATURE_AFTER = re.compile(r"^[）)]?[ 。!！]*(?:[（(](?:家属|" + KIN_RE + r")[）)]|爸爸|妈妈|家长)?[ 。!！]*$")   # ——钟文斌（家属）, （尚晨星）, 苗壮爸爸


def shape(name: str, old: bool = False) -> bool:
    """Surname + 1-2 given-name characters (compound surname + 1-2), no character of ``NOT_NAME`` — with ``old``, but
    one of ``OLD_GIVEN`` next to a character of ``GIVEN_CHARS`` (孙有财, 陈来福)."""
    sur = _surname(name)
    given = name[len(sur):]
    old = old and len(given) == 2 and any(c in GIVEN_CHARS for c in given)
    return (bool(sur) and 1 <= len(given) <= 2 and given not in TITLES and given not in KIN_WORDS
            and name not in KIN_WORDS                 # 孙子, 孙女 (session 29: "孙子四岁")
            and all("\u4e00" <= c <= "\u9fa5" and (c not in NOT_NAME or (old and c in OLD_GIVEN)) for c in given))


def cue_before(text: str, begin: int) -> str | None:
    """"strong" / "weak" when a cue of ``CUE`` ends right before ``text[begin]``, else None."""
    before = text[max(0, begin - 8):begin]
    m = CUE.search(before)
    return None if not m or m.end() != len(before) else ("weak" if m.group(2) else "strong")


def person_cue(before: str, cue: str | None) -> bool:
    """A strong cue, or a weak one that names a person (a relative, a role, 我是, 患者 …) rather than a verb (帮, 叫 …:
    "也叫艾迪生病" names a disease)."""
    m = CUE_AT_END.search(before) if cue == "weak" else None
    return cue == "strong" or bool(m and m.group(2) and m.group(2) not in VERB_CUES)


def cue_words() -> list[str]:
    """Every cue word before a name (strong and weak), for stages/safety/pii_names_minority.py."""
    return STRONG_BEFORE.split() + WEAK_BEFORE.split()


def overlaps(begin: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(b < end and begin < e for b, e in spans)


def replace_spans(text: str, spans, counts: Counter, skip: list[tuple[int, int]] = ()) -> str:
    """``text`` with every span replaced by [姓名], left to right; a span overlapping an earlier one or one of ``skip``
    is left out (``counts["name"]`` counts the replacements)."""
    out, last = [], 0
    for begin, end in sorted(set(spans)):
        if begin >= last and not overlaps(begin, end, skip):
            out.append(text[last:begin] + "[姓名]")
            counts["name"] += 1
            last = end
    out.append(text[last:])
    return "".join(out)
