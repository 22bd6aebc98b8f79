"""stages.data.text.normalize: unescape → NFKC → zero-width/space folding → tag stripping, to a fixed point."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.data.text import normalize

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064",
              "\ufeff", "\u00ad", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
              "\u2069", "\u061c"]
SPACES = ["\u3000", "\u00a0", "\u2002", "\u2003", "\u2009", "\u200a", "\u202f", "\u205f", "\u1680", "\t"]


@pytest.mark.parametrize("zw", ZERO_WIDTH)
def test_zero_width_and_format_characters_removed(zw):
    assert normalize(f"138{zw}1234{zw}5678") == "13812345678"
    assert normalize(f"头{zw}疼") == "头疼"


@pytest.mark.parametrize("space", SPACES)
def test_every_unicode_space_folds_to_one_ascii_space(space):
    assert normalize(f"138{space}{space}1234{space}5678") == "138 1234 5678"


def test_unescape_happens_before_tag_stripping():
    # the old order (strip tags, then unescape) turned entity-escaped tags into real markup
    assert normalize("&lt;|im_end|&gt;") == "<|im_end|>"
    assert normalize("&lt;script&gt;alert(1)&lt;/script&gt;头疼") == "alert(1)头疼"


def test_double_escaped_entities_reach_a_fixed_point():
    assert normalize("&amp;lt;|im_start|&amp;gt;system") == "<|im_start|>system"
    assert normalize("&amp;amp;lt;b&amp;amp;gt;粗体") == "粗体"


def test_entity_split_by_a_zero_width_character():
    assert normalize("&l\u200bt;|im_end|&g\u200bt;") == "<|im_end|>"


def test_nfkc_folds_full_width_forms_and_keeps_chinese_punctuation():
    assert normalize("＜｜im_start｜＞") == "<|im_start|>"
    assert normalize("zhangsan＠qq．com") == "zhangsan@qq.com"
    assert normalize("１３８　１２３４　５６７８") == "138 1234 5678"
    assert normalize("你好，医生！我头疼？（三天）：是的；") == "你好，医生！我头疼？（三天）：是的；"


def test_html_and_whitespace_behaviour_kept():
    assert normalize("<p>头&nbsp;疼&amp;发热</p><br/>ＡＢＣ１２３， 好 的") == "头疼&发热\nABC123，好的"
    assert normalize("a  \t b\r\n\r\n c") == "a b\nc"
    assert normalize("line 1\u2028line 2\u2029") == "line 1\nline 2"


def test_less_than_in_medical_text_is_not_a_tag():
    assert normalize("血糖<7.0，血压>140") == "血糖<7.0，血压>140"
    assert normalize("血糖&lt;7.0mmol/L") == "血糖<7.0mmol/L"


def test_nfkc_expansion_is_visible_to_length_checks():
    assert len(normalize("\ufdfa" * 10)) == 180


def test_rounds_are_bounded():
    nested = "&amp;" * 3 + "lt;"
    for _ in range(20):
        nested = nested.replace("&", "&amp;")
    assert isinstance(normalize(nested), str)     # terminates (MAX_ROUNDS) on pathological input


_ALPHABET = st.sampled_from(list("头疼发热 abc<>|&;#x0123456789，。？！：；（）\n\t") + ZERO_WIDTH + SPACES
                            + ["&lt;", "&gt;", "&amp;", "&nbsp;", "&#60;", "＜", "｜", "＞", "＠", "\ufdfa", "<br>",
                               "<p>", "</p>", "im_start"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_normalize_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_normalize_output_has_no_invisible_characters(text):
    import unicodedata

    out = normalize(text)
    assert all(c == "\n" or unicodedata.category(c)[0] != "C" for c in out)
    assert not any(unicodedata.category(c) == "Zs" and c != " " for c in out)
