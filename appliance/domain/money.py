"""Money as integer minor units: currency exponents, rounding, percentages and formatting."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from appliance.domain.errors import DomainError

# ISO 4217 minor-unit exponents for the currencies a store may use.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "HKD": 2,
    "MOP": 2,
    "TWD": 2,
    "JPY": 0,
    "KRW": 0,
    "SGD": 2,
    "MYR": 2,
    "THB": 2,
    "VND": 0,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
}

CURRENCY_SYMBOLS: dict[str, str] = {
    "CNY": "¥",
    "JPY": "¥",
    "HKD": "HK$",
    "TWD": "NT$",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "KRW": "₩",
}

BASIS_POINTS = 10_000  # 100 % in basis points


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int

    @classmethod
    def of(cls, code: str) -> Currency:
        try:
            return cls(code, CURRENCY_EXPONENTS[code])
        except KeyError:
            raise DomainError("unknown_currency", f"unknown currency {code!r}", currency=code) from None

    @property
    def factor(self) -> int:
        return int(10**self.exponent)


def div_round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounded half away from zero (the rule shops and tax offices use)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return sign * q


def percent_of(amount_minor: int, rate_bp: int) -> int:
    """`rate_bp` basis points of an amount, rounded half up to the minor unit."""
    return div_round_half_up(amount_minor * rate_bp, BASIS_POINTS)


def included_tax(gross_minor: int, rate_bp: int) -> int:
    """The tax contained in a tax-inclusive amount: gross * rate / (1 + rate)."""
    if rate_bp == 0:
        return 0
    return div_round_half_up(gross_minor * rate_bp, BASIS_POINTS + rate_bp)


def format_money(amount_minor: int, currency: Currency, symbol: bool = True) -> str:
    """`¥38.00` for 3800 fen, `¥1,200` for 1200 yen."""
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), currency.factor)
    text = f"{whole:,}"
    if currency.exponent:
        text += f".{frac:0{currency.exponent}d}"
    prefix = CURRENCY_SYMBOLS.get(currency.code, currency.code + " ") if symbol else ""
    return f"{sign}{prefix}{text}"


# What people write next to an amount, by currency (read case-insensitively, before or after the number). The
# store's own marks are read; another currency's mark is refused, never ignored (¥12 typed in a dollar store).
CURRENCY_MARKS: dict[str, tuple[str, ...]] = {
    "CNY": ("¥", "RMB", "YUAN", "元", "块"),
    "HKD": ("HK$", "$", "元"),
    "MOP": ("MOP$", "元"),
    "TWD": ("NT$", "$", "元"),
    "JPY": ("¥", "円"),
    "KRW": ("₩", "원"),
    "SGD": ("S$", "$"),
    "MYR": ("RM",),
    "THB": ("฿",),
    "VND": ("₫",),
    "USD": ("US$", "$"),
    "EUR": ("€",),
    "GBP": ("£",),
    "AUD": ("A$", "$"),
    "CAD": ("C$", "$"),
    "CHF": ("FR.",),
}
_ALL_MARKS = sorted(
    {m.upper() for marks in CURRENCY_MARKS.values() for m in marks} | set(CURRENCY_EXPONENTS),
    key=len,
    reverse=True,
)
MAX_WHOLE_DIGITS = 9
# 12元5角3分 (yuan, jiao, fen), also with 块 and 毛 as spoken, and 零 ("12元零5分").
_YUAN_JIAO_FEN = re.compile(r"(?:(\d+)\s*[元块])?\s*零?\s*(?:(\d)\s*[角毛])?\s*零?\s*(?:(\d)\s*分)?", re.ASCII)
_GROUPED = re.compile(r"(\d{1,3}(?:,\d{3})+|\d*)(?:\.(\d+))?", re.ASCII)  # 1,234.50 · 12.5 · .5
_DECIMAL_COMMA = re.compile(r"(\d+),(\d+)", re.ASCII)  # 12,5


def _marks_of(currency: Currency) -> set[str]:
    return {m.upper() for m in CURRENCY_MARKS.get(currency.code, ())} | {currency.code}


def _example(currency: Currency) -> str:
    return "32.50" if currency.exponent else "1200"


def _minor(whole: str, frac: str, currency: Currency) -> int:
    """Whole and decimal digits as minor units, or the reason they are not an amount of this currency."""
    if len(frac) > currency.exponent:
        places = f"at most {currency.exponent} decimal places" if currency.exponent else "no decimals"
        raise DomainError("invalid_amount", f"{currency.code} amounts have {places}")
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise DomainError("invalid_amount", "that amount is too large")
    return int(whole or "0") * currency.factor + int(frac.ljust(currency.exponent, "0") or "0")


def _strip_marks(text: str, currency: Currency) -> str:
    """The number without the currency's symbol, code or word on either side; another currency's is refused."""
    ours = _marks_of(currency)
    for at_start in (True, False):
        upper = text.upper()
        for mark in _ALL_MARKS:
            if upper.startswith(mark) if at_start else upper.endswith(mark):
                if mark not in ours:
                    raise DomainError(
                        "invalid_amount",
                        f"{mark} is not this store's money ({currency.code}): type the amount alone, "
                        f"e.g. {_example(currency)}",
                    )
                text = (text[len(mark) :] if at_start else text[: -len(mark)]).strip()
                break
    return text


def _yuan_jiao_fen(text: str, currency: Currency) -> int | None:
    """12元5角 as 1250 fen (CNY only); None when the text is not written in 角 and 分."""
    if currency.code != "CNY" or not re.search("[角毛分]", text):
        return None
    match = _YUAN_JIAO_FEN.fullmatch(text)
    if match is None or not any(match.groups()):
        raise DomainError("invalid_amount", "write yuan, jiao and fen in that order, e.g. 12元5角 or 12.50")
    yuan, jiao, fen = match.group(1) or "", match.group(2) or "0", match.group(3) or "0"
    return _minor(yuan, jiao + fen, currency)


def parse_amount(text: str, currency: Currency) -> int:
    """What a person types, in major units, as exact minor units (no floats), or a DomainError saying why not.

    Read: `32.5`, `32.50`, ` 32 `, `.5`; a decimal comma `12,5` (= 12.50); thousands `1,234.50` and `1,234`;
    the store's symbol, code or word either side (`¥12.50`, `￥12.5`, `12.50元`, `RMB 12`); full-width
    digits and the Chinese full stop an input method types (`１２。５`); for CNY, `12元5角` and `5角3分`.
    Refused: signs, another currency's mark, more decimals than the currency has, `12元5` (角 or 分?), and a
    text with two readings: a comma is read as thousands only when its groups are three digits, as decimals
    only when the currency can have that many, and a text both could read is refused (none can, for the
    currencies here, whose minor units have at most 2 digits)."""
    cleaned = unicodedata.normalize("NFKC", text).replace("。", ".").strip()
    if "-" in cleaned or "\u2212" in cleaned:
        raise DomainError("invalid_amount", "an amount cannot be negative")
    cleaned = _strip_marks(cleaned, currency)
    jiao_fen = _yuan_jiao_fen(cleaned, currency)
    if jiao_fen is not None:
        return jiao_fen
    if re.fullmatch(r"\d+\s*[元块]\s*\d+", cleaned):
        raise DomainError("invalid_amount", "say 角 or 分 after the last digits (12元5角 = 12.50), or type 12.50")
    readings: set[int] = set()
    problems: list[DomainError] = []
    for pattern in (_GROUPED, _DECIMAL_COMMA):
        match = pattern.fullmatch(cleaned)
        if match is None or not cleaned or cleaned == ".":
            continue
        try:
            amount = _minor(match.group(1).replace(",", ""), match.group(2) or "", currency)
        except DomainError as exc:
            problems.append(exc)
            continue
        readings.add(amount)
    if len(readings) == 1:
        return next(iter(readings))
    if len(readings) > 1:
        raise DomainError("invalid_amount", f"{cleaned} could be read two ways: type it without a thousands comma")
    if problems:
        raise problems[-1]
    if re.fullmatch(r"[\d.]+,\d+", cleaned) and "." in cleaned:
        raise DomainError("invalid_amount", "use a dot for the decimals and no dot between thousands: 1234.50")
    if re.fullmatch(r"[\d,.]+", cleaned) and "," in cleaned:
        raise DomainError(
            "invalid_amount", "a comma groups thousands (1,234.50) or marks the decimals (12,5): this is neither"
        )
    raise DomainError("invalid_amount", f"not an amount: type digits like {_example(currency)}")


def changes_by_more_than_half(old_minor: int, new_minor: int) -> bool:
    """A price moving by more than half the old price (any change from nothing): worth a second look."""
    return 2 * abs(new_minor - old_minor) > old_minor
