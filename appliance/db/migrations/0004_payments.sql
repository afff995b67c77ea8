-- Money taken for a table's visit: several payments may settle one bill (split across methods).
CREATE TABLE payments (
    id           INTEGER PRIMARY KEY,
    session_id   INTEGER NOT NULL REFERENCES table_sessions(id),
    method       TEXT NOT NULL CHECK (method IN ('cash', 'card', 'wechat', 'alipay', 'other')),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    change_minor INTEGER NOT NULL DEFAULT 0 CHECK (change_minor >= 0),
    taken_by     TEXT NOT NULL DEFAULT 'staff',
    created_at   TEXT NOT NULL
);
CREATE INDEX payments_by_session ON payments (session_id);
