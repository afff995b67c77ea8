"""The litestar web app: the diner API, live order events and health."""
