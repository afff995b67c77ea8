-- The store: settings, menu, tables and sessions, orders, printing, sync.
-- Money columns are integers in the currency's minor unit; times are UTC ISO-8601 text.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                      -- JSON
);

CREATE TABLE menu_meta (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO menu_meta (id, version) VALUES (1, 1);

CREATE TABLE stations (
    key   TEXT PRIMARY KEY,
    names TEXT NOT NULL DEFAULT '{}',
    sort  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE categories (
    id     INTEGER PRIMARY KEY,
    key    TEXT UNIQUE,
    names  TEXT NOT NULL,                    -- JSON {"zh": ..., "en": ...}
    sort   INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE items (
    id              INTEGER PRIMARY KEY,
    key             TEXT UNIQUE,
    category_id     INTEGER NOT NULL REFERENCES categories(id),
    names           TEXT NOT NULL,
    descriptions    TEXT NOT NULL DEFAULT '{}',
    price_minor     INTEGER CHECK (price_minor IS NULL OR price_minor >= 0),  -- NULL when priced by variants
    image           TEXT,
    allergens       TEXT NOT NULL DEFAULT '[]',
    station         TEXT NOT NULL REFERENCES stations(key),
    prep_minutes    INTEGER,
    available_from  TEXT,                    -- local HH:MM, NULL = all day
    available_until TEXT,
    sold_out        INTEGER NOT NULL DEFAULT 0,
    stock           INTEGER CHECK (stock IS NULL OR stock >= 0),              -- NULL = not counted
    hidden          INTEGER NOT NULL DEFAULT 0,
    sort            INTEGER NOT NULL DEFAULT 0,
    erp_code        TEXT,
    removed_at      TEXT                     -- gone from the menu; kept because orders point at it
);
CREATE INDEX items_by_category ON items (category_id, sort);

CREATE TABLE variants (
    id          INTEGER PRIMARY KEY,
    item_id     INTEGER NOT NULL REFERENCES items(id),
    key         TEXT,
    names       TEXT NOT NULL,
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    sort        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (item_id, key)
);

CREATE TABLE option_groups (
    id          INTEGER PRIMARY KEY,
    key         TEXT UNIQUE,
    names       TEXT NOT NULL,
    min_choices INTEGER NOT NULL DEFAULT 0,
    max_choices INTEGER NOT NULL DEFAULT 1,
    CHECK (min_choices >= 0 AND max_choices >= 1 AND min_choices <= max_choices)
);

CREATE TABLE options (
    id                INTEGER PRIMARY KEY,
    group_id          INTEGER NOT NULL REFERENCES option_groups(id),
    key               TEXT,
    names             TEXT NOT NULL,
    price_delta_minor INTEGER NOT NULL DEFAULT 0,
    sold_out          INTEGER NOT NULL DEFAULT 0,
    sort              INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_id, key)
);
CREATE INDEX options_by_group ON options (group_id, sort);

CREATE TABLE item_option_groups (
    item_id  INTEGER NOT NULL REFERENCES items(id),
    group_id INTEGER NOT NULL REFERENCES option_groups(id),
    sort     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, group_id)
) WITHOUT ROWID;

-- Anything a diner sees on the menu bumps the menu version (the ETag); stock counts alone do not.
CREATE TRIGGER menu_v_settings_i AFTER INSERT ON settings BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_settings_u AFTER UPDATE ON settings BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_stations_i AFTER INSERT ON stations BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_categories_i AFTER INSERT ON categories BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_categories_u AFTER UPDATE ON categories BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_categories_d AFTER DELETE ON categories BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_items_i AFTER INSERT ON items BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_items_d AFTER DELETE ON items BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_items_u AFTER UPDATE ON items
WHEN OLD.names IS NOT NEW.names OR OLD.descriptions IS NOT NEW.descriptions
  OR OLD.price_minor IS NOT NEW.price_minor OR OLD.image IS NOT NEW.image
  OR OLD.allergens IS NOT NEW.allergens OR OLD.station IS NOT NEW.station
  OR OLD.prep_minutes IS NOT NEW.prep_minutes OR OLD.available_from IS NOT NEW.available_from
  OR OLD.available_until IS NOT NEW.available_until OR OLD.sold_out IS NOT NEW.sold_out
  OR OLD.hidden IS NOT NEW.hidden OR OLD.sort IS NOT NEW.sort OR OLD.category_id IS NOT NEW.category_id
  OR OLD.removed_at IS NOT NEW.removed_at OR (OLD.stock IS NULL) IS NOT (NEW.stock IS NULL)
BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_variants_i AFTER INSERT ON variants BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_variants_u AFTER UPDATE ON variants BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_variants_d AFTER DELETE ON variants BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_groups_i AFTER INSERT ON option_groups BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_groups_u AFTER UPDATE ON option_groups BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_groups_d AFTER DELETE ON option_groups BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_options_i AFTER INSERT ON options BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_options_u AFTER UPDATE ON options BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_options_d AFTER DELETE ON options BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_links_i AFTER INSERT ON item_option_groups BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_links_d AFTER DELETE ON item_option_groups BEGIN UPDATE menu_meta SET version = version + 1; END;

CREATE TABLE tables (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    area          TEXT NOT NULL DEFAULT '',
    seats         INTEGER,
    token_version INTEGER NOT NULL DEFAULT 1,  -- re-keying bumps it and voids old stickers
    active        INTEGER NOT NULL DEFAULT 1,
    sort          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE table_sessions (
    id                INTEGER PRIMARY KEY,
    table_id          INTEGER NOT NULL REFERENCES tables(id),
    status            TEXT NOT NULL DEFAULT 'open',
    diners            INTEGER,
    opened_at         TEXT NOT NULL,
    opened_by         TEXT NOT NULL,
    bill_requested_at TEXT,
    paid_at           TEXT,
    closed_at         TEXT
);
-- At most one live visit per table; a closed one is history.
CREATE UNIQUE INDEX table_sessions_live ON table_sessions (table_id) WHERE status != 'closed';

CREATE TABLE ticket_counters (
    day  TEXT PRIMARY KEY,                   -- local business day YYYY-MM-DD
    last INTEGER NOT NULL
);

CREATE TABLE orders (
    id                   INTEGER PRIMARY KEY,
    ticket_day           TEXT NOT NULL,
    ticket_no            INTEGER NOT NULL,
    table_id             INTEGER NOT NULL REFERENCES tables(id),
    session_id           INTEGER NOT NULL REFERENCES table_sessions(id),
    channel              TEXT NOT NULL,      -- lan / relay / staff
    client_key           TEXT NOT NULL UNIQUE,
    request_hash         TEXT NOT NULL,
    status               TEXT NOT NULL,
    currency             TEXT NOT NULL,
    subtotal_minor       INTEGER NOT NULL,
    service_charge_minor INTEGER NOT NULL,
    total_minor          INTEGER NOT NULL,
    tax_minor            INTEGER NOT NULL,
    note                 TEXT NOT NULL DEFAULT '',
    lang                 TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (ticket_day, ticket_no)
);
CREATE INDEX orders_by_session ON orders (session_id, id);
CREATE INDEX orders_by_status ON orders (status, id);
CREATE INDEX orders_by_day ON orders (ticket_day);

CREATE TABLE order_lines (
    id               INTEGER PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES orders(id),
    line_no          INTEGER NOT NULL,
    item_id          INTEGER NOT NULL REFERENCES items(id),
    variant_id       INTEGER REFERENCES variants(id),
    item_names       TEXT NOT NULL,          -- frozen at submit, as printed
    variant_names    TEXT,
    options          TEXT NOT NULL DEFAULT '[]',  -- frozen [{id, names, price_delta_minor}]
    quantity         INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    unit_price_minor INTEGER NOT NULL,
    line_total_minor INTEGER NOT NULL,
    note             TEXT NOT NULL DEFAULT '',
    station          TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'active',
    void_reason      TEXT,
    UNIQUE (order_id, line_no)
);

CREATE TABLE order_events (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders(id),
    session_id  INTEGER NOT NULL REFERENCES table_sessions(id),
    line_id     INTEGER REFERENCES order_lines(id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX order_events_by_session ON order_events (session_id, id);
CREATE INDEX order_events_by_order ON order_events (order_id, id);

CREATE TABLE service_requests (
    id         INTEGER PRIMARY KEY,
    table_id   INTEGER NOT NULL REFERENCES tables(id),
    session_id INTEGER REFERENCES table_sessions(id),
    kind       TEXT NOT NULL CHECK (kind IN ('waiter', 'bill')),
    created_at TEXT NOT NULL,
    handled_at TEXT,
    handled_by TEXT
);
CREATE INDEX service_requests_open ON service_requests (table_id, kind) WHERE handled_at IS NULL;

CREATE TABLE printers (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    uri       TEXT NOT NULL,
    paper_mm  INTEGER NOT NULL DEFAULT 80 CHECK (paper_mm IN (58, 80)),
    text_mode TEXT NOT NULL DEFAULT 'gb18030' CHECK (text_mode IN ('codepage', 'gb18030', 'raster')),
    stations  TEXT NOT NULL DEFAULT '[]',
    copies    INTEGER NOT NULL DEFAULT 1,
    cutter    INTEGER NOT NULL DEFAULT 1,
    buzzer    INTEGER NOT NULL DEFAULT 0,
    fallback  TEXT,
    enabled   INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE print_jobs (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER REFERENCES orders(id),
    session_id INTEGER REFERENCES table_sessions(id),
    station    TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL,                -- ticket / void / bill / test / sticker
    ref        TEXT NOT NULL DEFAULT '',     -- what within the order (a voided line id), '' for the ticket
    printer    TEXT,
    state      TEXT NOT NULL DEFAULT 'pending',
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    payload    TEXT,
    created_at TEXT NOT NULL,
    printed_at TEXT
);
-- One ticket per order, station and kind: a retry or replay can never cook a dish twice.
CREATE UNIQUE INDEX print_jobs_once ON print_jobs (order_id, station, kind, ref) WHERE order_id IS NOT NULL;
CREATE INDEX print_jobs_by_state ON print_jobs (state, id);

CREATE TABLE sync_targets (
    name    TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,                   -- erp / relay
    enabled INTEGER NOT NULL DEFAULT 1,
    config  TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    target          TEXT NOT NULL,
    kind            TEXT NOT NULL,           -- order.submitted / order.status / ...
    idempotency_key TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    claimed_by      TEXT,
    claimed_at      TEXT,
    delivered_at    TEXT,
    parked_at       TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (target, idempotency_key)
);
CREATE INDEX outbox_pending ON outbox (target, id) WHERE delivered_at IS NULL AND parked_at IS NULL;

CREATE TABLE inbox_seen (
    source     TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seq        INTEGER,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (source, message_id)
);
