import pytest

from appliance.domain.errors import DomainError
from appliance.domain.text import clean_text


def test_control_bytes_and_bidi_overrides_never_reach_a_printer():
    raw = "no\x1b@ onion\x00s\x07 \u202eplease\r\nthanks\x9b"
    assert clean_text(raw) == "no@ onions please thanks"


def test_chinese_and_emoji_survive():
    assert clean_text("  少放辣，不要香菜 🙏 ") == "少放辣，不要香菜 🙏"


def test_too_long_is_refused_not_cut():
    with pytest.raises(DomainError) as err:
        clean_text("辣" * 141)
    assert err.value.code == "text_too_long"
    assert clean_text("辣" * 140) == "辣" * 140
