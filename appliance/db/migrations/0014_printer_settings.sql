-- Issue 17: per-printer settings and the hand-over a console shows.
--  fallback_after_seconds: how long a printer stays faulty before its tickets go to its fallback (was 60 s for all).
--  large_print: dishes (x3) and notes (x2) larger still, for a kitchen read from a distance (the table is x4 always).
--  font_coverage: which characters the printer's own Chinese font has in gb18030 mode: 'gb2312' (most printers:
--    GB2312's hanzi, kana, Greek, Cyrillic, full-width forms) or 'gb18030' (a printer with the whole GB18030 font).
--    A character outside it is drawn by the box instead (see printers/render.py).
ALTER TABLE printers ADD COLUMN fallback_after_seconds INTEGER NOT NULL DEFAULT 60
    CHECK (fallback_after_seconds BETWEEN 5 AND 3600);
ALTER TABLE printers ADD COLUMN large_print INTEGER NOT NULL DEFAULT 0;
ALTER TABLE printers ADD COLUMN font_coverage TEXT NOT NULL DEFAULT 'gb2312'
    CHECK (font_coverage IN ('gb2312', 'gb18030'));
-- Written by the print worker when it hands a faulty printer's tickets to its fallback, cleared when the printer
-- prints again: "tickets for kitchen going to spare since 12:01".
ALTER TABLE printer_status ADD COLUMN fallback_to TEXT;
ALTER TABLE printer_status ADD COLUMN fallback_since TEXT;
