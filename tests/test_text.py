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
])
def test_pii_masked(text, tag, kind):
    out, counts = mask_pii(text)
    assert tag in out and counts.get(kind) == 1


@pytest.mark.parametrize("text", [
    "编号110105194913310021",           # 18 digits that cannot be an ID (month 13; no Luhn)
    f"序列{INVALID_CARD}",             # fails Luhn, no card label (after 卡号 it is masked: tests/test_pii.py)
    "血压150/90，血糖7.8，体重65公斤",    # numbers that are not PII
    "12345678901",                      # 11 digits not starting 1[3-9]
    "我叫不出名字的病",                  # no name after 我叫 in a name pattern position
])
def test_pii_negative(text):
    out, counts = mask_pii(text)
    assert out == text and not counts


def test_a_mistyped_id_is_still_masked():
    """A wrong check character leaves 17 true digits: an ID-shaped number (region + birth date) is masked anyway."""
    out, counts = mask_pii(f"编号{INVALID_ID}")
    assert INVALID_ID not in out and counts == {"id": 1}
