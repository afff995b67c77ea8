"""The public relay: phones off the store Wi-Fi (and a WeChat Mini Program) order through it; the box never
opens a port. `app.py` is the relay service, `storage.py` its database, `signing.py` the request signatures
both sides use; the box side lives in `sync/adapters/relay.py` and `sync/relay_link.py`."""
