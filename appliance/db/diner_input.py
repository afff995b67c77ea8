"""A diner's decoded order (`appliance.contract.diner.OrderIn`, checked by `appliance.contract.decode`) as the store's
OrderRequest: notes cleaned, never a price. The web API (`appliance/web/diner.py`) and the relay link
(`sync/relay_link.py`, orders that came through the public relay) both build their requests here."""

from __future__ import annotations

from appliance.contract.decode import clean_note
from appliance.contract.diner import OrderIn
from appliance.db.orders import OrderRequest
from appliance.domain.orders import Channel
from appliance.domain.pricing import CartLine


def order_request(data: OrderIn, *, lang: str, channel: Channel) -> OrderRequest:
    """The OrderRequest for a decoded body: notes cleaned (refusing one too long), never a price."""
    return OrderRequest(
        client_key=data.client_key,
        lines=tuple(
            CartLine(
                item_id=line.item_id,
                quantity=line.quantity,
                variant_id=line.variant_id,
                option_ids=tuple(line.option_ids),
                note=clean_note(line.note, n),
            )
            for n, line in enumerate(data.lines, start=1)
        ),
        note=clean_note(data.note, None),
        diners=data.diners,
        expected_total_minor=data.expected_total_minor,
        lang=lang,
        channel=channel,
    )
