-- Dish photos (the same as the SQLite table, in PostgreSQL's types): named by content, kept by the purge.
CREATE TABLE images (
    name      TEXT PRIMARY KEY,
    body      BYTEA NOT NULL,
    stored_at DOUBLE PRECISION NOT NULL
);
