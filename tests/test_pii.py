"""stages.safety.pii.mask_pii: every form of the table in its docstring, both directions (PII masked,
medical numbers untouched), and property tests for the number formats."""
import json
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stages.data import text as text_module
from stages.safety import pii
from stages.safety.pii import PII_TAGS, luhn_ok, mask_pii, mask_pii_counts, valid_id15, valid_id_number

ID18 = "11010519491231002X"
ID15 = "110105491231002"
CARD = "6222600260001072444"
BAD_CARD = "6222600260001072445"

# one line per form of the table: {"kind", "text", "secret" (must disappear), "tag" (placeholder)};
# also the probe that test_pii_probe.py runs through the clean stage and the audit log
PROBE = Path(__file__).parent / "fixtures" / "pii_probe.jsonl"
FORMS = [(r["text"], r["secret"], r["tag"], r["kind"])
         for r in map(json.loads, PROBE.read_text(encoding="utf-8").splitlines())]


@pytest.mark.parametrize("text,secret,tag,kind", FORMS)
def test_every_form_is_masked(text, secret, tag, kind):
    out, counts = mask_pii_counts(text)
    assert tag in out and counts.get(kind, 0) >= 1, out
    assert secret not in out and re.sub(r"\s", "", secret) not in re.sub(r"\s", "", out)


def test_every_kind_in_the_table_is_tested():
    assert {f[3] for f in FORMS} == set(PII_TAGS)
    for kind, tag in PII_TAGS.items():
        assert tag in pii.__doc__, kind


MEDICAL = [
    "血压140/90mmHg，血糖7.8mmol/L，体重65公斤",
    "体温38.5℃，心率120次/分，呼吸20次/分",
    "每日3次，每次500mg，连用7天",
    "2023-01-15复查，2023年1月15日入院，2023.01.15出院",
    "20230115",
    "年龄65岁，身高175cm",
    "每天喝水3000-4000ml，步数13000-150000步",
    "13.5 12.3 14.1 13.8 12.9",
    "白细胞12.5×10^9/L，血小板150×10^9/L",
    "乙肝两对半10.052196.5830.10432.00560.00怎么回事",
    "戊肝抗体HEV检查结果是CG14892599是什么意思",
    "糖化血红蛋白6.5%，尿酸480μmol/L，肌酐120 μmol/L",
    "2019-2023年一直吃药",
    "电话随访2019-2023",
    "胰岛素每天早上12单位，晚上10单位",
    "我是高血压患者，请问",
    "患者出现头痛，患者康复，患者应戒酒，患者包括5名女性",
    "我叫不醒他，他已经昏迷",
    "我是孕妇，我是江西人，我是高三学生",
    "住在重症监护室三天了，我家住农村",
    "医生让我用药规则是什么",
    "12345678901",
    "血糖<7.0，血压>140",
    "CT值45HU，EF 55%，INR 2.5",
    "我妈叫我去医院，我爸叫救护车了，孩子叫王阿姨帮忙",      # 叫 + a verb or a title, not a name
    "第一二三次吃药都吐了，一二三四五六七八九十",              # Chinese numerals that are no number
    "血压一百四十，心率一百二",
]


@pytest.mark.parametrize("text", MEDICAL)
def test_medical_numbers_and_phrases_are_not_masked(text):
    out, counts = mask_pii_counts(text)
    assert not counts, (out, counts)


def test_text_module_re_exports_the_one_function():
    # stages.data.text.mask_pii keeps its original (text, counts) shape; same masking
    assert text_module.mask_pii is mask_pii_counts and text_module.mask_pii_counts is mask_pii_counts
    assert mask_pii("电话13812345678") == text_module.mask_pii("电话13812345678")[0] == "电话[手机号]"


def test_mask_normalises_first():
    assert mask_pii("&lt;b&gt;电话：１３８\u200b１２３４\u3000５６７８") == "电话：[手机号]"


def test_masking_is_idempotent_and_placeholders_survive():
    once = mask_pii(" ".join(f[0] for f in FORMS))
    assert mask_pii(once) == once


def test_real_medical_qa_is_almost_never_masked(shared_data):
    """The shared real QA (1,000 ShareGPT conversations) has no phone numbers or IDs: masking may
    change at most a handful of its texts (it finds one real name, '我叫窦磊', in the CSV)."""
    changed = total = 0
    with open(shared_data / "medicalgpt_sft_1k.sharegpt.jsonl", encoding="utf-8") as fh:
        for line in fh:
            for turn in json.loads(line)["conversations"]:
                total += 1
                answer = turn["from"] != "human"       # the model's / a doctor's text: rules only (session 24)
                changed += mask_pii(turn["value"], answer=answer) != text_module.normalize(turn["value"])
    assert total > 1500 and changed <= 2


# --- property tests for number formats -----------------------------------------------------------
SEPS = [" ", "-", "  ", " - ", "\u3000", "\u200b", "–", "\u00a0"]
CONTEXT = st.sampled_from(["", "我的", "请回电", "你好，", "谢谢。", "号码", "，麻烦了", "头疼三天"])


def _group(digits: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for n in sizes:
        out.append(digits[i:i + n])
        i += n
    return sep.join(out)


def _no_digits_left(out: str) -> bool:
    return not re.search(r"\d", out)


@settings(max_examples=300, deadline=None)
@given(second=st.sampled_from("3456789"), rest=st.text("0123456789", min_size=9, max_size=9),
       sizes=st.sampled_from([[11], [3, 4, 4], [4, 3, 4], [3, 8], [7, 4], [3, 3, 5], [4, 4, 3]]),
       sep=st.sampled_from(SEPS + [".", "·"]), prefix=st.sampled_from(["", "+86 ", "+86-", "0086 ", "86"]),
       before=CONTEXT, after=CONTEXT)
def test_mobile_any_grouping(second, rest, sizes, sep, prefix, before, after):
    if sep == "·":
        sizes = [11]
    number = _group("1" + second + rest, sizes, sep)
    out = mask_pii(before + prefix + number + after)
    assert "[手机号]" in out and _no_digits_left(out), out


def _id18(region: int, y: int, m: int, d: int, seq: int) -> str:
    body = f"{region:06d}{y:04d}{m:02d}{d:02d}{seq:03d}"
    total = sum(int(c) * w for c, w in zip(body, pii._ID_WEIGHTS))
    return body + pii._ID_CHECK[total % 11]


@settings(max_examples=300, deadline=None)
@given(region=st.integers(110000, 829999), y=st.integers(1920, 2020), m=st.integers(1, 12), d=st.integers(1, 28),
       seq=st.integers(0, 999), sizes=st.sampled_from([[18], [6, 8, 4], [6, 4, 4, 4], [4, 4, 4, 4, 2], [3, 3, 4, 4, 4]]),
       sep=st.sampled_from(SEPS), before=CONTEXT, after=CONTEXT)
def test_id18_any_grouping(region, y, m, d, seq, sizes, sep, before, after):
    number = _id18(region, y, m, d, seq)
    assert valid_id_number(number)
    out = mask_pii(before + _group(number, sizes, sep) + after)
    assert "[身份证号]" in out and _no_digits_left(out) and "X" not in out, out


@settings(max_examples=200, deadline=None)
@given(region=st.integers(110000, 829999), y=st.integers(0, 99), m=st.integers(1, 12), d=st.integers(1, 28),
       seq=st.integers(0, 999), sep=st.sampled_from(SEPS), before=CONTEXT)
def test_id15(region, y, m, d, seq, sep, before):
    number = f"{region:06d}{y:02d}{m:02d}{d:02d}{seq:03d}"
    assert valid_id15(number)
    for text in (number, _group(number, [6, 6, 3], sep)):
        out = mask_pii(before + text)
        assert _no_digits_left(out), out


@settings(max_examples=300, deadline=None)
@given(lead=st.sampled_from(["62", "4", "5", "37"]), body=st.text("0123456789", min_size=12, max_size=16),
       whole=st.booleans(), sep=st.sampled_from(SEPS), before=CONTEXT)
def test_luhn_cards(lead, body, whole, sep, before):
    digits = (lead + body)[:18]
    check = next(c for c in "0123456789" if luhn_ok(digits + c))
    number = digits + check
    assert 16 <= len(number) <= 19 or len(number) < 16
    if len(number) < 16:
        return
    text = number if whole else sep.join(number[i:i + 4] for i in range(0, len(number), 4))
    out = mask_pii(before + text)
    assert _no_digits_left(out), out


@settings(max_examples=300, deadline=None)
@given(area=st.sampled_from(["010", "021", "020", "0755", "0571", "0851"]), first=st.sampled_from("2345678"),
       rest=st.text("0123456789", min_size=6, max_size=7), split=st.booleans(), sep=st.sampled_from(SEPS),
       paren=st.sampled_from(["", "()", "（）"]), before=CONTEXT)
def test_landline_with_area_code(area, first, rest, split, sep, paren, before):
    local = first + rest
    local = f"{local[:4]}{sep}{local[4:]}" if split else local
    text = f"{paren[0]}{area}{paren[1]}{local}" if paren else f"{area}{sep}{local}"
    out = mask_pii(before + text)
    assert "[电话]" in out and _no_digits_left(out), out


@settings(max_examples=200, deadline=None)
@given(label=st.sampled_from(["电话", "座机", "固话：", "联系电话 ", "拨打", "tel:"]), first=st.sampled_from("2345678"),
       rest=st.text("0123456789", min_size=6, max_size=7), split=st.booleans(), sep=st.sampled_from(SEPS))
def test_landline_without_area_code_after_a_phone_label(label, first, rest, split, sep):
    local = first + rest
    # "电话2019-2023" reads as a year range, deliberately not masked (test_medical_numbers…)
    assume(not (split and re.fullmatch(r"(?:19|20)\d\d", local[:4]) and re.fullmatch(r"(?:19|20)\d\d", local[4:])))
    local = f"{local[:4]}{sep}{local[4:]}" if split else local
    out = mask_pii(label + local)
    assert "[电话]" in out and _no_digits_left(out), out


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from("48"), rest=st.text("0123456789", min_size=7, max_size=7),
       sizes=st.sampled_from([[10], [3, 3, 4], [3, 4, 3]]), sep=st.sampled_from(SEPS))
def test_service_numbers(kind, rest, sizes, sep):
    out = mask_pii("客服" + _group(kind + "00" + rest, sizes, sep))
    assert out == "客服[电话]", out


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.builds("血压{}/{}mmHg".format, st.integers(70, 240), st.integers(40, 140)),
    st.builds("血糖{}.{}mmol/L".format, st.integers(2, 30), st.integers(0, 9)),
    st.builds("体温{}.{}℃".format, st.integers(35, 42), st.integers(0, 9)),
    st.builds("{}-{:02d}-{:02d}复查".format, st.integers(1990, 2035), st.integers(1, 12), st.integers(1, 28)),
    st.builds("{}{:02d}{:02d}".format, st.integers(1990, 2035), st.integers(1, 12), st.integers(1, 28)),
    st.builds("{}岁".format, st.integers(0, 120)),
    st.builds("每次{}mg，每日{}次".format, st.integers(1, 2000), st.integers(1, 4)),
    st.builds("每天{}-{}ml".format, st.integers(100, 99999), st.integers(100, 999999)),
    st.builds("心率{}次/分".format, st.integers(30, 220)),
    st.lists(st.builds("{}.{}".format, st.integers(0, 200), st.integers(0, 99)), min_size=2, max_size=8).map(" ".join),
))
def test_medical_numbers_never_masked(text):
    out, counts = mask_pii_counts(text)
    assert not counts, (text, out)


@pytest.mark.parametrize("text", ["我是程序员，经常熬夜眼睛干", "我是司机，腰疼好几年了", "我是安全员，想问一下体检项目",
                                  "我是农民，常年在地里干活", "我是白领，久坐颈椎不好"])
def test_an_occupation_after_wo_shi_is_not_a_name(text):
    """程/司/安/农/白 are surnames, but 我是程序员 / 司机 / 安全员 names a job, not a person."""
    assert mask_pii(text) == text


@pytest.mark.parametrize("text,name", [("我是白玲，今年25岁", "白玲"), ("我是安静。", "安静"), ("我是刘老师", "刘老师"),
                                       ("我是司马南，男", "司马南")])
def test_a_name_that_starts_like_an_occupation_is_still_masked(text, name):
    out = mask_pii(text)
    assert name not in out and PII_TAGS["name"] in out


@pytest.mark.parametrize("text", ["座机010-62345678转8016", "座机 010-62345678-8016 找我", "电话（0755）8888 6666 分机 8016"])
def test_a_landline_extension_goes_with_the_number(text):
    out = mask_pii(text)
    assert "[电话]" in out and "8016" not in out and "6666" not in out, out


@pytest.mark.parametrize("text,secret", [("幺三九，幺二三四，五六七八", "五六七八"), ("身份证一一零一零五一九四九一二三一零零二X", "零零二"),
                                         ("手机138零零13八零零零", "13八")])
def test_numbers_in_chinese_numerals_are_masked(text, secret):
    out = mask_pii(text)
    assert secret not in out and ("[手机号]" in out or "[身份证号]" in out), out


@pytest.mark.parametrize("text,name", [
    ("患者辜美华，住院号要补打", "辜美华"),                       # a rarer 百家姓 surname
    ("她叫隗凤琴，医保是省直的", "隗凤琴"),
    ("俺叫王保田，电话打不通", "王保田"),                         # 俺叫
    ("外公桑吉加措只会说藏语", "桑吉加措"),                       # Tibetan: two name elements, no surname, no cue needed
    ("我朋友那仁格日乐从内蒙来", "那仁格日乐"),                   # Mongolian
    ("患者巴特尔，蒙古族，要复印病历", "巴特尔"),                 # one element after a cue
    ("帮我查查我儿子邝景行的过敏原检测", "邝景行"),               # a hospital thing that is theirs
    ("麻烦帮我查一下王建国的报告", "王建国"),
])
def test_session_23_names_are_masked(text, name):
    """Session 23 (stages/PRIVACY.md): rarer surnames, 俺叫 / 他叫 / 名单 cues, Tibetan and Mongolian names, a name
    before 的 + a hospital thing."""
    out = mask_pii(text)
    assert name not in out and "[姓名]" in out


@pytest.mark.parametrize("text", ["扎西德勒！", "乌兰察布的医院能做核磁吗", "乌兰浩特市", "明天的号还有吗", "周末的号",
                                  "张主任的号", "今天的报告出来了吗", "高血压的药能停吗", "医生的号很难挂"])
def test_session_23_name_rules_leave_ordinary_words(text):
    assert mask_pii(text) == text


# ---------------------------------------------------------------- session 24: numbers, addresses, roles, medicines
@pytest.mark.parametrize("text, gone, tag", [
    ("我电话1七89五幺424九7，幺是一啊，血压180/110", "1七89五幺424九7", "[手机号]，幺是一啊"),    # the run stops at the comma
    ("白天打7658296找我，晚上打手机", "7658296", "打[电话]找我"),
    ("身份证号输入35020319685078209提示位数不对", "35020319685078209", "[身份证号]"),      # an ID a digit short
    ("是不是我输错了？620102199911325586，提示校验不通过", "620102199911325586", "[编号]"),  # 18 digits, no date
    ("用9151009110这个门诊号挂的号", "9151009110", "用[编号]这个门诊号"),                   # the record word after it
    ("就诊卡：老大4180945315，老二6948440634", "6948440634", "老二[编号]"),               # a record word 20 chars back
    ("医保个人编号330183556620024603，备案成功了吗", "330183556620024603", "[编号]"),
    ("客服能加dabaoma_xx2021这个微信吗", "dabaoma_xx2021", "加[微信号]这个微信"),
    ("地址青年路157号金茂花园3-2-1101，寄胸片", "3-2-1101", "地址[地址]，"),                 # one placeholder
    ("住碧桂园凤凰城15-3-602，离东院区近吗", "15-3-602", "住[地址]"),
    ("住工业园区鑫达电子厂C3宿舍楼512，手烫伤了", "C3宿舍楼512", "住[地址]"),
    ("和平里七区12号楼3门201，救护车多久到", "12号楼3门201", "[地址]"),
])
def test_session_24_numbers_and_addresses(text, gone, tag):
    out = mask_pii(text)
    assert gone not in out and tag in out, out


@pytest.mark.parametrize("text", [
    "医疗器械注册证编号国械注准20193070123，这个血糖仪准不准",    # a product's number after 编号
    "药盒条形码6901234567892扫出来是别的药", "化验单上的时间20240315083000", "住院部3楼12床", "血压130-85-72",
    "3号楼2单元的电梯坏了吗", "住宿舍，室友感冒了", "中药方里有徐长卿15克、刘寄奴10克，孕妇能吃吗", "连翘和金银花能一起泡水吗",
    "我是钟点工，老人背上有压疮", "我是丁克，想做结扎", "楼上邻居半夜咳嗽"])
def test_session_24_look_alikes(text):
    assert mask_pii(text) == text


def test_masking_twice_changes_nothing_on_random_text():
    """Random strings of name, number and address characters: a placeholder from the first masking must not give away
    another name on the second (session 24: the name scorer after the rules did so in 28 of 20,000 before the name layer
    repeated until nothing changed)."""
    import random

    rng = random.Random(24)
    alphabet = list("王李张欧阳司马陈建国小明丽娟华0123456789-[] ，。、幺一二三四五六七八九零号楼单元室门栋住地址微信加这个"
                    "QQ@.abcXx电话打拨身份证编号就诊卡徐长卿连翘\n\t😀")
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        once = mask_pii(text)
        assert mask_pii(once) == once, text


# session 24, from development writer V4: records, QQ, WeChat and addresses in more forms
@pytest.mark.parametrize("text, gone", [
    ("My daughter's MRN is K3301879, 想约儿科", "K3301879"),
    ("住院号我看了手环，上面写的Y-0283114，家属几点能送饭", "Y-0283114"),
    ("影像号PX240611-0932，片子能邮寄吗", "PX240611-0932"),
    ("MZ7730211是我的门诊号，查报告输哪个", "MZ7730211"),
    ("就诊卡号分别是：200318852（我）、200318853（孩子）", "200318853"),
    ("472910是我奶奶的病案号，要复印手术记录", "472910"),
    ("加我2208471936这个扣扣，化验单拍给你们", "2208471936"),
    ("qq 2287 903 114 是我的，把饮食注意事项发我", "2287 903 114"),
    ("my QQ is 2847193650, please add me", "2847193650"),
    ("Q:7391046285 也能找到我", "7391046285"),
    ("lily.wang.gz这个是我微信，伤口照片发你", "lily.wang.gz"),
    ("加V runner_zhao88，膝盖疼想约运动医学科", "runner_zhao88"),
    ("我们家是平房，在帽儿胡同甲7号，救护车进不来", "帽儿胡同甲7号"),
    ("上海长乐路788弄12号501室，在送药范围吗", "788弄12号501室"),
    ("俺家在靠山屯二队，透析能不能在乡卫生院做", "靠山屯二队"),
    ("门牌是5号楼1102，晚上送药先打电话", "5号楼1102"),
    ("收药地址 朝阳小区 7/3/602", "7/3/602"),
])
def test_session_24_v4_forms(text, gone):
    assert gone not in mask_pii(text)


@pytest.mark.parametrize("text", [
    "戊肝抗体HEV检查结果是CG14892599是什么意思",          # a code with no record word near it
    "医院东门是解放大道1277号，西门是哪条路", "社区卫生服务中心地址是和平街23号吗",   # a public place's address
    "药品追溯码81234509876543210123，扫码显示已核销", "奶粉罐底的条码6903148091288，是特医配方吗",
    "注册证国械注进20153220173，医保能报吗", "保健品上写的国食健字G20140321，可靠吗", "住院部3号楼1203病房",
    "复查时间2024/5/12", "QQ群 628193746 里有科普文章"])
def test_session_24_v4_look_alikes(text):
    assert mask_pii(text) == text


def test_a_lone_v_before_an_english_word_is_not_a_wechat_label():
    assert mask_pii("Type v Something happened") == "Type v Something happened"
    assert "runner_zhao88" not in mask_pii("加V runner_zhao88，膝盖疼")


# session 25 (development writer V5; examples written for this test): QQ a few characters after its word or in groups,
# WeChat ids / V信 / 卫星 / a handle before 这是我的微信, Taiwan and Hong Kong addresses, English street addresses,
# spaces inside an address, state farms / Bingtuan companies / compound rows, a building's estate name, record labels
# (建档号, 放疗号), names signed after a dash or before 敬上, greeted at the start, after 让 / 替 / 跟 / 叫, before
# 嘅 + a relative, and a name listed before one already masked
@pytest.mark.parametrize("text, gone", [
    ("手机和QQ不一样，QQ是：58120937，有结果麻烦留言", "58120937"),
    ("能加个扣扣吗？6219038854，我把片子发过去", "6219038854"),
    ("qq 512-339-0871 白天在线", "512-339-0871"),
    ("有空请Q我 30918254，想问复诊", "30918254"),
    ("球球联系：88213097", "88213097"),
    ("My QQ number: 3398102745, thanks", "3398102745"),
    ("我嘅QQ係 2093381745，唔該", "2093381745"),
    ("1093827465这是我的扣扣，结果出来说一声", "1093827465"),
    ("wxid_7hq2m9x0p3这是我的微信", "wxid_7hq2m9x0p3"),
    ("有事V信chenmama2019", "chenmama2019"),
    ("卫星号lucky_girl_77，加一下", "lucky_girl_77"),
    ("寄到台南市东区中华东路二段77巷12弄3号", "二段77巷12弄3号"),
    ("家住高雄市三民区建工路415号7楼之3，可以寄药吗", "415号7楼之3"),
    ("住喺沙田好运城12座9楼D室", "12座9楼D室"),
    ("Please send it to Flat 5C, 12 Nathan Road, Kowloon", "12 Nathan Road"),
    ("My address is No. 8, Lane 210, Changle Road", "No. 8, Lane 210, Changle Road"),
    ("我家 翠湖小区 3栋 1单元 702 老人行动不便", "3栋 1单元 702"),
    ("地址 解放路 66 号 2 幢 3 单元 501", "66 号 2 幢 3 单元 501"),
    ("我在红旗农场三分场二队，能转诊吗", "红旗农场三分场二队"),
    ("住一二七团五连，孩子发烧", "一二七团五连"),
    ("机械厂家属院7排12号，老人摔了", "家属院7排12号"),
    ("送到 3-1-402 就行", "3-1-402"),
    ("我是金色家园12栋1603的住户", "金色家园12栋1603"),
    ("建档号5520193847，产检改期", "5520193847"),
    ("化疗号HL20931，下周几点来", "HL20931"),
    ("孩子一直咳，怎么办？——孟晓光", "孟晓光"),
    ("谢谢大夫！柯雨欣 敬上", "柯雨欣"),
    ("严一鸣你好，你爸的报告出来了", "严一鸣"),
    ("麻烦让乔志刚明天带医保卡来", "乔志刚"),
    ("我替姜慧敏问一下能不能改约", "姜慧敏"),
    ("我是黎嘉豪嘅妈妈，佢发烧", "黎嘉豪"),
])
def test_session_25_forms(text, gone):
    assert gone not in mask_pii(text)


@pytest.mark.parametrize("text", [
    "我爸住你们住院部6号楼15床，出院要带什么",           # the hospital's own building after 住
    "门诊楼A座3楼是不是抽血的地方",
    "QQ群 58120937 里的科普靠谱吗",                       # a QQ group, not a person
    "扣扣上说复查前一天晚上10点以后禁食，血糖要测几次",    # no number of 5+ digits after the word
    "李时珍说何首乌能乌发，是真的吗", "张仲景的方子现在还能用吗", "钟南山院士说的那个药能买到吗",
    "季德胜蛇药片被蜂蛰了能用吗",
    "血压 150 / 95，心率 88 次",
    "I walked 3 blocks on Main Street and felt dizzy",
])
def test_session_25_look_alikes(text):
    assert mask_pii(text) == text


def test_a_name_listed_before_a_masked_one_is_masked_too():
    out = mask_pii("余建伟和[姓名]都发烧了")
    assert "余建伟" not in out


# --- session 27: Hong Kong, Macau and Taiwan forms (stages/PRIVACY.md, *Session 27*) -----------------
@pytest.mark.parametrize("text, gone", [
    ("我個身份證係 A123456(3)，要唔要帶埋正本", "123456"),         # HKID, check digit valid, in brackets
    ("HKID：Y6543210，覆診用", "654321"),                          # after a cue: the check digit is not checked
    ("佢張身份證 AB987654 (3) 唔見咗點補", "987654"),                # two letters, a space before the bracket
    ("阿嫲身份證號碼 c668668(9)", "668668"),                        # lower case after a cue (check digit mistyped)
    ("台灣身分證字號 A123456789 健保卡也要帶嗎", "123456789"),     # Taiwan, checksum valid
    ("我的身分證是 B212345678", "212345678"),                       # after a cue
    ("澳門身份證 5215299(8) 可以用嚟登記嗎", "5215299"),             # Macau, bracketed check digit
    ("澳門居民身份證 75123456", "75123456"),                        # eight digits after a cue
    ("回鄉證 H60281937 過關用，覆診要帶嗎", "60281937"),
    ("回乡证号码M1234567801", "1234567801"),
    ("852-6123-4567 係我手機，有事打俾我", "61234567"),
    ("(852) 98765432 搵我就得", "98765432"),
    ("853 6612 3456 澳門號碼", "66123456"),
    ("886-912-345-678 是我台灣的手機", "912345678"),
    ("WhatsApp 6234 8890 傳個報告俾我", "62348890"),
    ("聯絡我 9387 2210 啦", "93872210"),
    ("屋企喺沙田瀝源邨福海樓803室，可唔可以寄藥", "福海樓803室"),
    ("地址係彩虹邨金碧樓1203室", "金碧樓1203室"),
    ("住太古城耀星閣20樓D室，老人家跌親", "耀星閣20樓D室"),
    ("氹仔海洋花園第3座12樓A，請問可以上門打針嗎", "12樓A"),
    ("Flat B, 12/F, Block 3, Kornhill, 2 Hong On Street", "Kornhill"),
    ("My name is Chan Tai Man, 想約覆診", "Chan Tai Man"),
    ("Patient: Wong Ka-yan, 8 years old", "Wong Ka-yan"),
    ("my son Lee Siu-ming has a fever of 39", "Lee Siu-ming"),
    ("病人：Lin Yi-chun，想改期", "Lin Yi-chun"),
    # after the development writer V9 (messaging handles, Hospital Authority numbers, Cantonese kin, romanised names)
    ("報告出來可以LINE我嗎？我的LINE ID：dora_tw1988", "dora_tw1988"),
    ("我的賴是 xiaoqi.0520，謝謝", "xiaoqi.0520"),
    ("Telegram 係 @kinman_lau 搵我", "kinman_lau"),
    ("sunny.days_22 係我嘅IG，可以DM我", "sunny.days_22"),
    ("唔該查下HN40231875(6)嘅MRI報告", "40231875"),
    ("病人HN 5521 0934 7，想改期", "5521 0934"),
    ("健保卡號 0000 4471 2093 讀不到", "4471 2093"),
    ("保單 P30928471 可唔可以直接過數", "30928471"),
    ("Policy No. 771-203948-55, can I claim?", "203948"),
    ("phone: 6123.4870，SMS都得", "6123.4870"),
    ("電話 6 2 3 4 8 8 1 0 有事打俾我", "6 2 3 4 8 8 1 0"),
    ("我手機係六二三四八八一零", "六二三四八八一零"),
    ("澳門身份證 5/203948/1 可以嗎", "203948"),
    ("我阿爺馮志強入咗醫院", "馮志強"),
    ("我外母葉麗華想睇骨科", "葉麗華"),
    ("I'm Carmen Lau, booking for my son", "Carmen Lau"),
    ("Please tell Mr Cheung Wing Kei in bed 12 his wife is here", "Cheung Wing Kei"),
    ("Ho Ka Ming 嘅報告出咗未", "Ho Ka Ming"),
    ("Please post it to Flat 7C, 21/F, Block 2, Sunshine Gardens", "Flat 7C, 21/F"),
    ("社康護士請去寶達邨達欣樓1207", "達欣樓1207"),
])
def test_session_27_forms(text, gone):
    assert gone not in mask_pii(text)


@pytest.mark.parametrize("text", [
    "我住喺瑪麗醫院K10病房12號床隔籬，探病幾點",         # the hospital's ward and bed
    "伊利沙伯醫院B座5樓抽血係咪要空肚",
    "九巴1A 喺A2出口等，去急症室點行",                   # bus route, MTR exit
    "8號風球醫院門診開唔開",
    "衛署藥製字第012345號這個藥可以給小孩吃嗎",           # a Taiwan drug licence number
    "血糖 7.8，HbA1c 6.5%，膽固醇 5.2",
    "型号A1234567的血压计准不准",                         # a product model
    "我屋企喺觀塘，附近有冇夜診",                         # a district alone
    "我住黃大仙 Wong Tai Sin 附近",                       # a place spelled like a name: no cue
    "Dr Chan said I should rest",
    "我住喺Ho Man Tin，近Wong Tai Sin站",                 # places spelled like names
    "甘油三酯TG参考值为0.48-1.88mmol/L",                  # TG is triglycerides, not Telegram
    "医院官方IG @sunshine_hosp 有冇讲探病时间",           # an official account
    "IgE 450 IU/mL，LINE上医生说要复查",
    "甲状腺结节TI-RADS 3类，微信上说要穿刺",
    "If you refuse again just ignore the policy this once",
    "戶口本要帶嗎？身份證已經帶咗",
])
def test_session_27_look_alikes(text):
    assert mask_pii(text) == text


@settings(max_examples=200, deadline=None)
@given(st.sampled_from("ABCDEGHKMPRVYZ"), st.integers(0, 999999))
def test_every_valid_hkid_is_masked_without_a_label(letter, n):
    from stages.safety.pii_regional_ids import valid_hkid

    digits = f"{n:06d}"
    check = next(c for c in "0123456789A" if valid_hkid(letter, digits, c))
    out = mask_pii(f"幫我查下{letter}{digits}({check})個報告")
    assert digits not in out and "[身份证号]" in out


def test_regional_check_digits_follow_the_published_examples():
    from stages.safety.pii_regional_ids import valid_hkid, valid_twid

    assert valid_hkid("A", "123456", "3") and not valid_hkid("A", "123456", "7")
    assert valid_twid("A", "123456789") and not valid_twid("A", "123456788")


# session 28: given-name characters from jieba's dictionary after a person cue; a name whose last character and the
# next word's first are a dictionary bigram (车建华|明天: 华明) when jieba itself ends a word there
@pytest.mark.parametrize("text, gone", [
    ("我朋友張家瑋騎車摔倒，現在在急診", "家瑋"),
    ("我老公车建华明天手术，阿司匹林停几天", "车建华"),
    ("我儿子刘子廷发烧39度", "子廷"),
    ("我爷爷陈金水今年82了，血压高", "金水"),
    ("我同事赵志玮想挂号", "志玮"),
    ("手机[手机号]，孙丽", "孙丽"),                                  # a signature after a masked contact
    ("我阿爸乌力吉头疼呕吐，能远程会诊吗", "乌力吉"),                # an element after a cue, before a verb
    ("我是卓玛措的女儿", "卓玛措"),                                  # an element and one more character
    ("其其格、乌日娜这两个都要做筛查", "其其格"),                    # a list of elements
    ("巴特尔，[身份证号]，去年做过阑尾切除", "巴特尔"),              # an element before what follows a name
    ("我表哥沙马拉布从凉山过来", "沙马拉布"),                        # a Yi clan name + a given name
    ("热依拉·阿不都热合曼，我女儿，两岁", "阿不都热合曼"),          # 不 / 都 in a transliteration
    ("阿依古丽·哈力木，哈萨克族，孕期贫血", "哈力木"),
    ("病人是我公公孙有财，在肝胆外科12床", "孙有财"),                # 有 / 来 in older names, after a person cue
    ("他叫陈来福，骨科二病区", "陈来福"),
    ("俺爹王福来胃癌术后，化疗要几次", "王福来"),
    ("于桂芝，七十岁，脑出血刚出院", "于桂芝"),                      # an age in numerals
    ("转发：“邹凯，你妈的手术时间定了”", "邹凯"),                    # the person addressed
    ("@蒋欣怡 你妈的CT约好没", "蒋欣怡"),
    ("我娃安子豪要住院做手术", "安子豪"),
    ("老伴儿于桂芝脑出血刚出院", "于桂芝"),
    ("我们是张家沟三组的，能挂专家号吗", "张家沟三组"),                # rural addresses (session 28)
    ("我们在阿巴嘎旗巴彦图嘎嘎查二组放牧", "嘎查二组"),
    ("勐海县勐遮镇曼弄村民小组18号，我妈妈被蛇咬了", "曼弄村民小组"),
    ("俺家在曹县庄寨镇吕庄村东头第三户", "第三户"),
    ("住红星乡前进屯，大老远过来看病", "前进屯"),
    ("福建仙游榜头镇坝下村后厝56号，胆结石能住院吗", "后厝56号"),
    ("杭州滨江东信和苑东区7幢1102，产检建档要带啥", "东信和苑"),        # 和 in an estate's name, a zone
    ("苏州园区湖东凤凰城C区28幢1402，宝宝42天体检", "凤凰城C区"),      # …城 with a lettered zone
    ("深圳龙岗万科城四期17栋B座2304，胎动少了", "万科城四期"),
    ("[地址]兰大家属院8号楼，吃华法林要多久查INR", "兰大家属院"),       # a staff compound
    ("厦门湖里金山西二里45号1202，发烧38.8", "西二里45号"),             # a 里 lane
    ("住凉山昭觉县解放乡火普村，娃娃发烧", "火普村"),                   # a village of a township
    ("我阿爸在阿巴嘎旗巴彦图嘎查放牧", "巴彦图嘎查"),
    ("我屋里在于都禾丰镇大桥村下坝组，细伢子咳嗽", "下坝组"),
    ("我们在疏附县站敏乡3村5组，孩子肚子疼", "3村5组"),
])
def test_session_28_forms(text, gone):
    assert gone not in mask_pii(text)


@pytest.mark.parametrize("text", [
    "原发性的也叫艾迪生病，要查皮质醇",       # a verb cue (叫) before a disease: only the curated characters
    "小三阳患者谷丙转氨酶75要吃药吗",         # 丙: in 8 dictionary names, below the count
    "我婆婆查身体时转氨酶60",                 # 身, 体: mostly in words
    "我老公车祸后头疼",
    "我妈水肿得厉害",
    "我爸冷汗直冒",
    "我女儿庭院里摔倒了",
    "我是江西来的，金银花泡水喝能降火吗",     # 来 after a place: a phrase
    "我爸王有点咳嗽",
    "好长时间·胃吃了东西总不消化",           # a middle dot between ordinary words
    "我们去乌兰察布看病方便吗",               # an element that starts a place name
    "呼和浩特的医院哪家好",
    "我妈转给我的养生文章，你看看靠不靠谱",
    "我爸冷汗直冒",
    "[地址]附近有药店吗",
    "我们村第一家诊所关门了",                 # 第一家 without a place in the village
    "去镇上的屯子里买药",
    "村卫生室在村口",
    "我们乡有几个村都没有卫生室",
    "镇里的村民都来体检",
    "去乡里村卫生室打针",
    "住院部3号楼12床",
    "医院东院区2号楼在哪",
])
def test_session_28_look_alikes(text):
    assert mask_pii(text) == text


def test_dictionary_given_chars_are_read_from_jieba_not_listed():
    from stages.safety.pii_name_dictionary import dictionary_given_chars
    from stages.safety.pii_name_lists import GIVEN_CHARS

    chars = dictionary_given_chars()
    assert {"廷", "玮", "水"} <= chars and not {"有", "身", "体", "丙", "爷", "姨"} & chars
    assert len(chars - GIVEN_CHARS) > 300       # far beyond the curated list, from the dictionary's name entries


def test_a_range_shaped_like_a_service_number_is_kept():
    """Found by test_medical_numbers_never_masked (session 28): 40000-10000 read as 400-001-0000."""
    assert mask_pii("每天40000-10000ml") == "每天40000-10000ml"
    assert mask_pii("客服400-123-4567") == "客服[电话]"


@pytest.mark.parametrize("text, gone", [
    ("快递寄到黄陂区王家湾村委会后面那排第三户", "第三户"),              # a house by its row and place (session 29)
    ("我家在包头青山区一冶生活区12街坊5栋", "12街坊5栋"),                # a numbered 街坊 of a staff quarter
    ("住在西湖大道与秋涛路交叉口绿城兰园2期9栋", "2期9栋"),              # an estate's phase and building, no flat
    ("地址：福州鼓楼区黄家巷17号", "黄家巷17号"),                       # 家 inside a lane's name
    ("是和平路96号，楼下有药店吗", "和平路96号"),                       # 和 opening a road's name
    ("在沙井镇新桥村共和工业区5号厂房做工", "5号厂房"),                   # an industrial zone's factory building
    ("俺住在高铁站项目部活动板房三排12号", "三排12号"),                   # rows of site housing
    ("药寄到万科城二期北门菜鸟驿站", "菜鸟驿站"),                         # a delivery point at an estate
    ("我住在阳光城市花园，老人腿脚不便", "阳光城市花园"),                   # an estate named alone after a home label
    ("我家在碧桂园，能上门吗", "碧桂园"),
    ("地址是和平路88号，3栋2单元501，麻烦寄药", "3栋2单元501"),          # the flat after an address already masked
    ("家庭住址：龙湖春江郦城，2期，11栋，3单元，1202", "1202"),          # an address given in pieces
    ("我住新城花园。五栋。一单元。602。", "602"),
    ("地址是文昌里12#楼2单元301", "12#楼"),                             # # for 号
    ("住在金色家园C2区6栋1单元1801", "C2区6栋"),                        # a lettered zone with a number
    ("长安镇上沙工业园区A12栋宿舍302", "宿舍302"),                        # a dormitory room
    ("我爸在康宁养老院2号楼305房间", "2号楼305"),                        # a care home's building and room
    ("住在南坪协信星光3组团12-2-4", "12-2-4"),                          # Chongqing: building-unit-floor-flat
    ("家在环市东路丽晶公寓2305室", "丽晶公寓2305"),                       # a flat in a named apartment block
    ("寄到锦绣华庭5座1603", "5座1603"),
    ("兵团第二师二十二团三连，孩子发烧", "二十二团三连"),                   # a regiment written with one or more numerals
    ("师部十团五连家属院", "十团五连"),
    ("我是湛江遂溪县城月镇岭头村委会水尾村的", "水尾村"),                  # a natural village under its 村委会
    ("广西北流市民乐镇大化村上岭队", "上岭队"),                            # a named 队 of a village
    ("红兴隆管局友谊农场第五管理区3作业站", "3作业站"),                    # a farm's management zone and station
    ("佛山南海区桂城街道南海大道北88号", "南海大道北88号"),                 # a direction between the road and its number
    ("三亚吉阳区红沙路东5巷8号", "东5巷8号"),
    ("福州鼓楼区衣锦坊22号", "衣锦坊22号"),                               # a 坊 lane
    ("遵义市汇川区上海路星河湾B区3栋2单元12-3", "12-3"),                  # a floor-flat room after the unit
])
def test_session_29_address_forms(text, gone):
    assert gone not in mask_pii(text), mask_pii(text)


@pytest.mark.parametrize("text", [
    "孩子住在幼儿园旁边的小区里，最近咳嗽",        # an estate word that is not a home
    "我住在县城，离医院远",
    "我家在农村，看病不方便",
    "孩子在大学城上学",
    "住院部B座1203病房能探视吗",                   # the hospital's own tower and room
    "化疗第3期，7栋住院部在哪",
    "我和妈妈一起来的，住哪个病房",
    "门诊大楼1203室是什么科",
    "医院南门菜鸟驿站几点关门",                     # the hospital's own delivery point
    "2024-1-3复查的结果",
    "我们村委会旁边有卫生室",
])
def test_session_29_address_look_alikes(text):
    assert mask_pii(text) == text


@pytest.mark.parametrize("text, gone", [
    ("沙马阿果是我表妹，从凉山来看病", "沙马阿果"),            # a Yi name before 是我 + a relative (shared after-cues)
    ("扎西顿珠的家属在吗", "扎西顿珠"),
    ("岩温光和玉香罕夫妻俩都发烧", "岩温光"),                  # Dai names: 岩 / 玉 and two elements, anywhere
    ("岩温光和玉香罕夫妻俩都发烧", "玉香罕"),
    ("我阿爸岩罕七十岁了", "岩罕"),                          # one element after a person cue
    ("我外婆陈秀妹血压高", "陈秀妹"),                        # 妹 in an older given name, after a person cue
    ("朴顺姬金哲洙两位老人要体检", "金哲洙"),                  # a run of names before a count of people
    ("朴顺姬金哲洙两位老人要体检", "朴顺姬"),
    ("[姓名]欧阳倩两个人一起做的手术", "欧阳倩"),
    ("赵子墨孙雨桐这两个孩子都出水痘了", "孙雨桐"),
    ("邢占魁八十二岁了还能做手术吗", "邢占魁"),               # an age right after the name; 占 of older names
    ("我是郝拴柱的孙女，想问爷爷的药", "郝拴柱"),
    ("我爹吴满仓咳嗽", "吴满仓"),
    ("车间有个工人葛建军手被压了", "葛建军"),                 # 工人 as a cue
    ("我奶奶笪桂英住院了", "笪桂英"),                         # rare surnames
    ("麻烦转告一下鲁志刚，检查改到周五", "鲁志刚"),
])
def test_session_29_name_forms(text, gone):
    assert gone not in mask_pii(text), mask_pii(text)


@pytest.mark.parametrize("text", [
    "孙子四岁，发烧两天了",                                 # a kin word, not a name, before an age
    "孙女三岁半，咳嗽",
    "玉米过敏怎么办",
    "在岩石上摔了一跤",
    "李明这两个月老咳嗽",                                   # a count of months, not of people
    "孩子骨折红肿",
    "咸菜吃多了血压高",
    "粘膜出血怎么办",
    "[姓名]，明天的手术改到下午了",                         # a word after a masked name and a comma
    "我妹妹三岁了",
])
def test_session_29_name_look_alikes(text):
    assert mask_pii(text) == text or "[姓名]" in text and mask_pii(text) == text, mask_pii(text)
