import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.errors import DomainError
from appliance.domain.money import (
    Currency,
    changes_by_more_than_half,
    div_round_half_up,
    format_money,
    included_tax,
    parse_amount,
    percent_of,
)


def test_currency_exponents_come_from_the_currency():
    assert Currency.of("CNY").exponent == 2
    assert Currency.of("JPY").exponent == 0
    with pytest.raises(DomainError) as err:
        Currency.of("XXX")
    assert err.value.code == "unknown_currency"


def test_formatting_shows_minor_units_by_exponent():
    assert format_money(3800, Currency.of("CNY")) == "¥38.00"
    assert format_money(1205, Currency.of("CNY")) == "¥12.05"
    assert format_money(1200, Currency.of("JPY")) == "¥1,200"
    assert format_money(-50, Currency.of("USD")) == "-$0.50"


def test_rounding_is_half_up_like_a_till():
    assert div_round_half_up(5, 10) == 1
    assert div_round_half_up(4, 10) == 0
    assert div_round_half_up(-5, 10) == -1
    assert percent_of(1005, 1000) == 101  # 10% of 10.05 = 1.005 -> 1.01
    assert percent_of(1004, 1000) == 100


def test_included_tax_of_a_tax_inclusive_price():
    # 106.00 at 6% contains 6.00 of tax
    assert included_tax(10600, 600) == 600
    assert included_tax(10000, 0) == 0


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=5000))
def test_included_tax_never_exceeds_the_amount_and_matches_exact_rounding(gross, rate):
    tax = included_tax(gross, rate)
    assert 0 <= tax <= gross
    exact = gross * rate / (10000 + rate)
    assert abs(tax - exact) <= 0.5 + 1e-9


CNY, JPY = Currency.of("CNY"), Currency.of("JPY")


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("12,5", 1250),  # a decimal comma: never ¥125.00
        ("12,50", 1250),
        ("12.5", 1250),
        ("￥12.50", 1250),  # full-width yuan sign, as a Chinese input method types it
        ("¥12.5", 1250),
        ("12.50元", 1250),
        ("12元5角", 1250),
        ("12块5毛", 1250),
        ("12元零5分", 1205),
        ("5角3分", 53),
        (" 12.50 ", 1250),
        ("\u300012.50\u3000", 1250),  # ideographic spaces
        ("１２。５", 1250),  # full-width digits and the Chinese full stop
        ("RMB 12", 1200),
        ("12 cny", 1200),
        ("1,234.50", 123450),  # thousands: the only reading (a comma before three digits, then decimals)
        ("1,234", 123400),  # 1.234 has three decimals, which yuan cannot have: one reading left
        ("12,345,678", 1234567800),
        ("12,505", 1250500),  # thousands too; a price change that big asks first (menu screen)
        ("32", 3200),
        ("0.05", 5),
        (".5", 50),
        ("0", 0),
    ],
)
def test_amounts_typed_any_common_way_are_read_exactly(typed, fen):
    assert parse_amount(typed, CNY) == fen


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("abc", "not an amount: type digits like 32.50"),
        ("", "not an amount"),
        ("1.", "not an amount"),
        ("1e3", "not an amount"),
        ("-1", "cannot be negative"),
        ("−1", "cannot be negative"),
        ("1.234", "CNY amounts have at most 2 decimal places"),
        ("1234567890", "too large"),
        ("12元5", "say 角 or 分"),  # 12.50 or 12.05? refused, not guessed
        ("12元5角3", "yuan, jiao and fen in that order"),
        ("$12", "$ is not this store's money (CNY)"),
        ("12 €", "€ is not this store's money"),
        ("HK$3", "HK$ is not this store's money"),
        ("1.234,50", "a dot for the decimals"),
        ("1,23.5", "a comma groups thousands (1,234.50) or marks the decimals (12,5)"),
        ("12,5,0", "this is neither"),
    ],
)
def test_amounts_that_cannot_be_read_one_way_are_refused_with_the_reason(typed, why):
    with pytest.raises(DomainError) as err:
        parse_amount(typed, CNY)
    assert err.value.code == "invalid_amount" and why in err.value.message


def test_yen_have_no_decimals_so_a_comma_is_only_thousands():
    assert [parse_amount(t, JPY) for t in ("1200", "1,200", "¥1,200", "1200円")] == [1200] * 4
    for typed in ("12,5", "12.5"):
        with pytest.raises(DomainError, match="JPY amounts have no decimals"):
            parse_amount(typed, JPY)
    with pytest.raises(DomainError, match="not an amount"):
        parse_amount("12元5角", JPY)  # 角 and 分 are yuan's


@given(st.integers(min_value=0, max_value=10**11 - 1))
def test_what_the_console_shows_reads_back_to_the_same_amount(fen):
    assert parse_amount(format_money(fen, CNY), CNY) == fen
    assert parse_amount(format_money(fen, CNY, symbol=False), CNY) == fen


def test_a_change_of_more_than_half_the_old_price_is_big():
    assert changes_by_more_than_half(3200, 12500)  # 12,5 read as 125 once
    assert changes_by_more_than_half(3200, 1250)
    assert not changes_by_more_than_half(3200, 3250)
    assert not changes_by_more_than_half(3200, 4800)  # exactly half: not more
    assert changes_by_more_than_half(3200, 4801)
    assert changes_by_more_than_half(0, 100)  # from nothing
