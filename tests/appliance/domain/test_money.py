import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.errors import DomainError
from appliance.domain.money import Currency, div_round_half_up, format_money, included_tax, percent_of


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
