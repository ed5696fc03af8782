"""Decimal money: parsing limits and rounding to a currency's minor unit (never floats)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units that differ from 2; every other code uses 2.
_MINOR_UNITS = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3,
    "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3,
    "UGX": 0, "UYI": 0, "UYW": 4, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip

MAX_PLACES = 4
# Amounts are stored as integers of 1/10,000 (exact on every database); this bound keeps
# them far inside a 64-bit integer and inside a float's exact range when shown as JSON numbers.
MAX_AMOUNT = Decimal("10000000000")
SCALE = Decimal(10) ** MAX_PLACES


def minor_unit(currency: str) -> int:
    """Decimal places of the currency's minor unit (ISO 4217)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit."""
    quantum = Decimal(1).scaleb(-minor_unit(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def places(amount: Decimal) -> int:
    """Number of decimal places written in `amount` (trailing zeros count: 1.50 has 2)."""
    exponent = amount.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def to_units(amount: Decimal) -> int:
    """Store form: an exact integer of 1/10,000."""
    return int((amount * SCALE).to_integral_value())


def from_units(units: int) -> Decimal:
    return (Decimal(units) / SCALE).normalize() if units else Decimal(0)
