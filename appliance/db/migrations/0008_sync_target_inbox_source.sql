-- A target that brings orders in through an inbox of its own (the public relay) gets the outbox rows of those
-- orders only: the store reads that from the target's row, not from its kind. inbox_source is the inbox_seen
-- source its messages are recorded under (appliance.contract.relay.relay_source: 'relay:NAME@RELAY_STORE_ID');
-- NULL (every ERP) means every order. Registered by syncd/serve from the adapter's declared capabilities.
ALTER TABLE sync_targets ADD COLUMN inbox_source TEXT;
UPDATE sync_targets SET inbox_source = 'relay:' || name || '@' || coalesce(json_extract(config, '$.store_id'), '')
 WHERE kind = 'relay';
