-- Payments reach the ERP, and money can be given back.
-- payment_key: a payment's own stable id (uuid hex), the ERP's idempotency key for it ("payment.recorded:<key>");
-- payments taken before this migration get one too, so each has exactly one.
ALTER TABLE payments ADD COLUMN payment_key TEXT;
UPDATE payments SET payment_key = lower(hex(randomblob(16))) WHERE payment_key IS NULL;
CREATE UNIQUE INDEX payments_by_key ON payments (payment_key);
-- The orders a payment paid for (their client keys, JSON), as they were when it was taken: its refunds name the same
-- orders, so they reach the ERP after the payment even when an order was cancelled since. '[]' for older payments.
ALTER TABLE payments ADD COLUMN order_refs TEXT NOT NULL DEFAULT '[]';

-- Money given back from one payment (never more than it kept, less earlier refunds). The payment row stays as it was
-- taken: the books keep both, and the visit's due is its orders less payments plus refunds.
CREATE TABLE refunds (
    id           INTEGER PRIMARY KEY,
    payment_id   INTEGER NOT NULL REFERENCES payments(id),
    session_id   INTEGER NOT NULL REFERENCES table_sessions(id),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    reason       TEXT NOT NULL,
    refunded_by  TEXT NOT NULL DEFAULT 'staff',
    refund_key   TEXT NOT NULL UNIQUE,        -- the ERP's idempotency key for it ("payment.refunded:<key>")
    created_at   TEXT NOT NULL
);
CREATE INDEX refunds_by_payment ON refunds (payment_id);
CREATE INDEX refunds_by_session ON refunds (session_id);
