"""Local cloud figures: start-up, provisioning, sandbox render time, and submit-to-notification latency.

    .venv/bin/python bench/local_cloud.py [--jobs 20]

Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from app.services.local_cloud import LocalCloud, SandboxEngine  # noqa: E402
from contract import GenerationRequest  # noqa: E402


def emit(name: str, **figures: object) -> None:
    print(json.dumps({"bench": "local_cloud", "name": name, **figures}), flush=True)


def summary(times: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(times) * 1000, 2), "max_ms": round(max(times) * 1000, 2)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()

    engine = SandboxEngine()
    for size in (64, 512, 1024):
        request = GenerationRequest(prompt="a lighthouse at dusk", width=size, height=size, seed=1)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            engine.render(request)
            times.append(time.perf_counter() - start)
        emit(f"sandbox_render_{size}", **summary(times))

    start = time.perf_counter()
    cloud = LocalCloud().start()
    emit("start", ms=round((time.perf_counter() - start) * 1000, 2))
    try:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            cloud.reset()
            deployment = cloud.provision("bench", lambdas=False)
            times.append(time.perf_counter() - start)
        emit("reset_and_provision", **summary(times))

        arrived: dict[str, float] = {}
        done = threading.Condition()

        def handler(event, context):
            message = orjson.loads(event["Records"][0]["Sns"]["Message"])
            with done:
                arrived[message["inferenceId"]] = time.perf_counter()
                done.notify_all()

        cloud.register_handler(deployment.success_topic_arn, handler)
        runtime, s3 = cloud.client("sagemaker-runtime"), cloud.client("s3")
        body = orjson.dumps({"prompt": "a lighthouse", "width": 512, "height": 512, "seed": 1})
        latencies = []
        for index in range(args.jobs):
            start = time.perf_counter()
            s3.put_object(Bucket=deployment.bucket, Key=f"requests/bench-{index}.json", Body=body)
            inference_id = runtime.invoke_endpoint_async(
                EndpointName=deployment.endpoint_name,
                InputLocation=f"s3://{deployment.bucket}/requests/bench-{index}.json",
                ContentType="application/json",
            )["InferenceId"]
            with done:
                done.wait_for(lambda inference_id=inference_id: inference_id in arrived, timeout=60)
            latencies.append(arrived[inference_id] - start)
        emit("submit_to_notification_512", jobs=args.jobs, **summary(latencies))
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
