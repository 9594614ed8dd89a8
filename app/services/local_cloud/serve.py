"""`python -m app local-cloud [--port N]`: serve the local cloud until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from app.services.local_cloud.cloud import LocalCloud


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app local-cloud", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--deployment", default="sandbox", help="name of the deployment to provision")
    parser.add_argument("--cold-start", type=float, default=0.0, metavar="SECONDS",
                        help="delay before the endpoint's first instance is ready")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    cloud = LocalCloud(port=args.port, region=args.region, cold_start_seconds=args.cold_start).start()
    try:
        cloud.provision(args.deployment)
        print(f"endpoint_url={cloud.endpoint_url}", flush=True)
        print(f"region={cloud.region}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        cloud.stop()
    return 0
