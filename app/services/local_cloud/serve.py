"""`python -m app local-cloud [--bare] [--port N]`: serve the local cloud until SIGINT or SIGTERM.

Without `--bare` it provisions a sandbox deployment; with `--bare` it serves an empty account
(nothing of ours) plus what AWS itself provides there: JumpStart's content bucket for the region.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from dataclasses import dataclass

from app.services.local_cloud.cloud import LocalCloud
from app.services.local_cloud.jumpstart import (
    JUMPSTART_ACCOUNT,
    ProprietaryModel,
    ReplicaModel,
    companion_models,
    image_uri,
    offered_models,
    owned_by,
    publish,
)
from infra.config import load_config


@dataclass(frozen=True, slots=True)
class BareAccount:
    """What a bare account holds that AWS provides: JumpStart's bucket, its models, the images they name."""

    region: str
    jumpstart_bucket: str
    models: tuple[ReplicaModel, ...]
    images: frozenset[str]
    proprietary: tuple[ProprietaryModel, ...] = ()


def bare(cloud: LocalCloud, models: tuple[ReplicaModel, ...] | None = None) -> BareAccount:
    """Publish what AWS provides in any account: JumpStart's replica with the deploy panel's models.

    The replica belongs to an AWS account, as the real bucket does: the user's account stays empty
    and reads it by name. The models default to the deploy panel's, at the version infra/config.toml
    pins (and its model if the panel does not offer it), with the companion models (×4 upscaler,
    inpainting) and SDXL 1.0 in the Marketplace models' manifest.
    """
    proprietary: tuple[ProprietaryModel, ...] = ()
    if models is None:
        pinned = load_config().model
        models = offered_models(pinned.version)
        if pinned.id not in {m.model_id for m in models}:
            models += (ReplicaModel(pinned.id, pinned.version),)
        models += companion_models(pinned.version)
        proprietary = (ProprietaryModel(),)
    s3 = owned_by(cloud.client("s3"), JUMPSTART_ACCOUNT)
    try:
        bucket = publish(s3, cloud.region, models, proprietary)
    finally:
        s3.close()
    return BareAccount(cloud.region, bucket, models, frozenset({image_uri(cloud.region)}), proprietary)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app local-cloud", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--region", default="us-east-1")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--deployment", default="sandbox", help="name of the deployment to provision")
    what.add_argument(
        "--bare",
        action="store_true",
        help="an empty account: nothing of ours, only what AWS provides (JumpStart's bucket)",
    )
    parser.add_argument(
        "--cold-start",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay before the endpoint's first instance is ready",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    cloud = LocalCloud(port=args.port, region=args.region, cold_start_seconds=args.cold_start).start()
    try:
        if args.bare:
            bare(cloud)
        else:
            cloud.provision(args.deployment)
        print(f"endpoint_url={cloud.endpoint_url}", flush=True)
        print(f"region={cloud.region}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        cloud.stop()
    return 0
