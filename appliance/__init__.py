"""Tablebox: the store appliance (settings, store database, domain rules, web app, command line)."""

__version__ = "0.1.0"
