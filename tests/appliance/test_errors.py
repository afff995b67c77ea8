"""One error root: every exception class of the project derives from TableboxError, so `tablebox` can turn any
expected failure into one line and an exit status (appliance.errors)."""

from __future__ import annotations

import importlib
from pathlib import Path

from appliance.errors import ConfigError, SecretError, StoreDamaged, StoreError, StoreMissing, TableboxError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("appliance", "printers", "sync", "tui")


def project_modules() -> list[str]:
    return [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "__main__.py"
    ]


def test_every_project_exception_derives_from_the_one_root():
    classes = []
    for name in project_modules():
        module = importlib.import_module(name)
        classes += [
            cls
            for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, BaseException) and cls.__module__ == name
        ]
    assert len(classes) >= 17, classes  # DomainError, SettingsError, StoreError, PrinterFault, DeliveryError, ...
    outside = [f"{cls.__module__}.{cls.__qualname__}" for cls in classes if not issubclass(cls, TableboxError)]
    assert outside == []


def test_configuration_errors_exit_2():
    from appliance.db.integrity import DatabaseProblem
    from appliance.domain.errors import DomainError
    from appliance.settings import SettingsError
    from appliance.store import StoreError as StoreErrorAsImported

    assert StoreErrorAsImported is StoreError
    for cls in (
        ConfigError,
        SettingsError,
        StoreError,
        StoreMissing,
        StoreDamaged,
        SecretError,
        DatabaseProblem,
        DomainError,
    ):
        assert cls.exit_code == 2, cls
    assert TableboxError.exit_code == 1
    assert issubclass(SettingsError, ValueError) and issubclass(StoreError, RuntimeError)  # callers catch those
    assert DomainError("sold_out", "sold out, sorry").for_people() == "sold out, sorry"
