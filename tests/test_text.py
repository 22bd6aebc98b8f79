import pytest

from stages.data.text import TermDict, luhn_ok, mask_pii, normalize, strip_boilerplate, valid_id_number

VALID_ID = "11010519491231002X"        # GB 11643 checksum valid
INVALID_ID = "110105194912310021"      # same digits, wrong check character
VALID_CARD = "6222600260001072444"     # passes Luhn (19 digits)
INVALID_CARD = "6222600260001072445"


def test_html_entities_nfkc_whitespace():
    assert normalize("<p>头&nbsp;疼&amp;发热</p><br/>ＡＢＣ１２３， 好 的") == "头疼&发热\nABC123，好的"
    assert normalize("a  \t b\r\n\r\n c") == "a b\nc"


def test_nfkc_keeps_chinese_punctuation():
    assert normalize("你好，医生！我头疼？（三天）") == "你好，医生！我头疼？（三天）"


def test_boilerplate_listed_set():
    a = "你好，高血压病人可以口服党参。感谢您的进行咨询，期望我的解释对你有所帮助。"
    assert strip_boilerplate(a) == "高血压病人可以口服党参。"
    # a greeting word inside the answer is not touched
    assert strip_boilerplate("见到医生时说你好即可，不必紧张。") == "见到医生时说你好即可，不必紧张。"


def test_term_standardisation_longest_first_and_canonical_stable():
    t = TermDict({"心梗": "心肌梗死", "糖尿": "糖尿病", "核磁": "磁共振成像", "核磁共振": "磁共振成像"})
    assert t.apply("心梗后做核磁共振，糖尿病和糖尿") == ("心肌梗死后做磁共振成像，糖尿病和糖尿病", 3)
    assert t.terms_in("心梗和心肌梗死") == {"心肌梗死"}


def test_term_file_errors_name_line(tmp_path):
    f = tmp_path / "t.tsv"
    f.write_text("# c\n心梗\t心肌梗死\nbroken line\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t.tsv:3"):
        TermDict.load(f)


def test_id_checksum():
    assert valid_id_number(VALID_ID)
    assert not valid_id_number(INVALID_ID)


def test_luhn():
    assert luhn_ok(VALID_CARD) and not luhn_ok(INVALID_CARD)


@pytest.mark.parametrize("text,tag,kind", [
    ("我的手机13812345678请回电", "[手机号]", "mobile"),
    ("电话 +86 138-1234-5678", "[手机号]", "mobile"),
    ("座机010-62345678", "[电话]", "landline"),
    (f"身份证{VALID_ID}", "[身份证号]", "id"),
    ("邮箱 zhang.san@example.com", "[邮箱]", "email"),
    (f"卡号{VALID_CARD}", "[银行卡号]", "bank"),
    ("我叫王小明，今年30岁", "我叫[姓名]", "name"),
    ("患者姓名：李四，男", "患者姓名：[姓名]", "name"),
    # international numbers (session 22): a "+" or "00", a country code, 8-15 digits in all
    ("我在香港，电话+852 9123 4567", "电话[电话]", "landline"),
    ("台湾手机 +886 912 345 678 打这个", "手机 [电话] 打这个", "landline"),
    ("英国那边的号 +44 20 7946 0958", "号 [电话]", "landline"),
    ("澳门 00853 6612 3456", "澳门 [电话]", "landline"),
    # e-mails dictated with spaces
    ("邮箱是 z h a n g w e i 1 2 3 at 163 dot com", "邮箱是 [邮箱]", "email"),
    ("邮箱 zhang wei 88 @ qq.com 谢谢", "邮箱 [邮箱] 谢谢", "email"),
    ("email: li.ming_2020 @ gmail . com", "email: [邮箱]", "email"),
    ("我的邮箱 wangfang 1990 艾特 163 点 com", "我的邮箱 [邮箱]", "email"),
])
def test_pii_masked(text, tag, kind):
    out, counts = mask_pii(text)
    assert tag in out and counts.get(kind) == 1


@pytest.mark.parametrize("text", [
    "血压150/90，血糖7.8，体重65公斤",    # numbers that are not PII
    "12345678901",                      # 11 digits not starting 1[3-9]
    "我叫不出名字的病",                  # no name after 我叫 in a name pattern position
    "I was at 3.5 mg yesterday",        # "at" + a number is not an e-mail domain
    "体重从 +2 kg 到 +5 kg，尿蛋白++",     # signed lab and weight changes are not international numbers
    "艾特我一下就行",                     # 艾特 (@-mention) without an address
])
def test_pii_negative(text):
    out, counts = mask_pii(text)
    assert out == text and not counts


def test_a_long_number_that_cannot_be_an_id_is_masked_as_a_record():
    """18 digits that cannot be an ID (month 13) or a card (no Luhn): since session 24 a lone run of 15+ digits is
    somebody's number (an insurance or member number) and masked as a record, not an ID."""
    out, counts = mask_pii("编号110105194913310021")
    assert out == "编号[编号]" and counts == {"record": 1}
    out, counts = mask_pii(f"序列{INVALID_CARD}")          # fails Luhn, no card label: not a card, still a number
    assert out == "序列[编号]" and counts == {"record": 1}


def test_a_mistyped_id_is_still_masked():
    """A wrong check character leaves 17 true digits: an ID-shaped number (region + birth date) is masked anyway."""
    out, counts = mask_pii(f"编号{INVALID_ID}")
    assert INVALID_ID not in out and counts == {"id": 1}
