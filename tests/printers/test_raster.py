"""Raster tickets: the ticket drawn in the bundled CJK font and sent as GS v 0 bands, read back pixel for pixel."""

from __future__ import annotations

import pytest
from PIL import Image

from printers.document import Document, Line, PrinterTestPage
from printers.raster import BAND_ROWS, DOTS, ROW_DOTS, _glyph, decode_bands, draw, raster_bands, render_raster
from printers.render import BUZZER, COLUMNS, FEED_AND_CUT, INIT, layout
from printers.virtual import StatusQueryParser

TICKET = Document(
    (
        Line("A3", right="#42", size=2, bold=True),
        Line("厨房 Kitchen", right="12:05"),
        Line(rule=True),
        Line("2 x 担担面 Dan dan noodles", size=2, bold=True),
        Line("  微辣 / 加蛋"),
        Line("  ! 不要葱", bold=True),
        Line("1 x 宫保鸡丁（微辣）", right="￥48.00"),
        Line("日本語：からあげ・カタカナ"),
        Line(rule=True),
        Line("备注 NOTE: 生日快乐，请慢一点上菜", bold=True),
    ),
    buzzer=True,
)


def bands(data: bytes) -> list[tuple[int, int]]:
    """(bytes per row, rows) of each GS v 0 command, walking the bytes command by command."""
    out, i = [], len(INIT)
    assert data.startswith(INIT)
    while data.startswith(b"\x1dv0", i):
        assert data[i + 3] == 0
        row_bytes, rows = int.from_bytes(data[i + 4 : i + 6], "little"), int.from_bytes(data[i + 6 : i + 8], "little")
        out.append((row_bytes, rows))
        i += 8 + row_bytes * rows
    return out


def ink(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Black pixels of a mode "1" image inside box."""
    return image.crop(box).histogram()[0]


def inked_box(image: Image.Image) -> tuple[int, int, int, int]:
    return image.convert("L").point(lambda v: 255 - v).getbbox()


def row_heights(document: Document, paper_mm: int) -> list[int]:
    return [ROW_DOTS * line.size for line in document.lines for _ in layout(line, COLUMNS[paper_mm])]


@pytest.mark.parametrize("paper_mm, width", [(80, 576), (58, 384)])
def test_bands_decode_to_the_drawn_ticket_pixel_for_pixel(paper_mm, width):
    image = draw(TICKET, paper_mm=paper_mm)
    decoded = decode_bands(render_raster(TICKET, paper_mm=paper_mm))
    assert image.mode == decoded.mode == "1"
    assert image.size == decoded.size == (width, sum(row_heights(TICKET, paper_mm)))
    assert decoded.tobytes() == image.tobytes()
    assert ink(image, (0, 0, width, image.size[1])) > 1000


def test_rows_wrap_like_the_text_modes():
    long = Document((Line("宫保鸡丁" * 10), Line("1234567890" * 10, size=2)))
    for paper_mm in (58, 80):
        image = draw(long, paper_mm=paper_mm)
        rows = len(layout(long.lines[0], COLUMNS[paper_mm])), len(layout(long.lines[1], COLUMNS[paper_mm]))
        assert image.size[1] == rows[0] * ROW_DOTS + rows[1] * 2 * ROW_DOTS
    assert draw(long, paper_mm=80).size[1] == 2 * 30 + 5 * 60  # 80 hanzi columns in 48; 100 digits in 24


def test_band_bits_are_one_for_black_msb_first():
    image = Image.new("1", (16, 2), 1)
    image.putpixel((0, 0), 0)
    image.putpixel((9, 1), 0)
    assert raster_bands(image) == b"\x1dv0\x00" + bytes([2, 0, 2, 0]) + bytes([0x80, 0x00, 0x00, 0x40])
    assert decode_bands(raster_bands(image)).tobytes() == image.tobytes()


def test_a_width_not_a_multiple_of_eight_pads_with_white():
    image = Image.new("1", (13, 3), 1)
    data = raster_bands(image)
    assert data[4:8] == bytes([2, 0, 3, 0])
    assert set(data[8:]) == {0}
    decoded = decode_bands(data)
    assert decoded.size == (16, 3) and ink(decoded, (0, 0, 16, 3)) == 0


def test_a_tall_ticket_goes_in_bands_of_at_most_255_rows():
    tall = Document(tuple(Line(f"{i} x 宫保鸡丁 Kung pao chicken", right="￥48.00") for i in range(60)))
    image = draw(tall)
    assert image.size == (576, 60 * ROW_DOTS)
    found = bands(render_raster(tall))
    assert len(found) == -(-image.size[1] // BAND_ROWS) == 8
    assert all(row_bytes == 72 and 0 < rows <= BAND_ROWS for row_bytes, rows in found)
    assert [rows for _, rows in found] == [255] * 7 + [1800 - 7 * 255]
    assert sum(rows for _, rows in found) == image.size[1]
    assert decode_bands(render_raster(tall)).tobytes() == image.tobytes()


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_ink_where_text_is_and_none_where_it_is_not(paper_mm):
    width = DOTS[paper_mm]
    doc = Document(
        (Line("￥8", align="right"), Line(""), Line("中文", align="center"), Line("left 左"), Line(rule=True))
    )
    image = decode_bands(render_raster(doc, paper_mm=paper_mm))
    assert image.size == (width, 5 * ROW_DOTS)
    first = (0, 0, width, ROW_DOTS)
    assert ink(image, (width * 3 // 4, 0, width, ROW_DOTS)) > 50  # right-aligned: ink on the right
    assert ink(image, (0, 0, width // 2, ROW_DOTS)) == 0  # and none on the left half
    assert ink(image, first) == ink(image, (width - 3 * 12, 0, width, ROW_DOTS))  # all in its 3 columns
    assert ink(image, (0, ROW_DOTS, width, 2 * ROW_DOTS)) == 0  # an empty line stays white
    centre = (0, 2 * ROW_DOTS, width, 3 * ROW_DOTS)
    assert ink(image, centre) == ink(image, (width // 2 - 24, 2 * ROW_DOTS, width // 2 + 24, 3 * ROW_DOTS)) > 50
    assert ink(image, (0, 3 * ROW_DOTS, 7 * 12, 4 * ROW_DOTS)) > 50  # left-aligned: ink in its 7 columns
    assert ink(image, (7 * 12, 3 * ROW_DOTS, width, 4 * ROW_DOTS)) == 0  # and nowhere after them
    rule = (0, 4 * ROW_DOTS, width, 5 * ROW_DOTS)
    assert ink(image, rule) == 2 * width  # a full-width line 2 dots thick
    assert ink(image, (0, 4 * ROW_DOTS + 14, width, 4 * ROW_DOTS + 16)) == 2 * width


def test_right_column_lines_up_at_the_paper_edge():
    doc = Document((Line("宫保鸡丁", right="￥48.00"), Line("Kung pao chicken wwwmmm", right="x 2")))
    image = draw(doc, paper_mm=58)
    for row in range(2):
        assert ink(image, (384 - 12, row * 30, 384, (row + 1) * 30)) > 10  # last column has ink
        assert ink(image, (384 - 12 * 8, row * 30, 384 - 12 * 7, (row + 1) * 30)) == 0  # the gap before prices


def test_double_size_is_twice_as_big():
    small = draw(Document((Line("宫"),)))
    big = draw(Document((Line("宫", size=2),)))
    assert small.size == (576, 30) and big.size == (576, 60)
    small_box, big_box = inked_box(small), inked_box(big)
    small_w, big_w = small_box[2] - small_box[0], big_box[2] - big_box[0]
    small_h, big_h = small_box[3] - small_box[1], big_box[3] - big_box[1]
    assert 20 <= small_w <= 24 and 40 <= big_w <= 48
    assert abs(big_w - 2 * small_w) <= 3 and abs(big_h - 2 * small_h) <= 3


def test_bold_draws_more_ink():
    plain = draw(Document((Line("宫保鸡丁 Kung pao"),)))
    bold = draw(Document((Line("宫保鸡丁 Kung pao", bold=True),)))
    assert ink(bold, (0, 0, 576, 30)) > ink(plain, (0, 0, 576, 30)) * 1.2


def cell(ch: str) -> bytes:
    mask = _glyph(ch, 2 if ord(ch) > 0x2E80 else 1, 12, 1, False)
    assert mask is not None, f"{ch!r} drew nothing"
    return mask.tobytes()


def test_chinese_yen_full_width_punctuation_and_kana_draw_real_glyphs():
    notdef = cell("\ue000")  # a private-use character no bundled font has: the stand-in 〓, never a box
    assert cell("\U000f0000") == notdef == cell("\u3013")  # (any character no font has draws the same)
    glyphs = {ch: cell(ch) for ch in "宫保鸡丁担面中文￥（），。：カタかあ"}
    for ch, bits in glyphs.items():
        assert bits != notdef, f"{ch!r} drew the stand-in"
        assert sum(bin(b).count("1") for b in bits) > 10, f"{ch!r} drew (almost) no ink"
    assert len(set(glyphs.values())) == len(glyphs)  # every one different
    test_page = draw(PrinterTestPage("kitchen-1", 48).document())
    assert ink(test_page, (0, 0, 576, test_page.size[1])) > 5000


def test_width_of_a_row_matches_its_display_width():
    image = draw(Document((Line("宫保鸡丁"),)), paper_mm=80)  # 8 columns = 96 dots
    assert ink(image, (0, 0, 96, 30)) > 100 and ink(image, (96, 0, 576, 30)) == 0


def test_bytes_start_with_init_and_end_with_buzzer_and_cut():
    data = render_raster(TICKET)
    assert data.startswith(INIT + b"\x1dv0\x00")
    assert data.endswith(BUZZER + FEED_AND_CUT)
    quiet = render_raster(Document(TICKET.lines, cut=False, buzzer=False))
    assert not quiet.endswith(FEED_AND_CUT) and BUZZER not in quiet[-len(BUZZER) - 8 :]
    assert quiet == INIT + raster_bands(draw(TICKET))
    assert render_raster(Document(TICKET.lines, cut=True, buzzer=False)) == quiet + FEED_AND_CUT
    assert len(data) == len(INIT) + 8 * len(bands(data)) + 72 * draw(TICKET).size[1] + len(BUZZER + FEED_AND_CUT)


def test_an_empty_document_is_just_init_and_cut():
    data = render_raster(Document(()))
    assert data == INIT + FEED_AND_CUT
    assert decode_bands(data).size == (0, 0)


def test_decode_refuses_truncated_or_malformed_data():
    data = render_raster(TICKET)
    first_band_end = len(INIT) + 8 + 72 * bands(data)[0][1]
    for cut in (len(INIT) + 2, len(INIT) + 6, len(INIT) + 8 + 100, first_band_end - 1, len(data) - 1):
        with pytest.raises(ValueError):
            decode_bands(data[:cut])
    with pytest.raises(ValueError, match="scaling"):
        decode_bands(b"\x1dv0\x03\x01\x00\x01\x00\x00")
    with pytest.raises(ValueError, match="empty"):
        decode_bands(b"\x1dv0\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="wide"):
        decode_bands(b"\x1dv0\x00\x01\x00\x01\x00\x00" + b"\x1dv0\x00\x02\x00\x01\x00\x00\x00")
    with pytest.raises(ValueError, match="unexpected byte"):
        decode_bands(INIT + b"hello")


def test_unknown_paper_is_refused():
    with pytest.raises(ValueError, match="paper"):
        draw(TICKET, paper_mm=72)


def test_image_bytes_never_spell_a_status_query():
    # DLE EOT n (10 04 01..04) is answered by printers even inside image data: one dot more breaks it.
    bits = bytes([0x10, 0x04, 0x01, 0x10, 0x04, 0x05, 0x00, 0x10, 0x04])  # 3 rows of 24 dots
    image = Image.frombytes("1", (24, 3), bytes(255 - b for b in bits))
    data = raster_bands(image)
    assert data[8:] == bytes([0x10, 0x0C, 0x01, 0x10, 0x04, 0x05, 0x00, 0x10, 0x04])
    decoded = decode_bands(data)
    assert ink(decoded, (0, 0, 24, 3)) == ink(image, (0, 0, 24, 3)) + 1  # one dot added, none lost
    for doc in (TICKET, PrinterTestPage("kitchen-1", 48).document()):
        for paper_mm in (58, 80):
            assert StatusQueryParser().feed(render_raster(doc, paper_mm=paper_mm)) == [
                render_raster(doc, paper_mm=paper_mm)
            ]


def test_a_drawn_ticket_is_already_free_of_status_queries(monkeypatch):
    mask = Image.new("1", (24, 30), 0)
    for x in (3, 13, 23):  # dots spelling 10 04 01 in the first 24 dots of a row
        mask.putpixel((x, 5), 1)
    monkeypatch.setattr("printers.raster._glyph", lambda *args: mask)
    doc = Document((Line("宫"),))
    image = draw(doc)
    assert image.tobytes()[5 * 72 : 5 * 72 + 3] == bytes(255 - b for b in (0x10, 0x0C, 0x01))
    assert decode_bands(render_raster(doc)).tobytes() == image.tobytes()
