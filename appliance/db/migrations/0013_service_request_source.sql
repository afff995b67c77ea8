-- Where a waiter call came from: NULL for the table's own sticker (the menu page's button), 'old_sticker' for the
-- page an old sticker opens (its table was re-keyed and the sticker not replaced): staff bring the new code.
ALTER TABLE service_requests ADD COLUMN source TEXT;
