"""Every printed row fits the paper, counted the way the printer counts it, and nothing prints as `?` or junk: a
bill, a kitchen ticket and a void ticket full of Chinese punctuation, accented Latin, Greek, Cyrillic, emoji and ￥
prices, rendered in every text mode (gb18030 with each font coverage, codepage, raster) at 58 and 80 mm and read
back from the bytes (printers.parse; raster via decode_bands)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from appliance.domain.money import Currency
from printers.columns import RASTER_MODEL, TextModel, ignorable, layout, wrap
from printers.document import Document, Line, bill, kitchen_ticket, void_ticket
from printers.fonts import STAND_IN, cjk_font, cjk_font_path, drawing_font, font_codepoints
from printers.parse import printed_rows
from printers.raster import DOTS, ROW_DOTS, _glyph, decode_bands, draw_rows, render_raster
from printers.render import CHINESE_OFF, CHINESE_ON, COLUMNS, money_format, render

NOTE = "“不要葱”…少放辣——谢谢·‘快’ ñ ç ½ έ 😀 Спасибо"
ORDER = {
    "id": 9,
    "ticket_no": 108,
    "table": "露台·3",
    "channel": "lan",
    "created_at": "2026-11-21T04:05:00.000000Z",
    "note": "生日快乐！“蛋糕”… 🎂 Привет Γειά σου, señor Çelik ½",
    "status": "new",
    "subtotal_minor": 1288_00 + 2 * 38_00 + 12_50,
    "service_charge_minor": 13_77,
    "lines": [
        {
            "line_no": 1,
            "names": {"zh": "红烧肉（五花）“招牌” — Ñoquis à la crème ½"},
            "variant_names": {"zh": "大份·加辣"},
            "options": [{"names": {"zh": "微辣"}}, {"names": {"zh": "Μουσακάς έξτρα"}}],
            "quantity": 1,
            "note": NOTE,
            "station": "kitchen",
            "status": "active",
            "line_total_minor": 1288_00,
        },
        {
            "line_no": 2,
            "names": {"zh": "Борщ со сметаной 🌶️🌶️ 辣"},
            "variant_names": None,
            "options": [],
            "quantity": 2,
            "note": "‘少盐’ 👍🏻",
            "station": "kitchen",
            "status": "active",
            "line_total_minor": 2 * 38_00,
        },
        {
            "line_no": 3,
            "names": {"zh": "Café crème — “très chaud” 😀"},
            "variant_names": None,
            "options": [],
            "quantity": 1,
            "note": "",
            "station": "kitchen",
            "status": "active",
            "line_total_minor": 12_50,
        },
    ],
}
CNY = Currency.of("CNY")

# (text mode, font coverage): gb18030 with each coverage, codepage, raster
MODES = [("gb18030", "gb2312"), ("gb18030", "gb18030"), ("codepage", "gb2312"), ("raster", "gb2312")]


def documents(mode: str, coverage: str, paper_mm: int) -> dict[str, Document]:
    columns = COLUMNS[paper_mm]
    return {
        "bill": bill(
            [ORDER],
            store_name="Dumpling “小笼” Ñandú 😀",
            table=ORDER["table"],
            lang="zh",
            timezone="Asia/Shanghai",
            currency_format=money_format(CNY, mode, coverage),
            tax_rate_bp=600,
            paid=False,
        ),
        "ticket": kitchen_ticket(
            ORDER,
            "kitchen",
            lang="zh",
            timezone="Asia/Shanghai",
            station_names={"kitchen": "厨房 Kitchen — Κουζίνα"},
            reprint=True,
            fallback_for="bar “2”",
            columns=columns,
        ),
        "void": void_ticket(
            ORDER, ORDER["lines"], lang="zh", reason="客人说“太辣”… ñ 😀", fallback_for="bar", columns=columns
        ),
    }


def expected_rows(document: Document, columns: int, model: TextModel) -> list[tuple[Line, str]]:
    return [(line, row) for line in document.lines for row in layout(line, columns, model)]


def ink_width(image: Image.Image) -> int:
    box = image.convert("L").point(lambda v: 255 - v).getbbox()
    return 0 if box is None else box[2] - box[0]


def assert_drawn_with_real_glyphs(row: str) -> None:
    """Every character of a drawn row has a glyph in a bundled font: nothing came out as the stand-in or a box."""
    for ch in row:
        if not ignorable(ch) and ch != " ":
            assert drawing_font(ch, 24)[1] == ch, f"{ch!r} has no bundled glyph"


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("mode,coverage", MODES)
@pytest.mark.parametrize("kind", ["bill", "ticket", "void"])
def test_every_printed_row_fits_the_paper_and_nothing_is_junk(kind, mode, coverage, paper_mm):
    columns, dots = COLUMNS[paper_mm], DOTS[paper_mm]
    document = documents(mode, coverage, paper_mm)[kind]
    model = TextModel(mode, coverage)
    expected = expected_rows(document, columns, model)
    if mode == "raster":
        image = decode_bands(render_raster(document, paper_mm=paper_mm))
        assert image.size == (dots, sum(ROW_DOTS * line.size for line, _ in expected))
        top = 0
        for line, row in expected:
            band = image.crop((0, top, dots, top + ROW_DOTS * line.size))
            assert model.text_width(row) * line.size <= columns, row
            assert ink_width(band) <= model.text_width(row) * line.size * (dots // columns), row
            assert_drawn_with_real_glyphs(row)
            top += ROW_DOTS * line.size
        return
    data = render(document, paper_mm=paper_mm, mode=mode, font_coverage=coverage)
    # raises on an undecodable section, a control byte we never send, or (gb18030) a character the font lacks
    rows, _ = printed_rows(data, font_coverage=coverage if mode == "gb18030" else None)
    assert len(rows) == len(expected)
    drawn = 0
    for got, (line, row) in zip(rows, expected, strict=True):
        assert (got.size, got.bold, got.invert) == (line.size, line.bold, line.invert)
        if got.image is None:
            assert got.text == row
            assert got.columns * got.size <= columns, f"{got.text!r}: {got.columns} x {got.size} > {columns}"
            assert got.columns == model.text_width(row), row  # the layout counted what the printer prints
            assert "?" not in got.text and "\ufffd" not in got.text
        else:
            drawn += 1
            assert model.drawn(row)  # only rows the printer's font cannot print are drawn
            assert got.image.size == (dots, ROW_DOTS * line.size)
            assert model.text_width(row) * line.size <= columns, row
            assert ink_width(got.image) <= model.text_width(row) * line.size * (dots // columns), row
            same = draw_rows([(line, row)], paper_mm=paper_mm, columns=columns, model=model)
            assert got.image.tobytes() == same.tobytes()
            assert_drawn_with_real_glyphs(row)
    assert drawn  # the emoji at least never go out as text
    if mode == "gb18030":  # every character inside FS & ... FS . is a two-byte code of the printer's font
        start = data.find(CHINESE_ON)
        while start != -1:
            end = data.find(CHINESE_OFF, start)
            section = data[start + 2 : end].decode("gb18030")
            assert len(data[start + 2 : end]) == 2 * len(section) or coverage == "gb18030"
            start = data.find(CHINESE_ON, end)


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_a_gb18030_bill_ends_every_price_at_the_paper_edge(paper_mm):
    """Issue 17 item 1: ¥ counted one column, then ￥ (two) swapped in after layout: every price row one column
    too long, its last digit wrapped onto a row of its own."""
    columns = COLUMNS[paper_mm]
    data = render(documents("gb18030", "gb2312", paper_mm)["bill"], paper_mm=paper_mm, mode="gb18030")
    rows, _ = printed_rows(data, font_coverage="gb2312")
    prices = [r for r in rows if "￥" in r.text and r.image is None]
    assert len(prices) >= 4  # the dishes, subtotal, service, total, tax
    for row in prices:
        assert row.text[-1].isdigit()
        assert row.columns * row.size <= columns
    assert any(r.columns == columns for r in prices if r.size == 1)  # right-aligned to the last column
    assert not any(len(r.text.strip()) <= 2 and r.text.strip().isdigit() for r in rows)  # no stray digit row


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_chinese_punctuation_counts_two_columns_and_notes_fill_their_rows(paper_mm):
    """Issue 17 item 2: “ ” … — · counted one column and printed as two made ragged notes."""
    columns = COLUMNS[paper_mm]
    note = "“不要葱”…少放辣——谢谢·‘快’" * 4
    model = TextModel("gb18030")
    assert model.text_width("“”…—·‘’") == 14
    rows, _ = printed_rows(render(Document((Line(note),)), paper_mm=paper_mm, mode="gb18030"), font_coverage="gb2312")
    assert "".join(r.text for r in rows) == note
    assert all(r.columns <= columns for r in rows)
    assert all(r.columns >= columns - 1 for r in rows[:-1])  # full rows: the printer never wraps on its own


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_codepage_writes_the_currency_code_and_draws_what_pc858_lacks(paper_mm):
    """Issue 17 item 3: ¥ printed as `?`, the 备注 label as `??`."""
    docs = documents("codepage", "gb2312", paper_mm)
    model = TextModel("codepage")
    data = render(docs["bill"], paper_mm=paper_mm, mode="codepage")
    laid_out = [row for _, row in expected_rows(docs["bill"], COLUMNS[paper_mm], model)]
    assert any(row.endswith("CNY 1,288.00") for row in laid_out)
    assert any(row.endswith("CNY 1,390.27") for row in laid_out)
    assert not any(ch in row for row in laid_out for ch in "¥￥?")
    printed = [r.text for r in printed_rows(data)[0] if r.image is None]
    assert "CNY 1,390.27" in printed and not any("?" in text for text in printed)  # the total at double size
    ticket = docs["ticket"]
    note_line = next(line for line in ticket.lines if line.text.startswith("备注"))
    rows = layout(note_line, COLUMNS[paper_mm], model)
    assert model.drawn(rows[0])  # the hanzi label is drawn, not sent as ??
    data = render(ticket, paper_mm=paper_mm, mode="codepage")
    assert not any("?" in r.text for r in printed_rows(data)[0])


def test_money_format_by_mode():
    assert money_format(CNY, "codepage")(1200) == "CNY 12.00"
    assert money_format(CNY, "codepage")(-1200) == "CNY -12.00"
    assert money_format(CNY, "gb18030")(1200) == "¥12.00"  # swapped for ￥ (GB2312 A3A4) before layout
    assert money_format(CNY, "raster")(128800) == "¥1,288.00"
    eur = Currency.of("EUR")
    assert money_format(eur, "gb18030", "gb2312")(500) == "EUR 5.00"  # GB2312 has no €
    assert money_format(eur, "gb18030", "gb18030")(500) == "€5.00"  # GBK has it (A2E3)
    assert money_format(eur, "codepage")(500) == "EUR 5.00"
    assert money_format(Currency.of("GBP"), "gb18030")(500) == "£5.00"  # ￡ (A1EA)
    assert money_format(Currency.of("KRW"), "gb18030", "gb18030")(5000) == "KRW 5,000"
    assert money_format(Currency.of("SGD"), "codepage")(500) == "SGD 5.00"


def test_what_each_font_has():
    gb2312, gbk, pc858 = TextModel("gb18030", "gb2312"), TextModel("gb18030", "gb18030"), TextModel("codepage")
    for ch in "宫“”…—·￥‘’αΩЯяéèàüê①":
        assert gb2312.prints(ch) and gb2312.width(ch) == 2, ch
    for ch in "ñçöä½έ¥€語™😀–\ue000":  # no Latin accents beyond pinyin, no accented Greek, no emoji
        assert not gb2312.prints(ch), ch
    for ch in "語€ー㐀":  # GBK's two-byte set and CJK extension A
        assert gbk.prints(ch) and gbk.width(ch) == 2, ch
    for ch in "ñ½😀𠀀":  # four-byte GB18030 outside extension A: in no printer's font
        assert not gbk.prints(ch), ch
    for ch in "ñçöä½€¥£·":
        assert pc858.prints(ch) and pc858.width(ch) == 1, ch
    for ch in "备￥“—😀α":
        assert not pc858.prints(ch), ch
    assert all(m.width(ch) == 1 for m in (gb2312, gbk, pc858) for ch in "Az09 ~")
    assert RASTER_MODEL.width("😀") == 2 and RASTER_MODEL.width("“") == 1 and RASTER_MODEL.width("宫") == 2
    # drawn symbols as wide as the bundled font draws them, never squeezed into a blot; letters one column
    assert [RASTER_MODEL.width(ch) for ch in "❤½™→Жñ²"] == [2, 2, 2, 2, 1, 1, 1]
    assert gb2312.width("½") == 2 and pc858.width("½") == 1  # drawn by the box / printed from PC858
    assert all(m.width(ch) == 0 for m in (gb2312, RASTER_MODEL) for ch in "\ufe0f\u200d\u0301\U0001f3fb")


def test_substitutions_happen_before_layout():
    line = Line("Total", right="¥12.00")
    assert layout(line, 20, TextModel("gb18030")) == ["Total        ￥12.00"]  # 13 + 7 columns (￥ is two)
    assert layout(line, 20, TextModel("codepage")) == ["Total         ¥12.00"]
    assert layout(Line("“Olé” … ’s"), 20, TextModel("codepage")) == ['"Olé" ... \'s']
    assert layout(Line("からあげ・定食"), 20, TextModel("gb18030")) == ["からあげ·定食"]
    assert layout(Line("cafe\u0301"), 20, TextModel("codepage")) == ["café"]  # composed: PC858 has é


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="ab 宫保“”…—·￥¥ñç½έαЯ😀\u0301\ufe0f-", max_size=80),
    width=st.integers(min_value=2, max_value=48),
    mode=st.sampled_from(MODES),
)
def test_wrap_never_makes_a_row_wider_than_asked(text, width, mode):
    model = TextModel(*mode)
    rows = wrap(model.prepare(text), width, model)
    assert all(model.text_width(r) <= width for r in rows)
    assert "".join(rows).replace(" ", "") == model.prepare(text).replace(" ", "")


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet="ab 宫“”…—·￥ñ½έЯ😀🌶\ufe0f", min_size=1, max_size=60), paper_mm=st.sampled_from([58, 80]))
def test_any_text_reads_back_from_a_gb2312_printer_without_junk(text, paper_mm):
    data = render(Document((Line(text, right="¥8.00"), Line(text, size=2))), paper_mm=paper_mm, mode="gb18030")
    rows, _ = printed_rows(data, font_coverage="gb2312")
    assert all(r.columns * r.size <= COLUMNS[paper_mm] for r in rows)
    assert all(r.image is None or r.image.size[0] == DOTS[paper_mm] for r in rows)


def test_parse_refuses_what_a_printer_would_print_as_junk():
    for ch in "😀ñ½έ":
        with pytest.raises(ValueError, match="junk"):
            printed_rows(CHINESE_ON + ch.encode("gb18030") + CHINESE_OFF + b"\n", font_coverage="gb2312")
    with pytest.raises(ValueError, match="junk"):
        printed_rows(CHINESE_ON + "ñ".encode("gb18030") + CHINESE_OFF + b"\n", font_coverage="gb18030")
    rows, _ = printed_rows(CHINESE_ON + "語㐀".encode("gb18030") + CHINESE_OFF + b"\n", font_coverage="gb18030")
    assert rows[0].text == "語㐀" and rows[0].columns == 4
    with pytest.raises(ValueError):  # GB18030 bytes outside FS &: a printer in ASCII prints them as junk
        printed_rows("宫".encode("gb18030") + b"\n")
    with pytest.raises(ValueError, match="start of a line"):
        printed_rows(b"ab" + render(Document((Line("ñ"),)))[2:])  # drawn: GB2312 has no ñ


@pytest.mark.parametrize("mode,coverage", MODES)
def test_emoji_print_as_their_names_and_a_nameless_character_as_the_stand_in(mode, coverage):
    model = TextModel(mode, coverage)
    # skin tones and variation selectors go with the emoji they belong to
    assert layout(Line("不要辣 🌶️🌶️ 👍🏻 ok"), 64, model) == ["不要辣 [hot pepper][hot pepper] [thumbs up sign] ok"]
    assert model.prepare("a\U000f0000b") == f"a{STAND_IN}b"  # a private-use character: no name, no glyph
    assert model.prepare("😀" * 10) == "[grinning face]" * 8 + STAND_IN * 2  # a note of emoji stays short
    if mode != "raster":  # printed from the printer's own font, not drawn
        rows, _ = printed_rows(render(Document((Line("no 🌶️ please"),)), mode=mode, font_coverage=coverage))
        assert [(r.text, r.image) for r in rows] == [("no [hot pepper] please", None)]
    # drawn, the stand-in is the geta mark, never FreeType's empty box
    stand_in = _glyph("\U000f0000", 2, 12, 1, False)
    assert stand_in is not None and stand_in.tobytes() == _glyph(STAND_IN, 2, 12, 1, False).tobytes()


def test_the_character_map_reader_agrees_with_what_the_font_draws():
    """fonts.font_codepoints reads the cmap table itself; FreeType draws glyph 0 (the box) for a code point it
    does not map: the two agree on a sample of scripts."""
    font = cjk_font(24)

    def drawn(ch: str) -> bytes:
        image = Image.new("L", (48, 40), 0)
        ImageDraw.Draw(image).text((4, 4), ch, font=font, fill=255)
        return image.tobytes()

    box = drawn("\U000f0000")
    mapped = font_codepoints(str(cjk_font_path()))
    for ch in "宫保鸡丁ñçéöß½έαЯ€£¥￥™“”…·〓😀☕❤🌶\ue000Ω":
        assert (ord(ch) in mapped) == (drawn(ch) != box), ch


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("mode,coverage", MODES)
def test_the_void_banner_is_one_row(paper_mm, mode, coverage):
    void = documents(mode, coverage, paper_mm)["void"]
    rows = layout(void.lines[0], COLUMNS[paper_mm], TextModel(mode, coverage))
    assert len(rows) == 1 and "作废 VOID" in rows[0], rows
