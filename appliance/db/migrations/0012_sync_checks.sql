-- `tablebox sync check`: the last checklist run against each sync target (shown on the console's sync screen), and
-- a check the console asked for, which tablebox-syncd runs (the console has no network and no ERP keys).
-- checks: JSON [{"name", "state" ("ok" | "warn" | "fail"), "detail", "fix"}], in the order the adapter gave them;
-- outcome: the worst state among them. One row per target, replaced by each run.
CREATE TABLE IF NOT EXISTS sync_checks (
    target       TEXT PRIMARY KEY,
    ran_at       TEXT,                    -- when the last check finished; NULL: never ran
    outcome      TEXT CHECK (outcome IS NULL OR outcome IN ('ok', 'warn', 'fail')),
    checks       TEXT NOT NULL DEFAULT '[]',
    ran_by       TEXT,                    -- "cli" or "console"
    requested_at TEXT,                    -- the console asked syncd to run it (NULL: nothing asked)
    started_at   TEXT                     -- syncd began the asked-for check (NULL: not yet)
);
