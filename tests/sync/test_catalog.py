"""Catalog and stock pulls from the ERP, seen where they matter: on the diners' menu and in their orders."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from appliance.db.menu import menu_version, set_image, set_sold_out
from appliance.db.tables import unpaid_minor
from appliance.domain.money import Currency
from sync.adapters import make_adapter
from sync.adapters.base import Adapter, Rejected, Retryable
from sync.catalog import pull_and_apply
from tests.fakes.erp_rest import FakeRestERP

# Demo dishes linked to the ERP (dish key -> ERP item code). Crab xiaolongbao is priced by sizes locally.
LINKED = {
    "har_gow": "DS-HG",
    "mapo_tofu": "WK-MAPO",
    "dan_dan_noodles": "ND-DDM",
    "crab_xiaolongbao": "DS-CXLB",
    "squirrel_fish": "WK-SQF",
    "scallion_pancake": "DS-SP",
}


def link(db: Any, fake: FakeRestERP) -> None:
    """Give the dishes their ERP codes and the ERP the same dishes, prices, names and counts as the box."""
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'rest')")
        for key, code in LINKED.items():
            names, price, stock, category = db.execute(
                "UPDATE items SET erp_code = ? WHERE key = ? RETURNING names, price_minor, stock,"
                " (SELECT json_extract(c.names, '$.en') FROM categories c WHERE c.id = items.category_id)",
                (code, key),
            ).fetchone()
            fake.add_item(code, json.loads(names), price if price is not None else 4000, stock=stock, category=category)


@pytest.fixture
def erp(db: Any) -> Iterator[FakeRestERP]:
    fake = FakeRestERP(style="wrapped").start()
    try:
        link(db, fake)
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def adapter(erp: FakeRestERP) -> Iterator[Adapter]:
    made = make_adapter("erp", erp.target_config())
    try:
        yield made
    finally:
        made.close()


def menu(client: Any, token: str, lang: str = "en") -> dict[str, Any]:
    r = client.get(f"/api/v1/tables/{token}/menu?lang={lang}")
    assert r.status_code == 200
    return r.json()


def dishes(client: Any, token: str, lang: str = "en") -> dict[int, dict[str, Any]]:
    return {i["id"]: {**i, "category": c["name"]} for c in menu(client, token, lang)["categories"] for i in c["items"]}


def dish_id(db: Any, key: str) -> int:
    return db.execute("SELECT id FROM items WHERE key = ?", (key,)).fetchone()[0]


def option_id(db: Any, group: str, option: str) -> int:
    return db.execute(
        "SELECT o.id FROM options o JOIN option_groups g ON g.id = o.group_id WHERE g.key = ? AND o.key = ?",
        (group, option),
    ).fetchone()[0]


def post(client: Any, token: str, *lines: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/tables/{token}/orders?lang=en", json={"client_key": uuid.uuid4().hex, "lines": list(lines)}
    )


def mapo(db: Any, quantity: int = 1) -> dict[str, Any]:
    return {"item_id": dish_id(db, "mapo_tofu"), "quantity": quantity, "option_ids": [option_id(db, "spice", "mild")]}


def test_a_pull_with_nothing_new_changes_nothing(db, adapter):
    before = menu_version(db)
    changes = pull_and_apply(db, adapter)
    assert changes.counts() == {
        "price_changed": 0,
        "added": 0,
        "removed": 0,
        "restored": 0,
        "renamed": 0,
        "stock_changed": 0,
        "sold_out": 0,
        "back_on": 0,
        "kept_local": 1,
    }
    assert not changes.changed and menu_version(db) == before == changes.menu_version[1]


def test_a_new_price_reaches_the_diners_menu(db, erp, adapter, client, token):
    before = menu_version(db)
    erp.set_price("WK-MAPO", 3650)
    erp.set_price("DS-CXLB", 9900)  # the ERP's one price for a dish the box sells in two sizes
    xlb_sizes = [v["price_minor"] for v in dishes(client, token)[dish_id(db, "crab_xiaolongbao")]["variants"]]
    with structlog.testing.capture_logs() as logs:
        changes = pull_and_apply(db, adapter)
    assert changes.price_changed == ["WK-MAPO"] and changes.prices["WK-MAPO"] == (3200, 3650)
    assert changes.kept_local == ["DS-CXLB"]
    assert any("priced by sizes locally" in note for note in changes.notes)
    assert (changes.added, changes.removed, changes.stock_changed) == ([], [], [])
    assert "price   WK-MAPO (mapo_tofu): ¥32.00 -> ¥36.50" in changes.lines(Currency.of("CNY"))
    assert menu_version(db) > before
    shown = dishes(client, token)
    assert shown[dish_id(db, "mapo_tofu")]["price_minor"] == 3650
    assert [v["price_minor"] for v in shown[dish_id(db, "crab_xiaolongbao")]["variants"]] == xlb_sizes
    [event] = [e for e in logs if e["event"] == "sync.catalog"]
    assert (event["target"], event["price_changed"], event["added"]) == ("erp", 1, 0)
    r = post(client, token, mapo(db, 2))
    assert r.status_code == 201 and r.json()["total_minor"] == 7300


def test_a_new_erp_dish_appears_on_the_menu_in_its_category(db, erp, adapter, client, token):
    erp.add_item("WK-CUMIN", {"zh": "孜然羊肉", "en": "Cumin lamb"}, 5800, category="Wok dishes")
    erp.add_item("SP-ZONGZI", {"zh": "鲜肉粽"}, 1600, category="Seasonal")
    changes = pull_and_apply(db, adapter)
    assert changes.added == ["SP-ZONGZI", "WK-CUMIN"]
    assert changes.dishes["WK-CUMIN"] == "wk_cumin"
    assert db.execute("SELECT station, hidden, erp_code, price_minor FROM items WHERE key = 'wk_cumin'").fetchone() == (
        "kitchen",
        0,
        "WK-CUMIN",
        5800,
    )
    en = dishes(client, token)
    cumin = next(d for d in en.values() if d["name"] == "Cumin lamb")
    assert (cumin["category"], cumin["price_minor"], cumin["sold_out"]) == ("Wok dishes", 5800, False)
    zongzi = next(d for d in dishes(client, token, "zh").values() if d["name"] == "鲜肉粽")
    assert zongzi["category"] == "Seasonal"
    r = post(client, token, {"item_id": cumin["id"], "quantity": 1})
    assert r.status_code == 201 and r.json()["lines"][0]["name"] == "Cumin lamb"


def test_a_removed_dish_leaves_the_menu_but_not_the_orders_already_placed(db, erp, adapter, client, token):
    har_gow = {"item_id": dish_id(db, "har_gow"), "quantity": 2}
    placed = post(client, token, har_gow, mapo(db))
    assert placed.status_code == 201
    visit = client.get(f"/api/v1/tables/{token}/orders?lang=en").json()
    session_id = db.execute("SELECT session_id FROM orders WHERE id = ?", (placed.json()["id"],)).fetchone()[0]
    owed = unpaid_minor(db, session_id)
    erp.remove_item("DS-HG")
    erp.deactivate("WK-SQF")
    changes = pull_and_apply(db, adapter)
    assert changes.removed == ["DS-HG", "WK-SQF"]
    for lang in ("en", "zh"):
        shown = dishes(client, token, lang)
        assert dish_id(db, "har_gow") not in shown and dish_id(db, "squirrel_fish") not in shown
    after = client.get(f"/api/v1/tables/{token}/orders?lang=en").json()
    assert after == visit  # same orders, lines, names and total
    assert (after["orders"][0]["lines"][0]["name"], after["orders"][0]["lines"][0]["quantity"]) == (
        "Crystal shrimp dumplings",
        2,
    )
    assert after["total_minor"] == 2 * 3200 + 3200 and unpaid_minor(db, session_id) == owed
    refused = post(client, token, har_gow)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "unknown_item"
    erp.add_item("DS-HG", {"zh": "水晶虾饺", "en": "Crystal shrimp dumplings"}, 3200, category="Dumplings & dim sum")
    assert pull_and_apply(db, adapter).restored == ["DS-HG"]
    assert dish_id(db, "har_gow") in dishes(client, token)


def test_stock_at_zero_sells_the_dish_out_on_diners_phones(db, erp, adapter, client, token):
    erp.set_stock("WK-MAPO", 0)
    changes = pull_and_apply(db, adapter)
    assert (changes.sold_out, changes.stock, changes.back_on) == (["WK-MAPO"], {"WK-MAPO": (None, 0)}, [])
    assert dishes(client, token)[dish_id(db, "mapo_tofu")]["sold_out"] is True
    refused = post(client, token, mapo(db))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "sold_out"
    erp.set_stock("WK-MAPO", 4)
    changes = pull_and_apply(db, adapter)
    assert (changes.back_on, changes.stock["WK-MAPO"]) == (["WK-MAPO"], (0, 4))
    assert post(client, token, mapo(db)).status_code == 201
    assert db.execute("SELECT stock, sold_out FROM items WHERE key = 'mapo_tofu'").fetchone() == (3, 0)


def test_a_stock_count_alone_does_not_move_the_menu_version_but_sold_out_does(db, erp, adapter):
    erp.set_stock("WK-SQF", 2)
    before = menu_version(db)
    assert pull_and_apply(db, adapter).stock == {"WK-SQF": (3, 2)}
    assert menu_version(db) == before
    erp.set_stock("WK-SQF", 0)
    assert pull_and_apply(db, adapter).sold_out == ["WK-SQF"]
    assert menu_version(db) > before


def test_a_dish_a_manager_sold_out_stays_sold_out_whatever_the_erp_counts(db, erp, adapter, client, token):
    with db:
        set_sold_out(db, dish_id(db, "dan_dan_noodles"), True)
    erp.set_stock("ND-DDM", 6)
    changes = pull_and_apply(db, adapter)
    assert changes.stock == {"ND-DDM": (None, 6)} and changes.back_on == []
    assert db.execute("SELECT stock, sold_out FROM items WHERE key = 'dan_dan_noodles'").fetchone() == (6, 1)
    assert dishes(client, token)[dish_id(db, "dan_dan_noodles")]["sold_out"] is True


def test_portions_sold_but_not_yet_in_the_erp_are_not_sold_again(db, erp, adapter, client, token):
    """The ERP still counts 3 fish while our order of 1 waits in the outbox: the box keeps 2, not 3."""
    assert post(client, token, {"item_id": dish_id(db, "squirrel_fish"), "quantity": 1}).status_code == 201
    assert pull_and_apply(db, adapter).stock_changed == []
    assert db.execute("SELECT stock FROM items WHERE key = 'squirrel_fish'").fetchone() == (2,)
    with db:  # delivered (before this pull started), and the ERP took it off its count
        db.execute("UPDATE outbox SET delivered_at = '2026-01-01T00:00:00.000000Z' WHERE target = 'erp'")
    erp.set_stock("WK-SQF", 2)
    assert pull_and_apply(db, adapter).stock_changed == []
    erp.set_stock("WK-SQF", 1)  # one was dropped in the kitchen
    assert pull_and_apply(db, adapter).stock == {"WK-SQF": (2, 1)}


@pytest.mark.parametrize("fault", ["erp_down", "stock_fails", "slow"])
def test_an_erp_that_cannot_be_read_leaves_the_menu_byte_identical(db, erp, adapter, client, token, fault):
    before = {lang: client.get(f"/api/v1/tables/{token}/menu?lang={lang}") for lang in ("zh", "en")}
    version = menu_version(db)
    erp.set_price("WK-MAPO", 9999)
    erp.remove_item("DS-HG")
    erp.set_stock("WK-SQF", 0)
    erp.add_item("WK-NEW", {"zh": "新菜"}, 1000, category="Wok dishes")
    if fault == "erp_down":
        erp.go_down()
    elif fault == "stock_fails":
        erp.broken_paths["/stock"] = 503  # the catalog came through; the stock did not
    else:
        erp.slow_seconds = 2
    quick = make_adapter("erp", {**erp.target_config(), "timeout_seconds": 0.5})
    try:
        with pytest.raises(Retryable) as failed:
            pull_and_apply(db, quick)
    finally:
        quick.close()
        erp.slow_seconds = 0
    assert failed.value.message.startswith("catalog not pulled, the menu is unchanged: erp: ")
    assert menu_version(db) == version
    for lang, response in before.items():
        again = client.get(f"/api/v1/tables/{token}/menu?lang={lang}")
        assert (again.content, again.headers["etag"]) == (response.content, response.headers["etag"])
    assert db.execute("SELECT count(*) FROM items WHERE erp_code = 'WK-NEW'").fetchone() == (0,)


def test_local_photo_options_and_translation_survive_a_pull(db, erp, adapter, client, token):
    noodles = dish_id(db, "dan_dan_noodles")
    with db:
        set_image(db, "dan_dan_noodles", "3f9a0c2b7d1e4a55.jpg")
        db.execute("UPDATE items SET names = json_set(names, '$.ja', '担々麺') WHERE id = ?", (noodles,))
    keep = "SELECT image, station, sort, category_id, allergens, descriptions, available_from FROM items WHERE id = ?"
    local = db.execute(keep, (noodles,)).fetchone()
    groups = db.execute(
        "SELECT group_id FROM item_option_groups WHERE item_id = ? ORDER BY sort", (noodles,)
    ).fetchall()
    erp.set_names("ND-DDM", {"en": "Dan dan noodles (Chengdu style)"})  # the ERP knows only the English name
    erp.set_price("ND-DDM", 2900)
    changes = pull_and_apply(db, adapter)
    assert (changes.renamed, changes.price_changed) == (["ND-DDM"], ["ND-DDM"])
    names = json.loads(db.execute("SELECT names FROM items WHERE id = ?", (noodles,)).fetchone()[0])
    assert names == {"zh": "担担面", "en": "Dan dan noodles (Chengdu style)", "ja": "担々麺"}
    assert db.execute(keep, (noodles,)).fetchone() == local
    assert (
        db.execute("SELECT group_id FROM item_option_groups WHERE item_id = ? ORDER BY sort", (noodles,)).fetchall()
        == groups
    )
    zh = dishes(client, token, "zh")[noodles]
    assert (zh["name"], zh["image"], zh["price_minor"]) == ("担担面", "/images/3f9a0c2b7d1e4a55.jpg", 2900)
    assert [g["name"] for g in zh["option_groups"]][:1] == ["辣度"]
    assert dishes(client, token, "en")[noodles]["name"] == "Dan dan noodles (Chengdu style)"


def test_a_catalog_in_another_currency_is_refused(db):
    fake = FakeRestERP(style="wrapped", currency="USD").start()
    adapter = None
    try:
        link(db, fake)
        fake.set_price("WK-MAPO", 500)
        adapter = make_adapter("erp", fake.target_config())
        version = menu_version(db)
        with pytest.raises(Rejected) as refused:
            pull_and_apply(db, adapter)
    finally:
        if adapter is not None:
            adapter.close()
        fake.stop()
    assert "catalog is in USD but the store sells in CNY" in refused.value.message
    assert menu_version(db) == version
    assert db.execute("SELECT price_minor FROM items WHERE key = 'mapo_tofu'").fetchone() == (3200,)


def test_an_empty_catalog_does_not_empty_the_menu(db, erp, adapter):
    for code in LINKED.values():
        erp.remove_item(code)
    with pytest.raises(Rejected) as refused:
        pull_and_apply(db, adapter)
    assert "no active items; refusing to remove 6 dishes" in refused.value.message
    assert db.execute("SELECT count(*) FROM items WHERE removed_at IS NOT NULL").fetchone() == (0,)
