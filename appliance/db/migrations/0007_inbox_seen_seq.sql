-- The relay link asks for the last sequence number it applied (the next poll's after=) and whether a re-delivered
-- message's seq was already applied; without this index both would scan every message the relay ever brought.
CREATE INDEX inbox_seen_seq ON inbox_seen (source, seq);
