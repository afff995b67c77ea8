"""Stored orders (names in every language) turned into what one diner reads (names in theirs)."""

from __future__ import annotations

from typing import Any

from appliance.contract.diner import ORDER_FIELDS
from appliance.db.tables import Visit
from appliance.domain.menu import translate


def original_name(names: dict[str, str], shown: str, original_lang: str | None) -> str | None:
    """The dish's name in the menu's first language (`original_lang`), when it differs from the name shown: what a
    diner reading a translation shows the staff. None when no language is given or the names are the same."""
    if not original_lang:
        return None
    original = translate(names, original_lang)
    return original if original and original != shown else None


def localize_order(order: dict[str, Any], lang: str, original_lang: str | None = None) -> dict[str, Any]:
    """An order in the diner's language; each line also names its dish in `original_lang` (the store's first
    language) when that reads differently (`original_name`, else None)."""
    out = {k: order[k] for k in ORDER_FIELDS}
    out["lines"] = [
        {
            "line_no": line["line_no"],
            "item_id": line["item_id"],
            "name": translate(line["names"], lang),
            "original_name": original_name(line["names"], translate(line["names"], lang), original_lang),
            "variant_id": line["variant_id"],
            "variant": translate(line["variant_names"], lang) if line["variant_names"] else None,
            "options": [
                {"id": o["id"], "name": translate(o["names"], lang), "price_delta_minor": o["price_delta_minor"]}
                for o in line["options"]
            ],
            "quantity": line["quantity"],
            "unit_price_minor": line["unit_price_minor"],
            "line_total_minor": line["line_total_minor"],
            "note": line["note"],
            "status": line["status"],
        }
        for line in order["lines"]
    ]
    return out


def session_view(session: Visit | None) -> dict[str, Any] | None:
    """A visit as the diner API shows it (SessionOut)."""
    if session is None:
        return None
    return {
        "id": session.id,
        "status": session.status.value,
        "opened_at": session.opened_at,
        "diners": session.diners,
    }
