"""Pricing a diner's cart from the store's own menu: validation of every line, totals, service charge, tax."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from appliance.domain.errors import DomainError
from appliance.domain.menu import Item, Menu, Option, Variant, translate
from appliance.domain.money import included_tax, percent_of

MAX_LINES = 50
MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLine:
    """One line as the phone sends it: what, how many, which choices. Never a price."""

    item_id: int
    quantity: int
    variant_id: int | None = None
    option_ids: tuple[int, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class PricedLine:
    line_no: int
    item: Item
    variant: Variant | None
    options: tuple[Option, ...]
    quantity: int
    unit_price_minor: int
    note: str

    @property
    def line_total_minor(self) -> int:
        return self.unit_price_minor * self.quantity

    @property
    def station(self) -> str:
        return self.item.station


@dataclass(frozen=True)
class Totals:
    subtotal_minor: int
    service_charge_minor: int
    total_minor: int
    tax_minor: int


@dataclass(frozen=True)
class PricedCart:
    lines: tuple[PricedLine, ...]
    totals: Totals

    @property
    def stations(self) -> tuple[str, ...]:
        """The stations that have lines, in first-seen order (one kitchen ticket each)."""
        return tuple(dict.fromkeys(line.station for line in self.lines))


def _line_error(code: str, message: str, line_no: int, item: Item | None, **details: object) -> DomainError:
    if item is not None:
        details.setdefault("item_id", item.id)
        details.setdefault("item_name", translate(item.names, "en"))
        details.setdefault("item_names", dict(item.names))
    return DomainError(code, f"line {line_no}: {message}", line=line_no, **details)


def price_line(menu: Menu, line: CartLine, line_no: int, minute_of_day: int) -> PricedLine:
    """Validate one line against the menu and price it. Raises DomainError naming the line."""
    if not 1 <= line.quantity <= MAX_QUANTITY:
        raise _line_error(
            "invalid_quantity", f"quantity must be 1-{MAX_QUANTITY}", line_no, None, quantity=line.quantity
        )
    item = menu.items.get(line.item_id)
    if item is None or item.hidden:
        raise _line_error("unknown_item", "no such dish on the menu", line_no, None, item_id=line.item_id)
    if item.sold_out:
        raise _line_error("sold_out", "sold out", line_no, item)
    if not item.available_at(minute_of_day):
        raise _line_error("unavailable_now", f"served only {item.window}", line_no, item, window=str(item.window))

    variant: Variant | None = None
    if item.variants:
        if line.variant_id is None:
            raise _line_error("variant_required", "choose a size or variant", line_no, item)
        variant = next((v for v in item.variants if v.id == line.variant_id), None)
        if variant is None:
            raise _line_error(
                "unknown_variant", "no such variant for this dish", line_no, item, variant_id=line.variant_id
            )
        base_minor = variant.price_minor
    else:
        if line.variant_id is not None:
            raise _line_error("unknown_variant", "this dish has no variants", line_no, item, variant_id=line.variant_id)
        assert item.price_minor is not None
        base_minor = item.price_minor

    chosen = _choose_options(item, line.option_ids, line_no)
    unit_minor = base_minor + sum(o.price_delta_minor for o in chosen)
    if unit_minor < 0:
        raise _line_error("invalid_option", "options make the price negative", line_no, item, reason="negative_price")
    return PricedLine(line_no, item, variant, chosen, line.quantity, unit_minor, line.note)


def _choose_options(item: Item, option_ids: Sequence[int], line_no: int) -> tuple[Option, ...]:
    offered = {o.id: o for group in item.option_groups for o in group.options}
    duplicates = [oid for oid, n in Counter(option_ids).items() if n > 1]
    if duplicates:
        raise _line_error(
            "invalid_option", "an option is chosen twice", line_no, item, reason="duplicate", option_id=duplicates[0]
        )
    chosen: list[Option] = []
    for oid in option_ids:
        option = offered.get(oid)
        if option is None:
            raise _line_error(
                "invalid_option", "option not offered for this dish", line_no, item, reason="not_offered", option_id=oid
            )
        if option.sold_out:
            raise _line_error(
                "sold_out", "an option is sold out", line_no, item, option_id=oid, option_names=dict(option.names)
            )
        chosen.append(option)
    per_group = Counter(o.group_id for o in chosen)
    for group in item.option_groups:
        count = per_group.get(group.id, 0)
        if count < group.min_choices:
            raise _line_error(
                "invalid_option",
                f"choose at least {group.min_choices} of {translate(group.names, 'en')}",
                line_no,
                item,
                reason="below_min",
                group_id=group.id,
                group_names=dict(group.names),
                min=group.min_choices,
            )
        if count > group.max_choices:
            raise _line_error(
                "invalid_option",
                f"choose at most {group.max_choices} of {translate(group.names, 'en')}",
                line_no,
                item,
                reason="above_max",
                group_id=group.id,
                group_names=dict(group.names),
                max=group.max_choices,
            )
    # A stable order (menu order) so the same choices always print and compare the same way.
    order = {o.id: i for i, o in enumerate(o for g in item.option_groups for o in g.options)}
    return tuple(sorted(chosen, key=lambda o: order[o.id]))


def compute_totals(line_totals_minor: Iterable[int], service_charge_bp: int, tax_rate_bp: int) -> Totals:
    """Prices are tax-inclusive; the service charge is a percentage of the subtotal and is taxed too."""
    subtotal = sum(line_totals_minor)
    service = percent_of(subtotal, service_charge_bp)
    total = subtotal + service
    return Totals(subtotal, service, total, included_tax(total, tax_rate_bp))


def price_cart(
    menu: Menu,
    lines: Sequence[CartLine],
    *,
    minute_of_day: int,
    service_charge_bp: int = 0,
    tax_rate_bp: int = 0,
) -> PricedCart:
    """Price every line from the menu; the first invalid line refuses the whole cart."""
    if not lines:
        raise DomainError("empty_order", "an order needs at least one line")
    if len(lines) > MAX_LINES:
        raise DomainError("too_many_lines", f"at most {MAX_LINES} lines per order", max_lines=MAX_LINES)
    priced = tuple(price_line(menu, line, n, minute_of_day) for n, line in enumerate(lines, start=1))
    return PricedCart(priced, compute_totals((p.line_total_minor for p in priced), service_charge_bp, tax_rate_bp))


def check_stock(cart: PricedCart, stock: Mapping[int, int]) -> dict[int, int]:
    """Quantities to take from counted stock; refuses the first line whose dish has too few left.

    `stock` maps item id -> count for the items that are counted (NULL stock means unlimited).
    Returns item id -> quantity to subtract.
    """
    wanted: Counter[int] = Counter()
    for line in cart.lines:
        if line.item.id not in stock:
            continue
        wanted[line.item.id] += line.quantity
        left = stock[line.item.id]
        if wanted[line.item.id] > left:
            code, what = ("sold_out", "sold out") if left <= 0 else ("not_enough_stock", f"only {left} left")
            raise _line_error(code, what, line.line_no, line.item, available=max(left, 0))
    return dict(wanted)
