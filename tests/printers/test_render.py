"""Ticket bytes: Chinese in FS & ... FS . as GB18030, columns by display width, nothing a diner typed as a command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from printers.document import Document, Line, PrinterTestPage, kitchen_ticket
from printers.parse import printed_rows
from printers.render import chinese_sections, display_width, render, wrap

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "printers"

ORDER = {
    "id": 7,
    "ticket_no": 42,
    "table": "A3",
    "channel": "lan",
    "created_at": "2026-11-21T04:05:00.000000Z",
    "note": "生日\x1b@快乐，请慢一点上菜",
    "lines": [
        {
            "line_no": 1,
            "names": {"zh": "担担面", "en": "Dan dan noodles"},
            "variant_names": None,
            "options": [{"names": {"zh": "微辣", "en": "Mild"}}, {"names": {"zh": "加蛋", "en": "Egg"}}],
            "quantity": 2,
            "note": "不要葱\x1dV\x00",
            "station": "kitchen",
            "status": "active",
        },
        {
            "line_no": 2,
            "names": {"zh": "柠檬茶", "en": "Lemon tea"},
            "variant_names": {"zh": "大杯", "en": "Large"},
            "options": [],
            "quantity": 1,
            "note": "",
            "station": "bar",
            "status": "active",
        },
        {
            "line_no": 3,
            "names": {"zh": "红烧肉（五花）", "en": "Red-braised pork"},
            "variant_names": None,
            "options": [],
            "quantity": 1,
            "note": "",
            "station": "kitchen",
            "status": "voided",
        },
    ],
}


def ticket(**kw):
    return kitchen_ticket(
        ORDER, "kitchen", lang="zh", timezone="Asia/Shanghai", station_names={"kitchen": "厨房 Kitchen"}, **kw
    )


def test_display_width_counts_a_hanzi_as_two_columns():
    assert display_width("担担面 x2") == 9
    assert display_width("（）￥、カ") == 10
    assert wrap("宫保鸡丁宫保鸡丁宫保鸡丁", 10) == ["宫保鸡丁宫", "保鸡丁宫保", "鸡丁"]
    assert all(display_width(r) <= 11 for r in wrap("Kung pao chicken with extra peanuts please", 11))


def test_chinese_goes_through_fs_and_decodes_back():
    data = render(ticket(), paper_mm=80, mode="gb18030")
    sections = chinese_sections(data)
    assert "担担面" in sections and "微辣" in "".join(sections)
    rows, _ = printed_rows(data)
    texts = [r.text for r in rows]
    assert any(t.startswith("2 x 担担面") for t in texts)
    assert any("生日@快乐" in t for t in texts)  # the ESC was stripped, the text kept
    assert "红烧肉" not in "".join(texts)  # a voided line never reaches the kitchen
    assert "柠檬茶" not in "".join(texts)  # another station's line neither


def test_full_width_punctuation_yen_and_kana_never_become_question_marks():
    doc = PrinterTestPage("kitchen", 48).document()
    data = render(doc, mode="gb18030")
    rows, _ = printed_rows(data, font_coverage="gb2312")  # raises on a character a GB2312 font lacks
    assert not any("?" in r.text for r in rows)
    assert "￥48.00".encode("gb18030") not in data  # the digits are ASCII outside the section ...
    assert "￥".encode("gb18030") == b"\xa3\xa4" and b"\xa3\xa4" in data  # ... the yen sign is GB2312's
    joined = "\n".join(r.text for r in rows)
    assert "中文：宫保鸡丁（微辣）" in joined
    # 語 is not in GB2312: that row is drawn by the box; a printer with the whole GB18030 font prints it
    assert [r for r in rows if r.image is not None] and "日本語" not in joined
    full, _ = printed_rows(render(doc, mode="gb18030", font_coverage="gb18030"), font_coverage="gb18030")
    assert "日本語：からあげ·カタカナ" in "\n".join(r.text for r in full)  # ・ sent as GB2312's middle dot A1A4
    assert not [r for r in full if r.image is not None]


def test_diner_text_cannot_inject_printer_commands():
    data = render(ticket(), mode="gb18030")
    _rows, commands = printed_rows(data)  # raises on any control byte the renderer did not put there
    assert commands.count(b"\x1dV\x00") == 1  # the one cut, at the end
    assert commands[0] == b"\x1b@"


@pytest.mark.parametrize("paper_mm,columns", [(58, 32), (80, 48)])
@pytest.mark.parametrize("mode", ["gb18030", "codepage"])
def test_rows_fit_the_paper(paper_mm, columns, mode):
    order = dict(ORDER, table="Terrace table 12 by the window")
    data = render(
        kitchen_ticket(order, "kitchen", lang="en" if mode == "codepage" else "zh", timezone="Asia/Shanghai"),
        paper_mm=paper_mm,
        mode=mode,
    )
    rows, _ = printed_rows(data, font_coverage="gb2312" if mode == "gb18030" else None)
    for row in rows:  # columns as the printer counts them from the bytes (a drawn row is drawn to fit)
        assert row.columns * row.size <= columns, row


def test_the_ticket_says_what_the_kitchen_needs():
    rows, _ = printed_rows(render(ticket(reprint=True), mode="gb18030"))
    big = [r.text for r in rows if r.size == 2]
    assert big[0].strip() == "*** 重印 REPRINT ***"
    assert [(r.text, r.size) for r in rows[1:3]] == [("A3", 4), ("#42", 2)]  # the table at four times the size
    texts = [r.text for r in rows]
    assert any(t.startswith("厨房 Kitchen") and t.endswith("12:05") for t in texts)  # local time, Shanghai
    assert any("微辣 / 加蛋" in t for t in texts)
    staff = printed_rows(
        render(kitchen_ticket(dict(ORDER, channel="staff"), "kitchen", lang="zh", timezone="Asia/Shanghai"))
    )[0]
    assert any("STAFF" in r.text for r in staff)


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("mode", ["gb18030", "codepage"])
def test_golden_bytes(paper_mm, mode):
    """The exact bytes, recorded once and checked by eye on paper; TABLEBOX_UPDATE_GOLDEN=1 records again."""
    doc = Document(
        (
            Line("A3", right="#42", size=2, bold=True),
            Line("厨房 Kitchen", right="12:05"),
            Line(rule=True),
            Line("2 x 担担面 Dan dan noodles", size=2, bold=True),
            Line("  微辣 / 加蛋"),
            Line("¥31.00", align="right"),
        )
    )
    data = render(doc, paper_mm=paper_mm, mode=mode)
    path = GOLDEN / f"ticket-{mode}-{paper_mm}mm.bin"
    if os.environ.get("TABLEBOX_UPDATE_GOLDEN") or not path.exists():
        path.write_bytes(data)
    assert data == path.read_bytes()
