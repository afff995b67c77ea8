"""The void both Orders and Tables run: the lines that can still be voided, each as the bill shows it (ticket,
quantity, dish with its size and choices, price), then how many of it (one of a 2x), why, and a confirmation, so the
two screens ask the same questions the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from appliance.db.orders import OrderLineRow, OrderRow, void_line
from appliance.domain.menu import translate
from appliance.domain.money import format_money
from appliance.domain.orders import FINAL, LineStatus
from appliance.domain.text import clean_text
from tui.dialogs import ChooseScreen, PromptScreen, ReasonScreen

if TYPE_CHECKING:
    from tui.base import ConsoleScreen


def line_extras(line: OrderLineRow, lang: str) -> str:
    """A line's size and choices in brackets (" (large, no chilli)"), "" when it has none."""
    extras = [translate(line.variant_names, lang)] if line.variant_names else []
    extras += [translate(o.names, lang) for o in line.options]
    return f" ({', '.join(extras)})" if extras else ""


def dish_words(line: OrderLineRow, lang: str) -> str:
    """A line as staff read it: quantity, dish, size and choices ("2x 水晶虾饺 (large)")."""
    return f"{line.quantity}x {translate(line.names, lang)}{line_extras(line, lang)}"


def voidable_lines(orders: Iterable[OrderRow]) -> dict[str, tuple[OrderRow, OrderLineRow]]:
    """The active lines of orders not yet served or cancelled, keyed "order id:line no" (the dialog's choices)."""
    return {
        f"{order.id}:{line.line_no}": (order, line)
        for order in orders
        if order.status not in FINAL
        for line in order.lines
        if line.status == LineStatus.ACTIVE
    }


class VoidLineScreen(ChooseScreen):
    """Void which line? One choice per voidable line: "#12  2x 水晶虾饺 (large)  ¥64.00"; returns its key in
    voidable_lines (None when cancelled)."""

    def __init__(
        self, where: str, lines: dict[str, tuple[OrderRow, OrderLineRow]], lang: str, money: Callable[[int], str]
    ) -> None:
        super().__init__(
            f"Void which line {where}? 退哪道菜",
            [
                (key, f"#{order.ticket_no}  {dish_words(line, lang)}  {money(line.line_total_minor)}")
                for key, (order, line) in lines.items()
            ],
        )


def how_many_problem(text: str, most: int) -> str | None:
    """What is wrong with a typed count of dishes to void (None: it is a number from 1 to `most`)."""
    if not text.isdigit() or not 1 <= int(text) <= most:
        return f"a number from 1 to {most} 填1到{most}"
    return None


async def void_flow(screen: ConsoleScreen, orders: Iterable[OrderRow], where: str, table: str = "") -> Any:
    """The void both Orders (`orders`: the highlighted one) and Tables (the visit's) run: which line; how many of it
    when it holds more than one (one of a 2x: the rest stays on the bill and in the kitchen); why; confirmed with
    the dish, the count and the money; then voided through the store. Call from a worker. Returns the order after
    the void, or None when nothing was voided."""
    store = screen.console.store
    assert store is not None  # read before the first screen opens
    lang = store.languages[0]
    lines = voidable_lines(orders)
    if not lines:
        screen.say(f"✗ nothing left to void {where}: served or cancelled orders cannot change", error=True)
        return None

    def money(minor: int) -> str:
        return format_money(minor, store.money)

    picked = await screen.app.push_screen_wait(VoidLineScreen(where, lines, lang, money))
    if picked is None:
        screen.say("nothing voided")
        return None
    order, line = lines[picked]
    count = line.quantity
    if line.quantity > 1:
        answer = await screen.app.push_screen_wait(
            PromptScreen(
                f"How many of {dish_words(line, lang)} to void? 退几份 (1-{line.quantity})",
                str(line.quantity),
                check=lambda text: how_many_problem(text, line.quantity),
            )
        )
        if answer is None:
            screen.say("nothing voided")
            return None
        count = int(answer)
    dish = f"{count}x {translate(line.names, lang)}{line_extras(line, lang)}"
    part = f" of {line.quantity}" if count < line.quantity else ""
    reason = await screen.app.push_screen_wait(ReasonScreen(f"Void {dish}{part}: why? 退菜原因", store.cancel_reasons))
    if reason is None:
        screen.say("nothing voided")
        return None
    reason = clean_text(reason, 100)
    back = money(line.unit_price_minor * count)
    left = line.quantity - count
    kept = f"; {left} stay{'s' if left == 1 else ''} on the bill" if part else ""
    if not await screen.confirm(
        f"Void {dish}{part} from ticket #{order.ticket_no}{table}: “{reason}”?\n"
        f"The kitchen gets a void ticket for {count}; the bill drops {back}{kept}."
    ):
        screen.say("nothing voided")
        return None
    return await screen.act(
        "orders",
        "order.line_voided",
        f"order {order.id} line {line.line_no}",
        void_line,
        order.id,
        line.line_no,
        reason,
        count if part else None,
        details={"reason": reason, "dish": dish, "quantity": count, "of": line.quantity},
        done=lambda after: f"voided {dish}{part} from #{order.ticket_no}: now {money(after.total_minor)}",
    )
