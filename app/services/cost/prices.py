"""On-demand SageMaker instance prices: the dated table shipped in resources/, and the user's own prices.

A missing row is never a price of 0: `price_for` raises NoPrice, which says what to set in Settings.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from app.services.errors import UserError

TABLE_FILE = Path("resources") / "prices" / "sagemaker-hosting.json"


class NoPrice(UserError):
    """No price is known for an instance type in a region."""


@dataclass(frozen=True, slots=True)
class Price:
    per_hour: float
    currency: str
    source: str  # "price table of 2025-10-01" or "your price in Settings"

    def of_minutes(self, minutes: float) -> float:
        return self.per_hour * minutes / 60.0


@dataclass(frozen=True, slots=True)
class PriceTable:
    as_of: str
    source: str
    currency: str
    per_hour: Mapping[str, Mapping[str, float]]

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        path = path or _root() / TABLE_FILE
        try:
            data = orjson.loads(path.read_bytes())
            return cls(data["as_of"], data["source"], data["currency"], data["per_hour"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"The price table {path} cannot be read ({exc}).") from None


def override_key(region: str, instance_type: str) -> str:
    """How Settings keys the user's own price: `eu-west-1/ml.g5.xlarge`."""
    return f"{region}/{instance_type}"


def price_for(
    table: PriceTable, region: str, instance_type: str, overrides: Mapping[str, float] | None = None
) -> Price:
    """The user's price for the instance type in the region, else the table's; NoPrice when neither has one."""
    if not instance_type:
        raise NoPrice("No price: the endpoint's instance type is unknown (it could not be read from SageMaker).")
    own = (overrides or {}).get(override_key(region, instance_type))
    if own is not None:
        return Price(float(own), table.currency, "your price in Settings")
    found = table.per_hour.get(region, {}).get(instance_type)
    if found is None:
        raise NoPrice(
            f"No price for {instance_type} in {region}: the price table of {table.as_of} has none.",
            hint="Set its on-demand price per hour in Settings → Cost.",
        )
    return Price(float(found), table.currency, f"price table of {table.as_of}")


def check_price(text: str) -> float:
    """A price per hour the user typed (UserError unless it is a number above 0)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{text!r} is not a price: type the price per hour, e.g. 1.408.") from None
    if not value > 0:
        raise UserError("A price per hour must be more than 0.")
    return value


def _root() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    return Path(frozen) if frozen else Path(__file__).resolve().parents[3]
