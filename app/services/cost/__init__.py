"""What the deployment costs, live, and the controls that stop it (no Qt)."""

from app.services.cost.controls import (
    KEEP_WARM_MINUTES,
    Applied,
    Control,
    applied,
    end_keep_warm,
    keep_warm,
    set_max_instances,
    stop_now,
    waiting,
)
from app.services.cost.prices import NoPrice, Price, PriceTable, check_price, override_key, price_for
from app.services.cost.report import CostReport, Now, Period, cost_report, expected_cold_start, job_cost, sweep_cost

__all__ = [
    "KEEP_WARM_MINUTES",
    "Applied",
    "Control",
    "CostReport",
    "NoPrice",
    "Now",
    "Period",
    "Price",
    "PriceTable",
    "applied",
    "check_price",
    "cost_report",
    "end_keep_warm",
    "expected_cold_start",
    "job_cost",
    "keep_warm",
    "override_key",
    "price_for",
    "set_max_instances",
    "stop_now",
    "sweep_cost",
    "waiting",
]
