"""Service Quotas in the local cloud: ListServiceQuotas, the call preflight makes (moto does not serve it).

The account's applied quotas are a table the tests set (`set`). It starts as an account that may run
two endpoint instances of each GPU type the deploy panel offers, so a deploy in the sandbox goes
through; a test that wants a quota of 0 or 1 sets it. A quota the table does not hold is not listed,
as AWS lists only the quotas a service has. The answer is paged by MaxResults and NextToken, as the
service does (botocore's paginator follows NextToken). Every request has passed the local cloud's IAM
check first, as `servicequotas:ListServiceQuotas`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from app.services.local_cloud.json_wire import answer, page, request_body

TARGET = "ServiceQuotasV20190624.ListServiceQuotas"
#: The GPU types the deploy panel offers, each with the applied quota a fresh sandbox account has.
DEFAULT_ENDPOINT_QUOTAS = {
    f"{instance_type} for endpoint usage": 2.0
    for instance_type in ("ml.g5.xlarge", "ml.g5.2xlarge", "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.p3.2xlarge")
}
_PAGE = 100


def serves(environ: dict[str, Any]) -> bool:
    """Whether a request is the ListServiceQuotas call this emulator answers."""
    return environ.get("HTTP_X_AMZ_TARGET", "") == TARGET


class ServiceQuotas:
    """The applied quotas of the local cloud's account, by service code and quota name."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self._lock = threading.Lock()
        self._applied: dict[str, dict[str, float]] = {}
        self.reset()

    def reset(self) -> None:
        """Back to a fresh sandbox account's quotas."""
        with self._lock:
            self._applied = {"sagemaker": dict(DEFAULT_ENDPOINT_QUOTAS)}

    def set(self, service_code: str, name: str, value: float | None) -> None:
        """Apply `value` to the quota `name` (None removes it: the service then lists no such quota)."""
        with self._lock:
            quotas = self._applied.setdefault(service_code, {})
            if value is None:
                quotas.pop(name, None)
            else:
                quotas[name] = float(value)

    def listed(self, service_code: str) -> list[dict[str, Any]]:
        with self._lock:
            quotas = sorted(self._applied.get(service_code, {}).items())
        return [self._quota(service_code, n, name, value) for n, (name, value) in enumerate(quotas, 1)]

    def _quota(self, service_code: str, number: int, name: str, value: float) -> dict[str, Any]:
        code = f"L-{number:08X}"
        return {
            "ServiceCode": service_code,
            "ServiceName": "Amazon SageMaker" if service_code == "sagemaker" else service_code,
            "QuotaArn": f"arn:aws:servicequotas:{self.region}:{self.account_id}:{service_code}/{code}",
            "QuotaCode": code,
            "QuotaName": name,
            "Value": value,
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        body = request_body(environ)
        service_code = body.get("ServiceCode")
        if not isinstance(service_code, str) or not service_code:
            error = {"__type": "ValidationException", "message": "ServiceCode is required"}
            return answer(start_response, "400 Bad Request", error, [("x-amzn-ErrorType", "ValidationException")])
        quotas, next_token = page(self.listed(service_code), body, _PAGE)
        reply: dict[str, Any] = {"Quotas": quotas}
        if next_token:
            reply["NextToken"] = next_token
        return answer(start_response, "200 OK", reply)
