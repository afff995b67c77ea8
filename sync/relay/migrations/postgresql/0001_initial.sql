-- The relay's tables (PostgreSQL): the same as the SQLite ones, in PostgreSQL's types.
CREATE TABLE stores (
    store_id     TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret       TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    last_poll_at DOUBLE PRECISION,
    polling      BOOLEAN NOT NULL DEFAULT FALSE,
    acked_seq    BIGINT NOT NULL DEFAULT 0,
    menu_version BIGINT,
    menu_json    TEXT,
    next_seq     BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE inbox (
    store_id        TEXT NOT NULL REFERENCES stores (store_id),
    seq             BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('order', 'request')),
    idempotency_key TEXT NOT NULL,
    token           TEXT NOT NULL,
    body            TEXT NOT NULL,
    body_hash       TEXT NOT NULL,
    received_at     DOUBLE PRECISION NOT NULL,
    UNIQUE (store_id, seq),
    UNIQUE (store_id, idempotency_key)
);
CREATE INDEX inbox_by_token ON inbox (store_id, token, seq);
CREATE INDEX inbox_by_age ON inbox (received_at);

CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store_id    TEXT NOT NULL REFERENCES stores (store_id),
    event_id    TEXT NOT NULL,
    client_key  TEXT NOT NULL,
    token       TEXT NOT NULL DEFAULT '',
    type        TEXT NOT NULL CHECK (type IN ('accepted', 'refused', 'status')),
    body        TEXT NOT NULL,
    at          TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    UNIQUE (store_id, event_id)
);
CREATE INDEX events_by_key ON events (store_id, client_key, id);
CREATE INDEX events_by_token ON events (store_id, token, id);
CREATE INDEX events_by_age ON events (received_at);

CREATE TABLE nonces (
    store_id TEXT NOT NULL,
    nonce    TEXT NOT NULL,
    ts       BIGINT NOT NULL,
    UNIQUE (store_id, nonce)
);
CREATE INDEX nonces_by_ts ON nonces (ts);
