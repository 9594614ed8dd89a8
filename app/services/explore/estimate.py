"""How long a sweep or batch will take and what it will cost, before it is sent.

The time per image is measured on this deployment (its last completed jobs, from sent to done, per
image); until there is one, a stated assumption per GPU is used and said. The cost is instance time
at the instance type's hourly price when one is known; a price that is not known is said, never 0.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.services.errors import UserError
from app.services.models import Job, JobState

#: Seconds per 512×512 image at 30 steps, assumed until this deployment has measured its own.
ASSUMED_SECONDS = {"g4dn": 8.0, "g5": 4.0, "g6": 5.0, "p3": 5.0}
DEFAULT_SECONDS = 8.0
MEASURED_JOBS = 20
#: Above this many images the app asks before it sends (the CLI: unless --yes).
CONFIRM_ABOVE = 50


@dataclass(frozen=True, slots=True)
class Estimate:
    images: int
    seconds_per_image: float
    measured: bool  # from this deployment's own jobs (else the assumption per GPU)
    price_per_hour: float | None  # the instance type's, when known
    instance_type: str = ""
    no_price: str = ""  # why there is no cost figure ("No price for ml.g5.xlarge in …")
    currency: str = "USD"

    @property
    def seconds(self) -> float:
        return self.images * self.seconds_per_image

    @property
    def cost(self) -> float | None:
        """Instance time at its price (the cost service's `sweep_cost`: warm instances, one image per job)."""
        if self.price_per_hour is None:
            return None
        from app.services.cost.report import sweep_cost  # imported when asked: it brings boto3

        return sweep_cost(self.price_per_hour, self.seconds_per_image, self.images)

    def text(self) -> str:
        """ "100 images, about 7 min (4.2 s an image, measured here), about 0.12 USD on ml.g5.xlarge"."""
        basis = "measured here" if self.measured else "assumed: nothing measured on this deployment yet"
        line = f"{self.images} image{'s' if self.images != 1 else ''}, about {_duration(self.seconds)}"
        line += f" ({self.seconds_per_image:.1f} s an image, {basis})"
        if self.cost is None:
            return f"{line}. {self.no_price or 'No price is known for this endpoint.'}"
        return f"{line}, about {self.cost:.2f} {self.currency} of {self.instance_type} time"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def seconds_per_image(jobs: list[Job], instance_type: str = "") -> tuple[float, bool]:
    """The median time per image of the last completed jobs, or the assumption per GPU.

    A job's own time runs from when it was sent, or from when the job before it was done if that was
    later (it waited in the endpoint's queue meanwhile), to when it was done: the last cells of a sweep
    count their own work, not the whole queue ahead of them.
    """
    spans = []
    for job in jobs:
        if job.state != JobState.COMPLETED:
            continue
        try:
            spans.append((_time(job.created_at), _time(job.updated_at), max(1, job.request.num_images_per_prompt)))
        except ValueError:
            continue
    spans.sort(key=lambda span: span[1])
    times, previous_done = [], None
    for sent, done, images in spans[-MEASURED_JOBS:]:
        start = sent if previous_done is None else max(sent, previous_done)
        if done > start:
            times.append((done - start) / images)
        previous_done = done
    if times:
        return statistics.median(times), True
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    return ASSUMED_SECONDS.get(family, DEFAULT_SECONDS), False


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def estimate(
    images: int,
    jobs: list[Job],
    *,
    instance_type: str = "",
    region: str = "",
    prices: Mapping[str, float] | None = None,
    table: Any = None,
) -> Estimate:
    """The estimate for `images` images on a deployment whose recent jobs are `jobs`.

    The price is the user's own (`prices`, as Settings keeps them) or the shipped table's; none is said, never 0.
    """
    from app.services.cost.prices import PriceTable, price_for  # its package brings boto3: not at start-up

    seconds, measured = seconds_per_image(jobs, instance_type)
    try:
        price = price_for(table or PriceTable.load(), region, instance_type, prices)
    except UserError as exc:
        return Estimate(images, seconds, measured, None, instance_type, no_price=str(exc))
    return Estimate(images, seconds, measured, price.per_hour, instance_type, currency=price.currency)
