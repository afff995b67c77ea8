"""The store database: apsw connections, numbered migrations, the group-commit writer, and the store's queries."""
