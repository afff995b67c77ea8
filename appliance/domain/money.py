"""Money as integer minor units: currency exponents, rounding, percentages and formatting."""

from __future__ import annotations

import re
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


def parse_amount(text: str, currency: Currency) -> int:
    """What a person types, in major units ("32.50", "32.5", "32", "1,200"), as exact minor units (3250 fen);
    no floats. Refuses signs, letters, and more decimals than the currency has."""
    cleaned = text.strip().replace(",", "")
    if cleaned.startswith("-"):
        raise DomainError("invalid_amount", "an amount cannot be negative")
    match = re.fullmatch(r"(\d*)(?:\.(\d+))?", cleaned, re.ASCII)
    if match is None or not cleaned:
        raise DomainError(
            "invalid_amount", f"not an amount: type digits like {'32.50' if currency.exponent else '1200'}"
        )
    whole, frac = match.group(1), match.group(2) or ""
    if len(frac) > currency.exponent:
        places = f"at most {currency.exponent} decimal places" if currency.exponent else "no decimals"
        raise DomainError("invalid_amount", f"{currency.code} amounts have {places}")
    if len(whole) > 9:
        raise DomainError("invalid_amount", "that amount is too large")
    return int(whole or "0") * currency.factor + int(frac.ljust(currency.exponent, "0") or "0")
