-- What each printer said last, written by the print worker (on change, and as a heartbeat), read by the
-- console, `tablebox printers` and /healthz: nobody else opens a connection to a printer the worker holds.
CREATE TABLE printer_status (
    name       TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    detail     TEXT,
    since      TEXT NOT NULL,        -- when it entered this status
    checked_at TEXT NOT NULL         -- the worker's last look
);
