"""Table codes: a forged sticker, an old sticker, another restaurant's sticker; table info and menu."""

from __future__ import annotations

from pathlib import Path

from appliance.db.tables import rekey_table
from appliance.demo import ensure_demo_store
from tests.appliance.web.conftest import token_for
from tests.conftest import make_settings


def test_table_info_names_store_and_table(client, token):
    r = client.get(f"/api/v1/tables/{token}")
    assert r.status_code == 200
    body = r.json()
    assert body["store"]["name"] == "小笼天下 Dumpling House"
    assert body["store"]["currency"] == "CNY" and body["store"]["currency_exponent"] == 2
    assert body["store"]["languages"] == ["zh", "en"]
    assert body["store"]["open_now"] is True
    assert body["table"]["name"] == "A1" and body["table"]["area"] == "大厅 Hall"
    assert body["table"]["session"] is None and body["table"]["takes_orders"] is True


def test_forged_token_is_403(client, token):
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    r = client.get(f"/api/v1/tables/{forged}/menu")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forged_token"
    assert client.get("/api/v1/tables/not-a-token").status_code == 403


def test_rekeyed_table_old_sticker_is_410_and_new_one_works(client, settings, token, db):
    table_id = db.execute("SELECT id FROM tables WHERE name = 'A1'").fetchone()[0]
    with db:
        assert rekey_table(db, table_id) == 2
    r = client.get(f"/api/v1/tables/{token}", headers={"accept-language": "en-US,en;q=0.9"})
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "table_rekeyed"
    assert "out of date" in r.json()["error"]["message"]
    r = client.get(f"/api/v1/tables/{token}?lang=zh")
    assert r.json()["error"]["message"] == "此二维码已失效，请向服务员索取新的桌码。"
    fresh = token_for(settings, "A1")
    assert fresh != token
    assert client.get(f"/api/v1/tables/{fresh}").status_code == 200


def test_another_stores_token_is_403(client, tmp_path: Path):
    other = make_settings(tmp_path / "other")
    ensure_demo_store(other)
    foreign = token_for(other, "A1")
    r = client.get(f"/api/v1/tables/{foreign}/menu")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "other_store"


def test_menu_in_both_languages_with_etag(client, token):
    zh = client.get(f"/api/v1/tables/{token}/menu?lang=zh")
    en = client.get(f"/api/v1/tables/{token}/menu", headers={"accept-language": "en"})
    assert zh.status_code == en.status_code == 200
    assert zh.json()["lang"] == "zh" and en.json()["lang"] == "en"
    zh_names = [c["name"] for c in zh.json()["categories"]]
    en_names = [c["name"] for c in en.json()["categories"]]
    assert zh_names[0] == "凉菜" and en_names[0] == "Cold dishes"
    items = [i for c in en.json()["categories"] for i in c["items"]]
    assert len(items) >= 40
    assert len(zh.json()["categories"]) >= 6
    names = {i["name"] for i in items}
    assert "Kung pao chicken" in names
    assert not any("duck" in n for n in names)  # the hidden dish is not shown
    assert zh.headers["etag"] != en.headers["etag"]
    again = client.get(f"/api/v1/tables/{token}/menu?lang=zh", headers={"if-none-match": zh.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_the_menu_goes_compressed_to_a_phone_that_takes_it(client, token):
    import brotli

    url = f"/api/v1/tables/{token}/menu?lang=zh"
    plain = client.get(url, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with client.stream("GET", url, headers={"accept-encoding": "gzip, br"}) as raw:
        wire = b"".join(raw.iter_raw())
        assert raw.headers["content-encoding"] == "br" and "Accept-Encoding" in raw.headers["vary"]
        assert raw.headers["etag"] == plain.headers["etag"]  # one ETag for every encoding
    assert brotli.decompress(wire) == plain.content and len(wire) < len(plain.content) / 3
    gz = client.get(url, headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.content == plain.content
    again = client.get(url, headers={"accept-encoding": "br", "if-none-match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and "content-encoding" not in again.headers


def test_menu_shows_variants_options_allergens_and_sold_out(client, token):
    items = {
        i["name"]: i
        for c in client.get(f"/api/v1/tables/{token}/menu?lang=zh").json()["categories"]
        for i in c["items"]
    }
    xlb = items["鲜肉小笼包"]
    assert xlb["price_minor"] is None
    assert [(v["name"], v["price_minor"]) for v in xlb["variants"]] == [
        (xlb["variants"][0]["name"], 2200),
        (xlb["variants"][1]["name"], 4000),
    ]
    assert xlb["from_price_minor"] == 2200
    noodles = items["担担面"]
    groups = {g["name"]: g for g in noodles["option_groups"]}
    assert groups["辣度"]["min_choices"] == 1 and groups["辣度"]["max_choices"] == 1
    assert groups["加料"]["max_choices"] == 3
    assert {o["name"]: o["price_delta_minor"] for o in groups["加料"]["options"]}["加蛋"] == 300
    assert items["油爆河虾"]["sold_out"] is True
    assert "sesame" in items["拍黄瓜"]["allergens"]


def test_menu_change_moves_the_etag_and_shows_at_once(client, token, db):
    first = client.get(f"/api/v1/tables/{token}/menu?lang=en")
    with db:
        db.execute("UPDATE items SET sold_out = 1 WHERE key = 'mapo_tofu'")
    second = client.get(f"/api/v1/tables/{token}/menu?lang=en", headers={"if-none-match": first.headers["etag"]})
    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"]
    mapo = next(i for c in second.json()["categories"] for i in c["items"] if i["name"].startswith("Mapo"))
    assert mapo["sold_out"] is True


def test_stock_counts_alone_do_not_move_the_etag(client, token, db):
    first = client.get(f"/api/v1/tables/{token}/menu?lang=en").headers["etag"]
    with db:
        db.execute("UPDATE items SET stock = stock - 1 WHERE key = 'crab_xiaolongbao'")
    assert client.get(f"/api/v1/tables/{token}/menu?lang=en").headers["etag"] == first


def test_unknown_language_falls_back_to_the_store_default(client, token):
    assert client.get(f"/api/v1/tables/{token}/menu?lang=fr").json()["lang"] == "zh"
