-- Years of operation (issue 14): pruned rows must give their space back to the SD card. With auto_vacuum = NONE
-- (every store made before this migration) a DELETE only puts pages on SQLite's free list, and the file never
-- shrinks; with INCREMENTAL, `PRAGMA incremental_vacuum` returns them in steps (appliance/db/retention.py).
-- The setting takes effect only through a VACUUM, which cannot run inside this migration's transaction and
-- rewrites the whole file: appliance.db.migrate runs it right after the migrations for a store of up to 16 MB
-- (every new store: a moment), and `tablebox prune` (nightly, tablebox-prune.timer) for a larger one, once it
-- has checked there is room for the rewrite (twice the store). Until then the store works exactly as before.
PRAGMA auto_vacuum = INCREMENTAL;
