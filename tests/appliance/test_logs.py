"""Logs: JSON lines when not on a terminal (systemd, pipes), readable lines on a terminal."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from appliance.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_structlog():
    yield
    structlog.reset_defaults()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_off_a_terminal():
    out = io.StringIO()
    configure_logging("auto", "info", out)
    structlog.get_logger("t").info("order.submitted", order_id=7, table="A1", note="少辣")
    structlog.get_logger("t").debug("hidden")
    record = json.loads(out.getvalue().splitlines()[0])
    assert (record["event"], record["order_id"], record["table"], record["level"]) == (
        "order.submitted",
        7,
        "A1",
        "info",
    )
    assert record["note"] == "少辣" and "timestamp" in record
    assert len(out.getvalue().splitlines()) == 1


def test_readable_lines_on_a_terminal():
    out = Tty()
    configure_logging("auto", "info", out)
    structlog.get_logger("t").info("order.submitted", order_id=7)
    line = out.getvalue()
    assert "order.submitted" in line and "order_id" in line and not line.lstrip().startswith("{")
