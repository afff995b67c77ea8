"""Body templates for the generic REST adapter: the JSON an ERP gets, written in the settings file as the body itself
with ${name} placeholders, and nothing that can run.

A template is the JSON body itself, written as a TOML table (or a JSON file): every value is kept as written except
text with ${name} placeholders. A text that is one placeholder alone ("${total_minor}") becomes the value with its
type (a number stays a number, a list a list, nothing null); a placeholder inside other text is written in as text
("Table ${table}"); "$$" is a dollar sign. An object {"$each" = "lines", "$as" = "line", "$do" = {...}} is the list
of $do rendered once per element of that list, the element named by $as. There is no expression, call, filter or
attribute access: a template can only place the values it is given, so a settings file cannot make the box run
anything. Placeholders are found by the standard library's string.Template (with dotted names); the body is written
as JSON by msgspec, so quoting is always right and an exact decimal stays exact.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from appliance.errors import TableboxError


class _Text(string.Template):
    idpattern = r"(?a:[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)"


_WHOLE = re.compile(r"\$(?:\{(" + _Text.idpattern + r")\}|(" + _Text.idpattern + r"))")
_JSON = msgspec.json.Encoder(decimal_format="number")


def encode_body(body: Any) -> bytes:
    """A rendered template as the JSON the ERP gets (UTF-8; a *_number amount as an exact JSON number)."""
    return _JSON.encode(body)


class TemplateError(TableboxError, ValueError):
    """A template that cannot be filled in: a name its message does not offer, a malformed $each; the message says
    which."""


class _Missing(TableboxError):
    """A name the values lack (caught inside this module: a template error, or null for open values)."""


class OpenValues(dict[str, Any]):
    """Values whose set is open (a payment's `extra`: whatever the box put there): a name it lacks is null, not a
    template error."""


def _lookup(values: Mapping[str, Any], dotted: str) -> Any:
    data: Any = values
    for part in dotted.split("."):
        if isinstance(data, OpenValues):
            data = data.get(part)
            continue
        if not isinstance(data, Mapping) or part not in data:
            raise _Missing(dotted)
        data = data[part]
    return data


def _text_of(value: Any, dotted: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, Decimal)):
        return str(value)
    raise TemplateError(f"${{{dotted}}} is a {type(value).__name__}: it can only stand alone, not inside text")


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """The body for `values` (TemplateError names what is wrong: an unknown name, a bad $each)."""
    if isinstance(template, str):
        whole = _WHOLE.fullmatch(template)
        try:
            if whole:
                value = _lookup(values, whole.group(1) or whole.group(2))
                return dict(value) if isinstance(value, OpenValues) else value
            return _Text(template).substitute(_TextValues(values))
        except _Missing as missing:
            raise TemplateError(f"${{{missing.args[0]}}} is not a value this message offers") from None
        except ValueError as exc:
            if isinstance(exc, TemplateError):
                raise
            raise TemplateError(f"{template!r}: {exc} (write $$ for a dollar sign)") from None
    if isinstance(template, Mapping):
        if "$each" in template:
            return _render_each(template, values)
        for key in template:
            if str(key).startswith("$"):
                raise TemplateError(f"{key!r}: keys starting with $ are $each, $as and $do only")
        return {str(key): render(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [render(item, values) for item in template]
    if template is None or isinstance(template, (bool, int, float, Decimal)):
        return template
    raise TemplateError(f"{template!r}: a template holds tables, lists, text, numbers and true/false only")


def _render_each(template: Mapping[str, Any], values: Mapping[str, Any]) -> list[Any]:
    extra = set(template) - {"$each", "$as", "$do"}
    each, name = template.get("$each"), template.get("$as")
    if extra or not isinstance(each, str) or not isinstance(name, str) or "$do" not in template:
        raise TemplateError(
            'a list is written {"$each" = "lines", "$as" = "line", "$do" = {...}} (nothing else in that table)'
        )
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise TemplateError(f"$as = {name!r}: a plain name such as line")
    try:
        items = _lookup(values, each)
    except _Missing:
        raise TemplateError(f"$each = {each!r} is not a list this message offers") from None
    if not isinstance(items, list):
        raise TemplateError(f"$each = {each!r} is not a list")
    return [render(template["$do"], {**values, name: item}) for item in items]


class _TextValues(Mapping[str, str]):
    """What string.Template looks names up in: dotted names reach into objects; values become text."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.found = values

    def __getitem__(self, key: str) -> str:
        return _text_of(_lookup(self.found, key), key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.found)

    def __len__(self) -> int:
        return len(self.found)
