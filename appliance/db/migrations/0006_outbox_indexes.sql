-- The console's sync screen (and /healthz) ask per target for the last delivery and the parked rows;
-- without these they would scan every row ever delivered.
CREATE INDEX outbox_delivered ON outbox (target, delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX outbox_parked ON outbox (target, id) WHERE parked_at IS NOT NULL AND delivered_at IS NULL;
