"""Printer configuration that prevents unreadable tickets: a printer whose text mode cannot print the store's
languages is refused as a station's printer or a fallback (the reason and the mode that would work; --force to
insist, and then told what happens), the per-printer fallback delay, large print and font coverage, and
`tablebox doctor` once the store's languages no longer fit a printer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from appliance.cli import main
from appliance.db.connection import open_connection
from appliance.db.printing import load_printers, save_printer
from appliance.db.store_settings import set_store_setting
from appliance.doctor import Mark
from appliance.domain.errors import DomainError
from appliance.domain.printing import (
    FONT_COVERAGES,
    LANGUAGE_LETTERS,
    TEXT_MODES,
    language_key,
    language_misfit,
    mode_prints,
    modes_that_print,
)
from printers.virtual import PrinterState, VirtualPrinter
from printers.worker import PrinterLoop, PrintWorker
from tests.appliance.test_doctor import doctor, printers_said
from tests.printers.test_worker import TICKET_END, place


def add(settings, *args: str) -> int:
    return main(["printers", "add", *args, "--data-dir", str(settings.data_dir)])


def stored(settings, name: str):
    conn = open_connection(settings.db_path)
    try:
        return next((p for p in load_printers(conn) if p.name == name), None)
    finally:
        conn.close()


def set_languages(settings, languages: list[str]) -> None:
    conn = open_connection(settings.db_path)
    try:
        with conn:
            set_store_setting(conn, "languages", languages)
    finally:
        conn.close()


# -- which languages a mode prints (appliance.domain.printing) ------------------------------------------------------


def test_each_mode_prints_the_languages_its_character_set_has():
    def prints(mode: str, coverage: str = "gb2312") -> set[str]:
        return {lang for lang in LANGUAGE_LETTERS if mode_prints(mode, lang, coverage)}

    # CP858: Latin languages; no hanzi, no Cyrillic
    assert {"en", "fr", "de", "es", "pt", "sv"} <= prints("codepage")
    assert not {"zh", "ja", "ru", "el", "vi", "ko"} & prints("codepage")
    # GB2312: simplified Chinese, English, kana, Russian, the pinyin vowels (so Italian), but no ç, ñ, ä
    assert prints("gb18030") == {"en", "id", "ms", "it", "ru", "zh", "ja"}
    # the whole GB18030 font adds traditional hanzi
    assert prints("gb18030", "gb18030") == prints("gb18030") | {"zh-hant"}
    assert prints("raster") == set(LANGUAGE_LETTERS)  # drawn by the box
    assert mode_prints("codepage", "tlh") is None  # a language the table does not know: not judged


@pytest.mark.parametrize(
    "tag,key",
    [("zh", "zh"), ("zh-CN", "zh"), ("zh-Hant", "zh-hant"), ("zh_TW", "zh-hant"), ("pt-BR", "pt"), ("no", "nb")],
)
def test_language_tags_are_read_as_the_table_knows_them(tag, key):
    assert language_key(tag) == key


def test_the_reason_names_the_languages_and_the_modes_that_would_print_them():
    assert language_misfit("codepage", ["zh", "en"]) == (
        "codepage mode cannot print Chinese (zh): its code page (CP858) has Latin letters only; "
        "the store's languages (zh, en) print with --mode gb18030 or --mode raster"
    )
    latin = language_misfit("gb18030", ["en", "fr", "es"])
    assert latin is not None
    assert latin.startswith("gb18030 mode cannot print French (fr), Spanish (es): its Chinese font (GB2312) prints")
    assert latin.endswith("print with --mode codepage or --mode raster")
    traditional = language_misfit("gb18030", ["zh-TW", "en"])
    assert traditional is not None and "--mode gb18030 --font-coverage gb18030" in traditional
    assert language_misfit("gb18030", ["zh-TW"], "gb18030") is None
    assert language_misfit("gb18030", ["zh", "en", "ja"]) is None
    assert modes_that_print(["ko", "en"]) == ("raster",)
    assert all(language_misfit("raster", list(LANGUAGE_LETTERS), c) is None for c in FONT_COVERAGES)
    assert set(modes_that_print(["en"])) == set(TEXT_MODES)


# -- refusals at `tablebox printers add` ------------------------------------------------------------------------------


def test_a_codepage_printer_for_a_chinese_kitchen_is_refused_with_the_mode_that_works(settings, capsys):
    assert add(settings, "spare", "tcp://192.168.1.51", "--mode", "codepage", "--stations", "kitchen") == 2
    err = capsys.readouterr().err
    assert "spare prints the tickets of kitchen, but codepage mode cannot print Chinese (zh)" in err
    assert "print with --mode gb18030 or --mode raster" in err and "--force saves it anyway" in err
    assert stored(settings, "spare") is None  # nothing saved
    # the same printer without stations (a bill printer, say) is no one's ticket printer: accepted
    assert add(settings, "spare", "tcp://192.168.1.51", "--mode", "codepage") == 0
    assert stored(settings, "spare").text_mode == "codepage"


def test_a_codepage_printer_is_refused_as_a_fallback(settings, capsys):
    assert add(settings, "spare", "tcp://192.168.1.51", "--mode", "codepage") == 0
    capsys.readouterr()
    assert add(settings, "kitchen", "virtual://kitchen", "--stations", "kitchen", "--fallback", "spare") == 2
    err = capsys.readouterr().err
    assert "the fallback spare would print the tickets of kitchen, but codepage mode cannot print Chinese" in err
    assert stored(settings, "kitchen").fallback is None  # unchanged
    forced = ["kitchen", "virtual://kitchen", "--stations", "kitchen", "--fallback", "spare", "--force"]
    assert add(settings, *forced) == 0
    out = capsys.readouterr().out
    assert "! what will happen: on spare, each row" in out and "`tablebox printers test spare`" in out
    assert stored(settings, "kitchen").fallback == "spare"
    # and a fallback changed to a mode that cannot print, under the printer that falls back to it
    assert add(settings, "kitchen", "virtual://kitchen", "--stations", "kitchen", "--fallback", "bar") == 0
    capsys.readouterr()
    assert add(settings, "bar", "virtual://bar", "--mode", "codepage") == 2
    assert "bar is the fallback of kitchen, but codepage mode cannot print Chinese (zh)" in capsys.readouterr().err
    assert stored(settings, "bar").text_mode == "gb18030"


def test_force_saves_it_and_says_what_will_happen(settings, capsys):
    assert add(settings, "spare", "tcp://192.168.1.51", "--mode", "codepage", "--stations", "kitchen", "--force") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("! saved anyway (--force): spare prints the tickets of kitchen, but codepage mode")
    assert out[1].startswith("! what will happen: on spare, each row with characters its font lacks is drawn")
    assert "`tablebox printers test spare`" in out[1]
    assert out[2].startswith("printer spare saved")
    assert stored(settings, "spare").text_mode == "codepage"


def test_a_latin_store_takes_a_codepage_printer_and_refuses_the_chinese_font(settings, capsys):
    set_languages(settings, ["fr", "en"])
    assert add(settings, "salle", "tcp://192.168.1.52", "--mode", "codepage", "--stations", "kitchen") == 0
    capsys.readouterr()
    assert add(settings, "cuisine", "tcp://192.168.1.53", "--stations", "kitchen") == 2  # gb18030 by default
    assert "gb18030 mode cannot print French (fr)" in capsys.readouterr().err


def test_a_traditional_chinese_store_needs_the_whole_gb18030_font(settings, capsys):
    set_languages(settings, ["zh-Hant", "en"])
    assert add(settings, "k2", "tcp://192.168.1.54", "--stations", "kitchen") == 2
    assert "--mode gb18030 --font-coverage gb18030" in capsys.readouterr().err
    assert add(settings, "k2", "tcp://192.168.1.54", "--stations", "kitchen", "--font-coverage", "gb18030") == 0
    assert stored(settings, "k2").font_coverage == "gb18030"


def test_fallback_delay_large_print_and_font_coverage_are_stored_and_checked(settings, capsys):
    args = ["k2", "tcp://192.168.1.54", "--stations", "kitchen", "--fallback", "bar"]
    assert add(settings, *args, "--fallback-after", "30", "--large-print", "--font-coverage", "gb18030") == 0
    assert "falls back to bar after 30 s" in capsys.readouterr().out
    printer = stored(settings, "k2")
    assert (printer.fallback_after_seconds, printer.large_print, printer.font_coverage) == (30, True, "gb18030")
    assert add(settings, *args, "--fallback-after", "3") == 2
    assert "the fallback takes over after 5 to 3600 seconds" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        add(settings, *args, "--font-coverage", "big5")
    assert stored(settings, "k2").fallback_after_seconds == 30


def test_save_printer_refuses_with_a_stable_code_and_returns_the_forced_notes(settings):
    conn = open_connection(settings.db_path)
    try:
        with pytest.raises(DomainError) as refused:
            save_printer(conn, "spare", "tcp://h", stations=["kitchen"], text_mode="codepage")
        assert refused.value.code == "printer_language"
        assert save_printer(conn, "spare2", "tcp://h", stations=["kitchen"], text_mode="raster") == []
        notes = save_printer(conn, "spare", "tcp://h", stations=["kitchen"], text_mode="codepage", force=True)
        assert len(notes) == 2 and notes[0].startswith("saved anyway (--force)")
    finally:
        conn.close()


# -- the worker takes each printer's own fallback delay ------------------------------------------------------------


def test_the_fallback_delay_is_the_printers_own_unless_a_test_overrides_it(settings):
    assert add(settings, "kitchen", "virtual://kitchen", "--stations", "kitchen", "--fallback-after", "45") == 0
    printer = stored(settings, "kitchen")
    common = {"resolve_virtual": lambda n: "tcp://127.0.0.1:9", "poll_seconds": 0.1, "fault_retry_seconds": 1}
    stop = threading.Event()
    own = PrinterLoop(settings.db_path, printer, stop, **common)
    override = PrinterLoop(settings.db_path, printer, stop, fallback_after_seconds=0.2, **common)
    assert (own.fallback_after_seconds, override.fallback_after_seconds) == (45, 0.2)
    conn = open_connection(settings.db_path)
    try:
        assert not own.handing_over(conn)  # it has not failed yet (nor been seen to)
    finally:
        conn.close()
    own.link.close()
    override.link.close()


@pytest.mark.parametrize("down_for_minutes,handed_over", [(10, True), (0, False)])
def test_the_delay_counts_from_when_the_printer_was_first_seen_down(settings, down_for_minutes, handed_over):
    """A printer recorded with its cover open for ten minutes (seen while idle) hands the next ticket to its
    fallback at once, though its own delay is 60 s; one just found faulty keeps the ticket, waiting."""
    kitchen, bar = VirtualPrinter("kitchen").start(), VirtualPrinter("bar").start()
    conn = open_connection(settings.db_path)
    try:
        since = (datetime.now(UTC) - timedelta(minutes=down_for_minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with conn:
            for printer in (kitchen, bar):
                conn.execute("UPDATE printers SET uri = ? WHERE name = ?", (printer.uri, printer.name))
            conn.execute("UPDATE printers SET fallback = 'bar', fallback_after_seconds = 60 WHERE name = 'kitchen'")
            conn.execute(
                "INSERT INTO printer_status (name, status, since, checked_at) VALUES ('kitchen', 'cover_open', ?, ?)",
                (since, since),
            )
        kitchen.state = PrinterState.COVER_OPEN
        place(conn)
        with PrintWorker(settings.db_path, poll_seconds=0.01, fault_retry_seconds=0.05):
            if handed_over:
                assert bar.wait_for(lambda b: TICKET_END in b, timeout=10)
            else:  # the worker tried, found the cover open, and kept the ticket for the kitchen
                stop = threading.Event()
                for _ in range(500):
                    if conn.execute("SELECT last_error FROM print_jobs").fetchone()[0]:
                        break
                    stop.wait(0.02)
        printer, last_error = conn.execute("SELECT printer, last_error FROM print_jobs").fetchone()
        recorded = conn.execute("SELECT fallback_to FROM printer_status WHERE name = 'kitchen'").fetchone()
    finally:
        conn.close()
        kitchen.stop()
        bar.stop()
    if handed_over:
        assert (printer, recorded) == ("bar", ("bar",))
    else:
        assert (printer, last_error, recorded) == ("kitchen", "cover open", (None,))
        assert bar.received == b""


# -- the store's languages changed after the printers were added: `tablebox doctor` -------------------------------


def test_doctor_says_when_the_stores_languages_no_longer_fit_a_printer(settings):
    printers_said(settings)
    assert not [c for c in doctor(settings) if c.endswith("languages")]
    set_languages(settings, ["zh", "en", "ko"])  # a Korean menu added: the Chinese font has no hangul
    checks = doctor(settings)
    kitchen = checks["printer kitchen languages"]
    assert kitchen.mark is Mark.WARN
    assert kitchen.detail.startswith("kitchen prints the tickets of kitchen, but gb18030 mode cannot print Korean")
    assert "--mode raster" in kitchen.detail and "tablebox printers add kitchen virtual://kitchen --mode" in kitchen.fix
    assert checks["printer bar languages"].mark is Mark.WARN
