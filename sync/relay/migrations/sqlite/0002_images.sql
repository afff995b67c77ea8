-- Dish photos the boxes push (PUT /v1/box/images/NAME), served to phones at GET /images/NAME. A photo's name is
-- the first 16 hex digits of its bytes' SHA-256 + ".jpg", so a row never changes and is shared by every store
-- using the same picture; the purge keeps them (small, and a menu may show them again).
CREATE TABLE images (
    name      TEXT PRIMARY KEY,                 -- 0123456789abcdef.jpg
    body      BLOB NOT NULL,                    -- the JPEG as the box sent it (at most 1 MiB)
    stored_at REAL NOT NULL                     -- Unix seconds
);
