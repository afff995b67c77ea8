"""Printer status from the DLE EOT replies, as an enum with named sets (callers ask membership, never bytes)."""

from __future__ import annotations

from enum import StrEnum


class PrinterStatus(StrEnum):
    READY = "ready"
    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"
    NO_ANSWER = "no_answer"      # connected, but the status query got no reply
    UNPLUGGED = "unplugged"      # cannot even connect / open the device


UNABLE_TO_PRINT = frozenset({PrinterStatus.PAPER_OUT, PrinterStatus.COVER_OPEN, PrinterStatus.OFFLINE,
                             PrinterStatus.NO_ANSWER, PrinterStatus.UNPLUGGED})

# What staff read on the console for each status.
REASONS = {
    PrinterStatus.READY: "ready",
    PrinterStatus.PAPER_NEAR_END: "paper low",
    PrinterStatus.PAPER_OUT: "paper out",
    PrinterStatus.COVER_OPEN: "cover open",
    PrinterStatus.OFFLINE: "offline",
    PrinterStatus.NO_ANSWER: "not answering",
    PrinterStatus.UNPLUGGED: "unplugged or switched off",
}


def parse_status(printer: int, offline_cause: int, paper: int) -> PrinterStatus:
    """DLE EOT 1 (printer), 2 (offline cause) and 4 (paper sensor) replies, Epson bit meanings."""
    if offline_cause & 0x20 or paper & 0x60 == 0x60:
        return PrinterStatus.PAPER_OUT
    if offline_cause & 0x04:
        return PrinterStatus.COVER_OPEN
    if printer & 0x08:
        return PrinterStatus.OFFLINE
    if paper & 0x0C == 0x0C:
        return PrinterStatus.PAPER_NEAR_END
    return PrinterStatus.READY
