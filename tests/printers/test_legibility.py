"""A ticket a cook reads from a metre away: the table four times the normal size (white on black where that
cannot fit the paper), the ticket number under it, large print per printer; measured on the drawn ticket.

The drawings go to test-artifacts/ticket-*.png (TABLEBOX_TEST_ARTIFACTS to put them elsewhere)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest
from PIL import Image, ImageOps

from appliance.db.connection import open_connection, write_transaction
from appliance.db.orders import MenuCache, OrderRequest, submit_order
from appliance.db.tables import list_tables
from appliance.domain.pricing import CartLine
from appliance.settings import BoxSettings
from printers.document import (
    PAPER_COLUMNS,
    Document,
    Line,
    PrinterTestPage,
    banner,
    kitchen_ticket,
    void_ticket,
    widest,
)
from printers.parse import Row, printed_rows
from printers.raster import DOTS, ROW_DOTS, draw
from printers.render import REVERSE_OFF, REVERSE_ON, render
from printers.virtual import VirtualPrinter
from printers.worker import PrintWorker

ARTIFACTS = Path(os.environ.get("TABLEBOX_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
TICKET_END = b"\x1dV\x00"

LONG_NAME = "Terrace table 12 by the window!!"  # 32 characters, the longest a table name prints
LONG_HANZI = "露台靠窗十二号桌露台靠窗十二号桌"  # 16 hanzi: 32 columns
LONG_STATION = "Wok station, hot dishes, 2nd fl."  # 32 characters

ORDER: dict[str, Any] = {
    "id": 7,
    "ticket_no": 42,
    "table": "A3",
    "channel": "lan",
    "created_at": "2026-11-21T04:05:00.000000Z",
    "note": "生日快乐，请慢一点上菜",
    "lines": [
        {
            "line_no": 1,
            "names": {"zh": "担担面", "en": "Dan dan noodles"},
            "variant_names": {"zh": "大碗", "en": "Large"},
            "options": [{"names": {"zh": "微辣", "en": "Mild"}}],
            "quantity": 2,
            "note": "不要葱",
            "station": "kitchen",
            "status": "active",
        },
    ],
}


def ticket(table: str = "A3", paper_mm: int = 80, **kw: object) -> Document:
    kw.setdefault("station_names", {"kitchen": "厨房 Kitchen"})
    return kitchen_ticket(
        dict(ORDER, table=table),
        "kitchen",
        lang="zh",
        timezone="Asia/Shanghai",
        columns=PAPER_COLUMNS[paper_mm],
        **kw,  # type: ignore[arg-type]
    )


def rows_of(doc: Document, paper_mm: int, mode: str) -> list[Row]:
    return printed_rows(render(doc, paper_mm=paper_mm, mode=mode))[0]


def assert_fits(rows: list[Row], paper_mm: int) -> None:
    """Every printed row within the paper, counted as the widest mode prints it (non-ASCII two columns)."""
    for row in rows:
        assert widest(row.text) * row.size <= PAPER_COLUMNS[paper_mm], row


def slug(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_")


def save(image: Image.Image, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTIFACTS / f"ticket-{name}.png")


def ink_height(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Height in dots of the black ink inside `box` of a mode "1" drawing (0 = black)."""
    found = ImageOps.invert(image.crop(box).convert("L")).getbbox()
    return 0 if found is None else found[3] - found[1]


def normal_height(text: str, paper_mm: int) -> int:
    """The glyph height of `text` printed as a normal row (size 1), measured the same way."""
    return ink_height(draw(Document((Line(text),)), paper_mm=paper_mm), (0, 0, DOTS[paper_mm], ROW_DOTS))


def white_on_black(image: Image.Image, top: int, height: int) -> tuple[int, int, int]:
    """(left, right, white glyph height) of a white-on-black band whose rows start at `top`: the black block
    is found from the band's first dot row, the glyphs are the white dots inside it."""
    first = image.crop((0, top, image.size[0], top + 1))
    black = [x for x in range(image.size[0]) if first.getpixel((x, 0)) == 0]
    assert black, "no black block"
    left, right = black[0], black[-1] + 1
    block = image.crop((left, top, right, top + height))
    glyphs = block.getbbox()  # white (1) dots inside the block
    assert glyphs is not None, "the block has no white glyphs"
    return left, right, glyphs[3] - glyphs[1]


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("table", ["A3", "12", "包间3", "Table 12"])
def test_the_table_prints_four_times_the_normal_size_with_the_ticket_number_under_it(paper_mm: int, table: str) -> None:
    doc = ticket(table, paper_mm)
    rows = rows_of(doc, paper_mm, "gb18030")
    head, number = rows[0], rows[1]
    assert (head.text, head.size, head.bold, head.invert, head.align) == (table, 4, True, False, 1)  # GS ! 0x33
    assert (number.text, number.size, number.bold) == ("#42", 2, True)
    assert rows[2].text.startswith("厨房 Kitchen") and rows[2].text.endswith("12:05")
    assert_fits(rows, paper_mm)
    image = draw(doc, paper_mm=paper_mm)
    save(image, f"{paper_mm}mm-{slug(table)}")
    printed = ink_height(image, (0, 0, DOTS[paper_mm], 4 * ROW_DOTS))  # the first row: the table, 120 dots
    normal = normal_height(table, paper_mm)
    assert normal > 10 and printed >= 4 * normal, (printed, normal)


@pytest.mark.parametrize(
    "paper_mm,table,size,rows_n",
    [
        (58, "Terrace 12", 3, 1),  # 10 columns: x3 fits 32, x4 would not
        (80, "Terrace table 12", 3, 1),  # 16 columns: x3 fits 48
        (58, LONG_NAME, 2, 3),  # 16 columns a row at x2, broken at spaces
        (80, LONG_NAME, 2, 2),
        (58, LONG_HANZI, 2, 2),
        (80, LONG_HANZI, 2, 2),
        (80, "包间十二号桌大", 3, 1),  # 14 columns
    ],
)
def test_a_table_name_too_long_for_four_times_prints_white_on_black(
    paper_mm: int, table: str, size: int, rows_n: int
) -> None:
    doc = ticket(table, paper_mm)
    rows = rows_of(doc, paper_mm, "gb18030")
    head = rows[:rows_n]
    assert all(r.invert and r.size == size and r.bold for r in head), rows
    assert not rows[rows_n].invert and rows[rows_n].text == "#42"  # white on black stops with the name
    assert "".join("".join(r.text for r in head).split()) == "".join(table.split())  # nothing lost
    assert_fits(rows, paper_mm)
    data = render(doc, paper_mm=paper_mm)
    assert data.count(REVERSE_ON) == 1 and data.count(REVERSE_OFF) == 1
    assert data.index(REVERSE_ON) < data.index(b"#42") and data.index(REVERSE_OFF) < data.index(b"#42")

    image = draw(doc, paper_mm=paper_mm)
    save(image, f"{paper_mm}mm-long-{slug(table)}")
    band = size * ROW_DOTS
    left, right, glyphs = white_on_black(image, 0, band)
    block = image.crop((left, 0, right, band))
    assert block.histogram()[0] > 0.6 * block.size[0] * block.size[1]  # mostly black: it stands out
    first_row_text = rows[0].text
    assert glyphs >= size * normal_height(first_row_text, paper_mm) - 1  # white glyphs as tall as the size
    assert right - left >= widest(first_row_text) * size * DOTS[paper_mm] // PAPER_COLUMNS[paper_mm] - 1


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize(
    "mode,table",
    [
        ("codepage", "包间3"),
        ("codepage", LONG_HANZI),
        ("gb18030", "Mañana 3"),
        ("gb18030", "Señor Ñandú 12 de la terraza"),
    ],
)
def test_a_table_name_the_printers_font_lacks_is_drawn_as_big_and_as_black(
    paper_mm: int, mode: str, table: str
) -> None:
    """PC858 has no hanzi and GB2312 no ñ: the box draws those rows (printers.render), at the heading's size."""
    rows = rows_of(ticket(table, paper_mm), paper_mm, mode)
    number = next(i for i, r in enumerate(rows) if r.text == "#42")
    head = rows[:number]
    assert head[0].image is not None  # drawn, never `?` or junk; a row of plain ASCII may stay text
    assert all(r.image is not None or (r.text.isascii() and "?" not in r.text) for r in head), head
    size = head[0].size
    assert all(r.size == size for r in head)
    fits_four = widest(table) * 4 <= PAPER_COLUMNS[paper_mm]
    assert (size == 4 and not any(r.invert for r in head)) if fits_four else (size < 4 and all(r.invert for r in head))
    for r in head:
        assert r.image is None or r.image.size == (DOTS[paper_mm], size * ROW_DOTS)
    first = head[0].image
    assert first is not None
    save(first, f"{paper_mm}mm-{mode}-drawn-{slug(table)}")
    if fits_four:
        printed = ink_height(first, (0, 0, DOTS[paper_mm], 4 * ROW_DOTS))
        # one dot of slack: the font hints ñ's tilde a dot higher at 24 px than at 96 (71 dots vs 4 x 18)
        assert printed >= 4 * normal_height(table, paper_mm) - 1, printed
    else:
        left, right, _ = white_on_black(first, 0, size * ROW_DOTS)
        block = first.crop((left, 0, right, size * ROW_DOTS))
        assert block.histogram()[0] > 0.6 * block.size[0] * block.size[1]


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_banners_long_station_and_fallback_names_never_wrap_a_heading_or_overflow(paper_mm: int) -> None:
    long_kw = {"station_names": {"kitchen": LONG_STATION}, "fallback_for": "spare-printer-by-the-back-door-1"}
    for doc in (
        ticket(LONG_NAME, paper_mm, reprint=True, **long_kw),
        ticket(LONG_HANZI, paper_mm, reprint=True, large_print=True, **long_kw),
        void_ticket(
            dict(ORDER, table=LONG_NAME),
            ORDER["lines"],
            lang="en",
            reason="客人取消 guest cancelled",
            fallback_for="spare-printer-by-the-back-door-1",
            columns=PAPER_COLUMNS[paper_mm],
        ),
    ):
        rows = rows_of(doc, paper_mm, "gb18030")
        assert_fits(rows, paper_mm)
        assert rows[0].size == 2 and rows[1].size == 1  # the banner is one row: the next is the 代打 line
        assert rows[0].text.strip("* ") in ("重印 REPRINT", "作废 VOID")
        texts = [r.text for r in rows]
        assert "#42" in texts
        if doc.title.startswith("ticket"):
            station_rows = [t for t in texts if "Wok station" in t or "2nd fl." in t]
            assert station_rows and station_rows[-1].endswith("12:05")  # the time stays on the station's row
    assert banner("作废 VOID", 32).text == "** 作废 VOID **"  # 58 mm at double size: 15 of 16 columns
    assert banner("作废 VOID", 48).text == "*** 作废 VOID ***"
    assert banner("重印 REPRINT", 32).text == "* 重印 REPRINT *"


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_a_latin_menu_in_codepage_mode_gets_the_same_heading(paper_mm: int) -> None:
    order = dict(ORDER, note="birthday, slowly please")
    for table, size, invert in (("A3", 4, False), (LONG_NAME, 2, True)):
        doc = kitchen_ticket(
            dict(order, table=table),
            "kitchen",
            lang="en",
            timezone="Asia/Shanghai",
            station_names={"kitchen": LONG_STATION},
            columns=PAPER_COLUMNS[paper_mm],
        )
        rows = rows_of(doc, paper_mm, "codepage")
        assert_fits(rows, paper_mm)
        number = next(i for i, r in enumerate(rows) if r.text == "#42")
        assert number >= 1 and all(r.size == size and r.invert == invert for r in rows[:number])
        assert "".join("".join(r.text for r in rows[:number]).split()) == "".join(table.split())
        assert any(r.text.startswith("2 x Dan dan") and r.size == 2 for r in rows)


def test_the_void_ticket_has_the_same_big_table_and_number() -> None:
    doc = void_ticket(ORDER, ORDER["lines"], lang="zh", reason="沽清", columns=32)
    rows = rows_of(doc, 58, "gb18030")
    assert [(r.text, r.size, r.invert) for r in rows[:3]] == [
        ("** 作废 VOID **", 2, True),
        ("A3", 4, False),
        ("#42", 2, False),
    ]
    assert ("2 x 担担面", 2) in [(r.text, r.size) for r in rows]
    image = draw(doc, paper_mm=58)
    save(image, "58mm-void")
    top = 2 * ROW_DOTS  # under the banner
    assert ink_height(image, (0, top, 384, top + 4 * ROW_DOTS)) >= 4 * normal_height("A3", 58)


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_large_print_makes_dishes_and_notes_larger_still(paper_mm: int) -> None:
    normal = {r.text: r.size for r in rows_of(ticket("A3", paper_mm), paper_mm, "gb18030")}
    large_rows = rows_of(ticket("A3", paper_mm, large_print=True), paper_mm, "gb18030")
    assert_fits(large_rows, paper_mm)
    large: dict[str, int] = {}
    for r in large_rows:  # a wrapped line: every row has the line's size
        large.setdefault(r.text, r.size)
    dish = next(t for t in large if t.startswith("2 x"))
    assert normal["2 x 担担面"] == 2 and large[dish] == 3
    assert normal["  大碗 / 微辣"] == 1 and large["  大碗 / 微辣"] == 2
    assert normal["  ! 不要葱"] == 1 and large["  ! 不要葱"] == 2
    assert any(t.startswith("备注 NOTE") and s == 2 for t, s in large.items())
    assert large["A3"] == 4 and large["#42"] == 2  # the table stays at the largest size
    image = draw(ticket("A3", paper_mm, large_print=True), paper_mm=paper_mm)
    save(image, f"{paper_mm}mm-large-print")
    void = rows_of(void_ticket(ORDER, ORDER["lines"], lang="zh", large_print=True), paper_mm, "gb18030")
    assert any(r.text.startswith("2 x 担担面") and r.size == 3 for r in void)


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_the_test_page_shows_four_times_white_on_black_and_the_dish_size(paper_mm: int) -> None:
    for large_print, dish_size in ((False, 2), (True, 3)):
        doc = PrinterTestPage("kitchen", PAPER_COLUMNS[paper_mm], large_print=large_print).document()
        rows = rows_of(doc, paper_mm, "gb18030")
        assert_fits(rows, paper_mm)
        assert ("A12", 4, False) in [(r.text, r.size, r.invert) for r in rows]
        assert ("反白 Inverted", 2, True) in [(r.text, r.size, r.invert) for r in rows]
        assert any(r.text == "2 x 水饺" and r.size == dish_size for r in rows)
        assert any(r.text == f"大字 Large print: {'on' if large_print else 'off'}" for r in rows)
    save(draw(doc, paper_mm=paper_mm), f"{paper_mm}mm-test-page")


def test_an_inverted_line_is_drawn_white_on_black_and_a_plain_one_is_not() -> None:
    doc = Document((Line("AB", size=2), Line("AB", size=2, invert=True)))
    image = draw(doc, paper_mm=80)
    plain, inverted = image.crop((0, 0, 48, 60)), image.crop((0, 60, 48, 120))
    assert plain.histogram()[0] < 0.3 * 48 * 60 and inverted.histogram()[0] > 0.6 * 48 * 60
    assert image.crop((48, 60, 576, 120)).histogram()[0] == 0  # only the row's cells, not the whole width
    assert ImageOps.invert(inverted.convert("L")).getbbox() is not None


# -- Through the print worker: the printer's paper and its large-print setting reach the ticket ------------------


@pytest.fixture
def kitchen(settings: BoxSettings) -> Iterator[tuple[apsw.Connection, VirtualPrinter]]:
    printer = VirtualPrinter("kitchen").start()
    conn = open_connection(settings.db_path)
    try:
        with write_transaction(conn):
            conn.execute(
                "UPDATE printers SET uri = ?, paper_mm = 58, large_print = 1 WHERE name = 'kitchen'", (printer.uri,)
            )
            conn.execute("UPDATE printers SET enabled = 0 WHERE name <> 'kitchen'")
            conn.execute("UPDATE tables SET name = ? WHERE name = 'A1'", (LONG_NAME,))
        yield conn, printer
    finally:
        conn.close()
        printer.stop()


def test_the_worker_prints_the_table_for_its_paper_and_large_print(
    settings: BoxSettings, kitchen: tuple[apsw.Connection, VirtualPrinter]
) -> None:
    conn, printer = kitchen
    table = {t.name: t for t in list_tables(conn)}[LONG_NAME]
    (har_gow,) = conn.execute("SELECT id FROM items WHERE key = 'har_gow'").fetchall()[0]
    assert isinstance(har_gow, int)
    with write_transaction(conn):
        request = OrderRequest(client_key=f"legibility-{threading.get_ident()}-0001", lines=(CartLine(har_gow, 2),))
        order = submit_order(conn, table, request, MenuCache()).order
    with PrintWorker(settings.db_path, poll_seconds=0.01, fault_retry_seconds=0.05):
        assert printer.wait_for(lambda b: TICKET_END in b, timeout=10)
    rows = printed_rows(printer.received)[0]
    assert_fits(rows, 58)
    head = [r for r in rows if r.invert]
    assert [r.size for r in head] == [2, 2, 2]  # 32 characters on 58 mm: white on black, double size, 3 rows
    assert "".join("".join(r.text for r in head).split()) == "".join(LONG_NAME.split())
    assert any(r.text == f"#{order['ticket_no']}" and r.size == 2 for r in rows)
    dish = [r.text for r in rows if r.size == 3]  # large print: dishes x3 (10 columns on 58 mm: it wraps)
    assert "".join(dish) == "2 x 水晶虾饺" and len(dish) == 2
