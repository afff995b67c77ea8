"""Fakes of the systems Tablebox talks to, as real HTTP servers on 127.0.0.1."""
