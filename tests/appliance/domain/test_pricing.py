"""Pricing from the store's own menu: what the diner is charged, and which line is refused and why."""

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.errors import DomainError
from appliance.domain.menu import Category, Item, Menu, Option, OptionGroup, Variant, Window
from appliance.domain.pricing import CartLine, check_stock, price_cart

N = lambda zh, en: MappingProxyType({"zh": zh, "en": en})  # noqa: E731

SPICE = OptionGroup(
    10, N("辣度", "Spice"), 1, 1, (Option(101, 10, N("不辣", "None"), 0), Option(102, 10, N("特辣", "Hot"), 0))
)
ADDONS = OptionGroup(
    20,
    N("加料", "Add-ons"),
    0,
    2,
    (
        Option(201, 20, N("加蛋", "Egg"), 300),
        Option(202, 20, N("加肉", "Meat"), 800),
        Option(203, 20, N("加芝士", "Cheese"), 600, sold_out=True),
    ),
)
ICE = OptionGroup(30, N("冰量", "Ice"), 1, 1, (Option(301, 30, N("去冰", "No ice"), 0),))

NOODLES = Item(
    1,
    1,
    N("牛肉面", "Beef noodles"),
    N("", ""),
    None,
    (Variant(11, 1, N("小", "Small"), 2800), Variant(12, 1, N("大", "Large"), 3600)),
    (SPICE, ADDONS),
    "kitchen",
)
TEA = Item(2, 2, N("柠檬茶", "Lemon tea"), N("", ""), 1800, (), (ICE,), "bar")
SOLD = Item(3, 1, N("鳜鱼", "Mandarin fish"), N("", ""), 9800, (), (), "kitchen", sold_out=True)
BREAKFAST = Item(
    4, 1, N("粢饭团", "Rice roll"), N("", ""), 1200, (), (), "kitchen", window=Window.parse("07:00", "10:30")
)
HIDDEN = Item(5, 1, N("私房鸭", "Duck"), N("", ""), 8800, (), (), "kitchen", hidden=True)
LATE = Item(6, 1, N("小龙虾", "Crayfish"), N("", ""), 8800, (), (), "kitchen", window=Window.parse("21:00", "02:00"))
MENU = Menu(
    7,
    (Category(1, N("面", "Noodles"), (1, 3, 4, 6)), Category(2, N("饮品", "Drinks"), (2,))),
    MappingProxyType({i.id: i for i in (NOODLES, TEA, SOLD, BREAKFAST, HIDDEN, LATE)}),
)
NOON = 12 * 60


def price(*lines, minute=NOON, service=0, tax=600):
    return price_cart(MENU, list(lines), minute_of_day=minute, service_charge_bp=service, tax_rate_bp=tax)


def refusal(*lines, minute=NOON):
    with pytest.raises(DomainError) as err:
        price(*lines, minute=minute)
    return err.value


def test_variant_and_options_make_the_unit_price():
    cart = price(CartLine(1, 2, variant_id=12, option_ids=(102, 201, 202)), CartLine(2, 1, option_ids=(301,)))
    noodles, tea = cart.lines
    assert noodles.unit_price_minor == 3600 + 300 + 800
    assert noodles.line_total_minor == 2 * 4700
    assert tea.unit_price_minor == 1800
    assert cart.totals.subtotal_minor == 9400 + 1800
    assert cart.totals.total_minor == 11200
    assert cart.totals.tax_minor == 634  # 11200 * 6 / 106 = 633.96
    assert cart.stations == ("kitchen", "bar")


def test_service_charge_is_added_and_taxed():
    cart = price(CartLine(2, 3, option_ids=(301,)), service=1000)
    assert (cart.totals.subtotal_minor, cart.totals.service_charge_minor, cart.totals.total_minor) == (5400, 540, 5940)


def test_options_are_stored_in_menu_order_whatever_order_the_phone_sent():
    cart = price(CartLine(1, 1, variant_id=11, option_ids=(202, 101, 201)))
    assert [o.id for o in cart.lines[0].options] == [101, 201, 202]


@pytest.mark.parametrize(
    "line,code,extra",
    [
        (CartLine(99, 1), "unknown_item", {}),
        (CartLine(5, 1), "unknown_item", {}),  # hidden dishes cannot be ordered
        (CartLine(3, 1), "sold_out", {}),
        (CartLine(4, 1), "unavailable_now", {"window": "07:00-10:30"}),
        (CartLine(1, 1, option_ids=(101,)), "variant_required", {}),
        (CartLine(1, 1, variant_id=21, option_ids=(101,)), "unknown_variant", {}),
        (CartLine(2, 1, variant_id=11, option_ids=(301,)), "unknown_variant", {}),
        (CartLine(1, 1, variant_id=11), "invalid_option", {"reason": "below_min", "group_id": 10}),
        (
            CartLine(1, 1, variant_id=11, option_ids=(101, 102)),
            "invalid_option",
            {"reason": "above_max", "group_id": 10},
        ),
        (
            CartLine(1, 1, variant_id=11, option_ids=(101, 301)),
            "invalid_option",
            {"reason": "not_offered", "option_id": 301},
        ),
        (CartLine(1, 1, variant_id=11, option_ids=(101, 101)), "invalid_option", {"reason": "duplicate"}),
        (CartLine(1, 1, variant_id=11, option_ids=(101, 203)), "sold_out", {"option_id": 203}),
        (CartLine(1, 0, variant_id=11, option_ids=(101,)), "invalid_quantity", {}),
        (CartLine(1, 100, variant_id=11, option_ids=(101,)), "invalid_quantity", {}),
    ],
)
def test_each_refusal_names_the_line(line, code, extra):
    good = CartLine(2, 1, option_ids=(301,))
    err = refusal(good, line)
    assert err.code == code
    assert err.details["line"] == 2
    for key, value in extra.items():
        assert err.details[key] == value


def test_a_window_past_midnight():
    assert price(CartLine(6, 1), minute=23 * 60).totals.total_minor == 8800
    assert price(CartLine(6, 1), minute=60).totals.total_minor == 8800
    assert refusal(CartLine(6, 1), minute=3 * 60).code == "unavailable_now"


def test_empty_and_oversized_carts():
    assert refusal().code == "empty_order"
    assert refusal(*[CartLine(2, 1, option_ids=(301,))] * 51).code == "too_many_lines"


def test_stock_counts_all_lines_of_a_dish():
    cart = price(CartLine(2, 2, option_ids=(301,)), CartLine(2, 2, option_ids=(301,)))
    assert check_stock(cart, {2: 4}) == {2: 4}
    with pytest.raises(DomainError) as err:
        check_stock(cart, {2: 3})
    assert (err.value.code, err.value.details["line"], err.value.details["available"]) == ("not_enough_stock", 2, 3)
    with pytest.raises(DomainError) as err:
        check_stock(cart, {2: 0})
    assert err.value.code == "sold_out"


valid_lines = st.one_of(
    st.builds(
        lambda q, v, spice, add: CartLine(1, q, variant_id=v, option_ids=(spice, *add)),
        st.integers(1, 99),
        st.sampled_from([11, 12]),
        st.sampled_from([101, 102]),
        st.lists(st.sampled_from([201, 202]), max_size=2, unique=True),
    ),
    st.builds(lambda q: CartLine(2, q, option_ids=(301,)), st.integers(1, 99)),
)


@given(st.lists(valid_lines, min_size=1, max_size=50), st.integers(0, 5000), st.integers(0, 5000), st.randoms())
def test_totals_are_the_sum_of_lines_in_any_order(lines, service, tax, rnd):
    cart = price(*lines, service=service, tax=tax)
    assert cart.totals.subtotal_minor == sum(line.unit_price_minor * line.quantity for line in cart.lines)
    assert cart.totals.total_minor == cart.totals.subtotal_minor + cart.totals.service_charge_minor
    assert abs(cart.totals.service_charge_minor - cart.totals.subtotal_minor * service / 10000) <= 0.5
    assert 0 <= cart.totals.tax_minor <= cart.totals.total_minor
    for line in cart.lines:
        base = {11: 2800, 12: 3600}.get(line.variant.id if line.variant else 0, 1800)
        assert line.unit_price_minor == base + sum({201: 300, 202: 800}.get(o.id, 0) for o in line.options)
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    assert price(*shuffled, service=service, tax=tax).totals == cart.totals
