import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.errors import DomainError
from appliance.domain.tokens import TOKEN_CHARS, TableRef, read_table_token, sign_table_token

SECRET = b"k" * 32
STORE = "0a1b2c3d"


@given(
    st.integers(min_value=1, max_value=2**32 - 1),
    st.integers(min_value=1, max_value=2**16 - 1),
    st.binary(min_size=16, max_size=64),
)
def test_round_trip(table_id, version, secret):
    ref = TableRef(STORE, table_id, version)
    token = sign_table_token(secret, ref)
    assert len(token) == TOKEN_CHARS
    assert token == token.lower() and token.isalnum()
    assert read_table_token(secret, STORE, token) == ref


@given(
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=0, max_value=TOKEN_CHARS - 1),
    st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"),
)
def test_any_changed_character_is_forged(table_id, position, char):
    token = sign_table_token(SECRET, TableRef(STORE, table_id, 1))
    tampered = token[:position] + char + token[position + 1 :]
    if tampered == token:
        return
    with pytest.raises(DomainError) as err:
        read_table_token(SECRET, STORE, tampered)
    assert err.value.code in {"forged_token", "other_store"}


def test_another_table_cannot_be_guessed_by_editing_the_id():
    token = sign_table_token(SECRET, TableRef(STORE, 5, 1))
    raw = bytearray(base64.b32decode(token.upper()))
    raw[7] = 6  # table id's low byte
    forged = base64.b32encode(bytes(raw)).decode().lower()
    with pytest.raises(DomainError) as err:
        read_table_token(SECRET, STORE, forged)
    assert err.value.code == "forged_token"


def test_another_stores_token_is_named_as_such():
    other = sign_table_token(b"o" * 32, TableRef("ffffffff", 1, 1))
    with pytest.raises(DomainError) as err:
        read_table_token(SECRET, STORE, other)
    assert err.value.code == "other_store"


@pytest.mark.parametrize("junk", ["", "x", "1" * 32, "é" * 32, "a" * 33, "../../etc/passwd"])
def test_junk_is_forged(junk):
    with pytest.raises(DomainError) as err:
        read_table_token(SECRET, STORE, junk)
    assert err.value.code == "forged_token"


def test_a_valid_mac_from_another_secret_is_forged():
    token = sign_table_token(b"x" * 32, TableRef(STORE, 1, 1))
    with pytest.raises(DomainError) as err:
        read_table_token(SECRET, STORE, token)
    assert err.value.code == "forged_token"


def test_well_formed_base32_of_an_unknown_store_is_another_stores_code():
    with pytest.raises(DomainError) as err:
        read_table_token(SECRET, STORE, "a" * 32)
    assert err.value.code == "other_store"
