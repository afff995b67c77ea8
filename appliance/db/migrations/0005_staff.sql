-- Staff who use the console, each with a PIN and a role, and the audit trail of what they did.
CREATE TABLE staff (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('manager', 'waiter')),
    pin_hash   TEXT NOT NULL UNIQUE,         -- HMAC of the PIN with the store secret: a PIN names one person
    active     INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    staff_id   INTEGER REFERENCES staff(id),
    staff_name TEXT NOT NULL,                -- kept as it was, even if the person is later removed
    action     TEXT NOT NULL,                -- order.advance / menu.price / table.close / ...
    subject    TEXT NOT NULL DEFAULT '',     -- what it was done to: "order 12", "dish har_gow", "table A5"
    details    TEXT NOT NULL DEFAULT '{}'    -- JSON
);
CREATE INDEX audit_log_by_at ON audit_log (at);
