"""Store-and-forward to the ERP and the relay: the outbox delivery loop, its adapters, and where each target stands."""
