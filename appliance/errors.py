"""One error root for the whole project: every Tablebox exception derives from `TableboxError`.

Each class carries an `exit_code` and a message for people. `tablebox` (appliance.cli) catches the root, prints
`tablebox: <message>` on stderr and exits with the code: an expected failure never shows a traceback.
Exit status 2 is a start refused as configured (settings, store, secret, damaged database, another worker
already running): every systemd unit says `RestartPreventExitStatus=2`, so such a start is not retried forever;
the technician reads the one line in the journal and fixes the cause.

The root itself is defined in `appliance.domain.errors` (the pure layer, which may import nothing of the project)
so that `DomainError` can derive from it; import it from here.

| class | exit | raised when |
|---|---|---|
| `TableboxError` | 1 | (root) a failure with a message for people |
| `ConfigError` (`appliance.settings.SettingsError`) | 2 | a settings file or variable cannot be used |
| `StoreError` (`appliance.store.StoreError`) | 2 | the store cannot be opened or created as asked |
| `StoreMissing` | 2 | no store database in the data folder |
| `StoreDamaged` | 2 | the database is empty, not a store (no `schema_migrations`), fails its check, or cannot be opened |
| `StoreTooNew` | 2 | the store was migrated by a newer release than this one (after a rollback without its backup) |
| `SecretError` | 2 | `store.secret` missing, unreadable, not hex or too short |
| `SecretExposed` | 2 | `store.secret` readable or writable by group or others (the message says `chmod 600 PATH`) |
| `UsageError` | 2 | the command line asks for something that cannot be done as given |
| `DomainError` (`appliance.domain.errors`) | 2 | a rule refused an action |
"""

from __future__ import annotations

from typing import ClassVar

from appliance.domain.errors import DomainError, TableboxError

__all__ = [
    "ConfigError",
    "DomainError",
    "SecretError",
    "SecretExposed",
    "StoreDamaged",
    "StoreError",
    "StoreMissing",
    "TableboxError",
    "UsageError",
]


class ConfigError(TableboxError):
    """The settings cannot be used as they are; the message names the file or variable and why."""

    exit_code: ClassVar[int] = 2


class StoreError(TableboxError, RuntimeError):
    """The store cannot be opened or created as asked; the message says what to do."""

    exit_code: ClassVar[int] = 2


class StoreMissing(StoreError):
    """No store database in the data folder."""


class StoreDamaged(StoreError):
    """The store database is empty, not a Tablebox store, fails `quick_check`/`integrity_check`, or cannot be
    opened at all."""


class StoreTooNew(StoreError):
    """The store's schema is newer than this release knows: a newer release migrated it. Starting would run old
    code on tables it does not understand, so nothing starts until the newer release is back or the store is
    restored from the backup made before the update."""


class SecretError(StoreError):
    """The store secret (`store.secret`, which signs every table's QR code) is missing, unreadable or garbled."""


class SecretExposed(SecretError):
    """The store secret's mode lets group or others read (or write) it: anyone on the machine could forge table
    codes. The message gives the `chmod 600 PATH` to run."""


class UsageError(TableboxError):
    """The command line asks for something that cannot be done as given (a missing choice, a bad file)."""

    exit_code: ClassVar[int] = 2
