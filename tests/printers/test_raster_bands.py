"""Raster tickets: GS v 0 bands decode back to the drawn image, at the paper's width, with ink where text is."""

from __future__ import annotations

import pytest

from printers.document import Document, Line
from printers.raster import BAND_ROWS, decode_bands, draw, render_raster
from printers.render import BUZZER, FEED_AND_CUT, INIT


@pytest.mark.parametrize("paper_mm,width", [(58, 384), (80, 576)])
def test_bands_decode_to_the_drawn_ticket(paper_mm, width):
    doc = Document(
        (
            Line("A3", right="#42", size=2, bold=True),
            Line("2 x 宫保鸡丁（微辣）", right="￥96.00"),
            Line("からあげ"),
            Line(rule=True),
        )
    )
    data = render_raster(doc, paper_mm=paper_mm)
    assert data.startswith(INIT) and data.endswith(FEED_AND_CUT) and BUZZER not in data
    image = decode_bands(data)
    assert image.width == width and image.tobytes() == draw(doc, paper_mm=paper_mm).tobytes()


def test_ink_only_where_text_is():
    doc = Document((Line("TOTAL", align="right"), Line(""), Line("左")), cut=False)
    image = draw(doc, paper_mm=80).convert("L")
    w, h = image.size
    third = h // 3
    first, middle = image.crop((0, 0, w, third)), image.crop((0, third, w, 2 * third))
    assert first.crop((3 * w // 4, 0, w, third)).getextrema()[0] == 0  # ink at the right of row 1
    assert first.crop((0, 0, w // 2, third)).getextrema() == (255, 255)  # none on its left
    assert middle.getextrema() == (255, 255)  # the empty line is white
    assert image.crop((0, 2 * third, w // 4, h)).getextrema()[0] == 0  # 左 on the left of row 3


def test_long_tickets_come_in_bands_of_at_most_255_rows():
    doc = Document(tuple(Line(f"{n} x 担担面") for n in range(60)), buzzer=True)
    data = render_raster(doc)
    heights, i = [], 0
    while (i := data.find(b"\x1dv0", i)) != -1:
        heights.append(data[i + 6] | data[i + 7] << 8)
        i += 8
    assert len(heights) > 1 and max(heights) <= BAND_ROWS
    assert sum(heights) == draw(doc).height and BUZZER in data
    with pytest.raises(ValueError):
        decode_bands(data[: len(data) // 2])


def test_two_hanzi_draw_differently_and_neither_is_empty():
    a = draw(Document((Line("宫"),), cut=False)).tobytes()
    b = draw(Document((Line("保"),), cut=False)).tobytes()
    blank = draw(Document((Line(""),), cut=False))
    assert a != b and a != blank.tobytes()[: len(a)]
