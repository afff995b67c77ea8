"""Every table's sticker scans back to that table's URL, and the code in it verifies as that table."""

from __future__ import annotations

import zxingcpp

from appliance.db.connection import open_connection
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import get_table, resolve_token
from appliance.domain.printing import StickerInfo, WifiInfo
from appliance.store import read_secret
from printers.stickers import sticker_image, store_stickers


def test_every_table_sticker_scans_to_its_own_url(settings):
    stickers = store_stickers(settings)
    conn = open_connection(settings.db_path)
    secret, store_id = read_secret(settings.secret_path), load_store_settings(conn).store_id
    assert len(stickers) == 14
    for sticker in stickers:
        codes = [c.text for c in zxingcpp.read_barcodes(sticker_image(sticker).convert("L"))]
        assert codes == [sticker.url]
        token = sticker.url.rsplit("/t/", 1)[1]
        table = resolve_token(lambda i: get_table(conn, i), secret, store_id, token)
        assert table.name == sticker.table_name
    conn.close()


def test_the_wifi_code_is_escaped():
    info = StickerInfo("店", "A1", "", "http://box.test/t/x")
    image = sticker_image(info, wifi=WifiInfo("Shop;Guest", 'pass"wo;rd'))
    texts = sorted(c.text for c in zxingcpp.read_barcodes(image.convert("L")))
    expected = "WIFI:T:WPA;S:Shop" + chr(92) + ";Guest;P:pass" + chr(92) + '"wo' + chr(92) + ";rd;;"
    assert texts == sorted([expected, "http://box.test/t/x"])
