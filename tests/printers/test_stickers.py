"""Table QR stickers: the codes decode (with zxing-cpp) to each table's signed URL, at whole-dot module sizes."""

from __future__ import annotations

import math
import re

import pytest
import zxingcpp
from PIL import Image, PdfParser

from appliance.db.connection import open_connection
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import get_table, list_tables, rekey_table, resolve_token, table_url
from appliance.domain.errors import DomainError
from appliance.domain.printing import StickerInfo, WifiInfo, wifi_payload
from appliance.settings import public_base_url
from appliance.store import read_secret
from printers.stickers import qr_image, qr_matrix, sheet_pages, sticker_image, store_stickers, write_sheet
from tests.conftest import token_for

URL = "http://box.test:8080/t/" + "abcdefghijklmnopqrstuvwxyz234567"
INFO = StickerInfo("川味小馆 Sichuan House", "A1", "大厅 Hall", URL)
WIFI = WifiInfo("Tablebox Guest", 'se;cret"pass')
A4_300DPI = (2480, 3508)


def decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(image.convert("L") if image.mode == "1" else image)


def read_wifi(payload: str) -> dict[str, str]:
    """A reader's view of a WIFI: payload (backslash escapes undone), to check the escaping round-trips."""
    assert payload.startswith("WIFI:") and payload.endswith(";;")
    fields: dict[str, str] = {}
    key, value, escaped, in_value = "", "", False, False
    for ch in payload[len("WIFI:") : -1]:
        if escaped:
            value, escaped = value + ch, False
        elif ch == "\\":
            escaped = True
        elif not in_value and ch == ":":
            in_value = True
        elif ch == ";":
            fields[key], key, value, in_value = value, "", "", False
        elif in_value:
            value += ch
        else:
            key += ch
    return fields


# --- the code itself -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["M", "Q"])
def test_the_matrix_has_a_four_module_quiet_zone_on_every_side(level):
    matrix = qr_matrix(URL, level)
    size = len(matrix)
    assert all(len(row) == size for row in matrix)
    assert (size - 8 - 17) % 4 == 0  # a QR version: 21, 25, 29 ... modules, plus 2 x 4 of quiet zone
    for i in range(4):
        assert not any(matrix[i]) and not any(matrix[size - 1 - i])
        assert not any(row[i] for row in matrix) and not any(row[size - 1 - i] for row in matrix)
    # The finder pattern starts right inside the quiet zone: a dark 7-module edge at row/column 4.
    assert all(matrix[4][4:11]) and all(row[4] for row in matrix[4:11])


def test_level_q_is_used_when_asked_and_costs_modules():
    assert len(qr_matrix(URL, "Q")) > len(qr_matrix(URL, "M"))
    assert [b.ec_level for b in decode(qr_image(URL, 6, "Q"))] == ["Q"]
    assert [b.ec_level for b in decode(qr_image(URL, 6))] == ["M"]


@pytest.mark.parametrize("dots", [4, 6, 8, 12])
def test_the_image_draws_every_module_as_an_exact_block_of_dots(dots):
    matrix = qr_matrix(URL)
    modules = len(matrix)
    image = qr_image(URL, dots)
    assert image.mode == "1"
    assert image.size == (modules * dots, modules * dots)
    dark_seen = light_seen = 0
    for y in range(modules):
        for x in range(modules):
            block = image.crop((x * dots, y * dots, (x + 1) * dots, (y + 1) * dots))
            expected = 0 if matrix[y][x] else 255
            assert block.getextrema() == (expected, expected), (x, y)
            dark_seen += matrix[y][x]
            light_seen += not matrix[y][x]
    assert dark_seen > 0 and light_seen > 0
    assert image.getpixel((0, 0)) == 255  # white background (the quiet zone)
    assert [b.text for b in decode(image)] == [URL]


# --- Wi-Fi -----------------------------------------------------------------------------------------------------


def test_the_wifi_payload_escapes_what_the_scheme_reserves():
    assert wifi_payload(WIFI) == 'WIFI:T:WPA;S:Tablebox Guest;P:se\\;cret\\"pass;;'
    assert wifi_payload(WifiInfo("Open House", security="nopass")) == "WIFI:T:nopass;S:Open House;;"
    tricky = WifiInfo('a\\b;c,d:e"f', 'p\\;,:"word')
    payload = wifi_payload(tricky)
    assert payload == 'WIFI:T:WPA;S:a\\\\b\\;c\\,d\\:e\\"f;P:p\\\\\\;\\,\\:\\"word;;'
    assert read_wifi(payload) == {"T": "WPA", "S": tricky.ssid, "P": tricky.password}


def test_a_wifi_sticker_carries_both_codes():
    image = sticker_image(INFO, wifi=WIFI)
    found = sorted(decode(image), key=lambda b: b.position.top_left.y)
    assert [b.text for b in found] == [URL, 'WIFI:T:WPA;S:Tablebox Guest;P:se\\;cret\\"pass;;']
    assert read_wifi(found[1].text)["P"] == 'se;cret"pass'
    # The Wi-Fi code is the smaller one, so the table's code is the obvious one to scan.
    assert found[1].position.top_right.x - found[1].position.top_left.x < (
        found[0].position.top_right.x - found[0].position.top_left.x
    )
    assert image.height > sticker_image(INFO).height


# --- receipt stickers from the store ---------------------------------------------------------------------------


def test_every_demo_table_gets_a_sticker_that_decodes_to_its_own_signed_url(settings):
    stickers = store_stickers(settings)
    conn = open_connection(settings.db_path)
    try:
        tables = list_tables(conn)
        store = load_store_settings(conn)
        secret = read_secret(settings.secret_path)
        assert [s.table_name for s in stickers] == [t.name for t in tables]
        assert len(stickers) == 14
        for info, table in zip(stickers, tables, strict=True):
            assert info.store_name == store.store_name and info.area == table.area
            assert info.url == table_url("http://box.test:8080", token_for(settings, table.name))
            image = sticker_image(info, width_px=576 if table.id % 2 else 384, dots_per_module=8 if table.id % 2 else 6)
            assert image.mode == "1" and image.width in (576, 384)
            codes = decode(image)
            assert [c.text for c in codes] == [info.url]
            token = info.url.rsplit("/t/", 1)[1]
            resolved = resolve_token(lambda tid: get_table(conn, tid), secret, store.store_id, token)
            assert resolved.id == table.id and resolved.name == info.table_name
    finally:
        conn.close()


def test_named_tables_come_in_the_order_given_and_a_rekeyed_table_gets_a_new_url(settings):
    before = store_stickers(settings, ["T2", "A1", "T2"])
    assert [s.table_name for s in before] == ["T2", "A1"]
    conn = open_connection(settings.db_path)
    try:
        t2 = next(t for t in list_tables(conn) if t.name == "T2")
        rekey_table(conn, t2.id)
        after = store_stickers(settings, ["T2"])
        assert after[0].url != before[0].url
        assert after[0].url.startswith(public_base_url(settings) + "/t/")
        store_id, secret = load_store_settings(conn).store_id, read_secret(settings.secret_path)
        old_token = before[0].url.rsplit("/", 1)[1]
        with pytest.raises(DomainError) as old:
            resolve_token(lambda tid: get_table(conn, tid), secret, store_id, old_token)
        assert old.value.code == "table_rekeyed"
        new_token = decode(sticker_image(after[0]))[0].text.rsplit("/", 1)[1]
        assert resolve_token(lambda tid: get_table(conn, tid), secret, store_id, new_token).id == t2.id
    finally:
        conn.close()


# --- A4 sheets -------------------------------------------------------------------------------------------------


def pdf_page_count(path):
    with PdfParser.PdfParser(str(path)) as pdf:
        pages = len(pdf.pages)
    # Cross-check by the raw objects: "/Type /Page" but not "/Type /Pages".
    assert len(re.findall(rb"/Type\s*/Page(?![a-z])", path.read_bytes())) == pages
    return pages


def test_the_sheet_pdf_has_one_page_per_twelve_tables(settings, tmp_path):
    stickers = store_stickers(settings)
    written = write_sheet(stickers, tmp_path / "stickers.pdf")
    assert written == [tmp_path / "stickers.pdf"]
    assert written[0].read_bytes().startswith(b"%PDF")
    assert pdf_page_count(written[0]) == math.ceil(14 / 12) == 2


def test_the_sheet_pngs_are_a4_pages_whose_codes_decode_to_the_tables_in_order(settings, tmp_path):
    stickers = store_stickers(settings)
    written = write_sheet(stickers, tmp_path / "stickers.png")
    assert written == [tmp_path / "stickers-1.png", tmp_path / "stickers-2.png"]
    pages = [Image.open(path) for path in written]
    assert [page.size for page in pages] == [A4_300DPI, A4_300DPI]
    first = decode(pages[0].convert("RGB"))
    assert len(first) == 12
    # Reading order: sort by row, then column (rows are hundreds of dots apart).
    first.sort(key=lambda b: (b.position.top_left.y // 100, b.position.top_left.x))
    assert [b.text for b in first] == [s.url for s in stickers[:12]]
    assert sorted(b.text for b in decode(pages[1].convert("RGB"))) == sorted(s.url for s in stickers[12:])
    # Every code is at least 25 mm across (the dark symbol alone; the quiet zone comes on top).
    min_dots = 25 / 25.4 * 300
    for code in first:
        assert code.position.top_right.x - code.position.top_left.x + 1 >= min_dots


def test_a_single_page_sheet_keeps_the_plain_name_and_wifi_stickers_still_fit(tmp_path):
    written = write_sheet([INFO] * 3, tmp_path / "one.png", wifi=WIFI)
    assert written == [tmp_path / "one.png"]
    assert not (tmp_path / "one-1.png").exists()
    texts = sorted(b.text for b in decode(Image.open(written[0]).convert("RGB")))
    assert texts == sorted([URL] * 3 + [wifi_payload(WIFI)] * 3)


def test_sheet_pages_are_rgb_a4_at_the_asked_resolution():
    pages = sheet_pages([INFO] * 13, dpi=150)
    assert len(pages) == 2 and all(p.mode == "RGB" and p.size == (1240, 1754) for p in pages)


# --- errors ----------------------------------------------------------------------------------------------------


def test_unknown_table_names_are_refused_by_name(settings):
    with pytest.raises(ValueError, match="Z9, Q7"):
        store_stickers(settings, ["A1", "Z9", "Q7"])


def test_an_inactive_table_is_named_as_such(settings):
    conn = open_connection(settings.db_path)
    try:
        conn.execute("UPDATE tables SET active = 0 WHERE name = 'A3'")
    finally:
        conn.close()
    assert "A3" not in [s.table_name for s in store_stickers(settings)]
    with pytest.raises(ValueError, match=r"A3 \(inactive\)"):
        store_stickers(settings, ["A3"])


def test_an_empty_table_list_is_refused(settings, tmp_path):
    with pytest.raises(ValueError, match="no tables named"):
        store_stickers(settings, [])
    with pytest.raises(ValueError, match="at least one table"):
        sheet_pages([])
    with pytest.raises(ValueError, match="at least one table"):
        write_sheet([], tmp_path / "none.pdf")
    assert not (tmp_path / "none.pdf").exists()


@pytest.mark.parametrize("dots", [0, 3, 13])
def test_dots_per_module_outside_4_to_12_are_refused(dots):
    with pytest.raises(ValueError, match="dots per module must be 4-12"):
        qr_image(URL, dots)
    with pytest.raises(ValueError, match="dots per module must be 4-12"):
        sticker_image(INFO, dots_per_module=dots)


def test_a_sticker_narrower_than_its_code_is_refused():
    modules = len(qr_matrix(URL))
    with pytest.raises(ValueError, match=f"{modules * 8} px wide .* does not fit a 300 px sticker"):
        sticker_image(INFO, width_px=300)
    assert sticker_image(INFO, width_px=300, dots_per_module=6).width == 300  # 41 x 6 = 246 dots fit


@pytest.mark.parametrize("name", ["stickers.jpg", "stickers.svg", "stickers"])
def test_unsupported_sheet_formats_are_refused_before_anything_is_written(tmp_path, name):
    with pytest.raises(ValueError, match=r"\.pdf or \.png"):
        write_sheet([INFO], tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_bad_codes_and_wifi_settings_are_refused():
    with pytest.raises(ValueError, match="error correction"):
        qr_matrix(URL, "X")
    with pytest.raises(ValueError, match="something to encode"):
        qr_matrix("")
    with pytest.raises(ValueError, match="too many"):
        qr_matrix("x" * 3000)
    with pytest.raises(ValueError, match="needs a password"):
        wifi_payload(WifiInfo("Guest"))
    with pytest.raises(ValueError, match="8 to 63"):
        wifi_payload(WifiInfo("Guest", "short"))
    with pytest.raises(ValueError, match="security"):
        wifi_payload(WifiInfo("Guest", "password1", "WPA3"))
    with pytest.raises(ValueError, match="name"):
        wifi_payload(WifiInfo("", "password1"))
