-- The relay's tables (SQLite). Times the relay makes are Unix seconds (REAL); `at` is the box's ISO time.
CREATE TABLE stores (
    store_id     TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret       TEXT NOT NULL,                 -- 64 hex characters: the HMAC key of the box's requests
    created_at   REAL NOT NULL,
    last_poll_at REAL,                          -- when a poll last started or ended
    polling      INTEGER NOT NULL DEFAULT 0,    -- a poll is in progress (counts as online)
    acked_seq    INTEGER NOT NULL DEFAULT 0,    -- the highest `after=` the box sent: everything up to it is applied
    menu_version INTEGER,
    menu_json    TEXT,
    next_seq     INTEGER NOT NULL DEFAULT 1     -- the seq the next inbox message gets (gap-free per store)
);

CREATE TABLE inbox (
    store_id        TEXT NOT NULL REFERENCES stores (store_id),
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('order', 'request')),
    idempotency_key TEXT NOT NULL,              -- the diner's client_key; for requests one the relay made
    token           TEXT NOT NULL,
    body            TEXT NOT NULL,
    body_hash       TEXT NOT NULL,
    received_at     REAL NOT NULL,
    UNIQUE (store_id, seq),
    UNIQUE (store_id, idempotency_key)
);
CREATE INDEX inbox_by_token ON inbox (store_id, token, seq);
CREATE INDEX inbox_by_age ON inbox (received_at);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,            -- arrival order (event streams resume by it)
    store_id    TEXT NOT NULL REFERENCES stores (store_id),
    event_id    TEXT NOT NULL,
    client_key  TEXT NOT NULL,
    token       TEXT NOT NULL DEFAULT '',       -- from the inbox message of client_key; '' for orders taken elsewhere
    type        TEXT NOT NULL CHECK (type IN ('accepted', 'refused', 'status')),
    body        TEXT NOT NULL,                  -- {"order": ..., "error": ...}
    at          TEXT NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE (store_id, event_id)
);
CREATE INDEX events_by_key ON events (store_id, client_key, id);
CREATE INDEX events_by_token ON events (store_id, token, id);
CREATE INDEX events_by_age ON events (received_at);

CREATE TABLE nonces (
    store_id TEXT NOT NULL,
    nonce    TEXT NOT NULL,
    ts       INTEGER NOT NULL,                  -- the signed timestamp
    UNIQUE (store_id, nonce)
);
CREATE INDEX nonces_by_ts ON nonces (ts);
