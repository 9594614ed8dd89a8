"""IAM policy evaluation, as AWS documents it: explicit Deny wins, then an Allow, else the default deny.

Pure functions over policy documents (JSON text or dicts). One `Ask` is one authorization that AWS
makes for a request: an action on one resource, with the request's condition keys. `decide` weighs
the caller's identity policies, its permissions boundary and session policy, and the resource's own
policy (a bucket, topic, queue or key policy).

Covered: Action/NotAction and Resource/NotResource with `*` and `?` (actions case-insensitive),
Principal/NotPrincipal in resource policies, policy variables (`${aws:userid}`, `${*}`…), and the
String*, Arn*, Numeric*, Date*, Bool, Null and IpAddress condition operators with `IfExists` and
`ForAnyValue:`/`ForAllValues:`. An operator this module does not know makes its statement not apply
(and logs it); AWS would have refused such a policy when it was written.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

Context = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Ask:
    """One action on one resource ("*" when the action has no resource), with the request's condition keys.

    Context keys are lower-case (IAM compares key names without case).
    """

    action: str
    resource: str
    context: Context = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who signed the request and the policies that speak for them.

    `arn` is the session's ARN (arn:aws:sts::…:assumed-role/R/S) or the user's; `principal_arn` is
    the role's (or user's) ARN, the one resource policies name.
    """

    arn: str
    principal_arn: str
    account: str
    identity: tuple[Any, ...] = ()
    boundary: Any = None
    session_policy: Any = None
    user_id: str = ""  # aws:userid: "AROA…:session" for a role session, "AIDA…" for a user


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """A policy attached to the resource. `delegates` (KMS key policies) means only it can grant:
    identity policies count only where it trusts the account."""

    document: Any
    delegates: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str  # in AWS's words, after "is not authorized to perform: A on resource: R"


def decide(
    caller: Caller, ask: Ask, resource_policy: ResourcePolicy | None = None, *, owner: str | None = None
) -> Decision:
    """AWS's evaluation for one principal; `owner` is the account of the resource when it is known.

    In the caller's own account an Allow in either the identity or the resource policy grants; across
    accounts both must. A `delegates` resource policy (KMS) must grant itself or trust the account.
    """
    identity = [s for document in caller.identity for s in statements(document)]
    resource = statements(resource_policy.document) if resource_policy else []
    bounds = {name: statements(doc) for name, doc in _bounds(caller) if doc is not None}
    if _any_applies(identity, "Deny", ask):
        return Decision(False, "with an explicit deny in an identity-based policy")
    if _any_applies(resource, "Deny", ask, caller, "deny"):
        return Decision(False, "with an explicit deny in a resource-based policy")
    for name, found in bounds.items():
        if _any_applies(found, "Deny", ask):
            return Decision(False, f"with an explicit deny in a {name}")
    cross = owner is not None and owner != caller.account
    by_resource = _any_applies(resource, "Allow", ask, caller, "cross" if cross else "allow")
    by_identity = _any_applies(identity, "Allow", ask) and all(_any_applies(f, "Allow", ask) for f in bounds.values())
    delegates = resource_policy is not None and resource_policy.delegates
    if (cross or delegates) and not by_resource:
        if cross or not _any_applies(resource, "Allow", ask, caller, "account"):
            return Decision(False, f"because no resource-based policy allows the {ask.action} action")
    if by_identity or (by_resource and not cross):
        return Decision(True, "")
    if not _any_applies(identity, "Allow", ask):
        return Decision(False, f"because no identity-based policy allows the {ask.action} action")
    name = next(n for n, f in bounds.items() if not _any_applies(f, "Allow", ask))
    return Decision(False, f"because no {name} allows the {ask.action} action")


def _bounds(caller: Caller) -> tuple[tuple[str, Any], ...]:
    return (("permissions boundary", caller.boundary), ("session policy", caller.session_policy))


def statements(document: Any) -> list[dict[str, Any]]:
    """The statements of a policy given as JSON text, bytes or a dict."""
    if document is None or document == "":
        return []
    if isinstance(document, bytes):
        document = document.decode()
    if isinstance(document, str):
        document = json.loads(document)
    found = document.get("Statement", [])
    # moto's CloudFormation leaves a null where a template's Fn::If chose AWS::NoValue (the CDK bootstrap's
    # trust policies do); CloudFormation drops it, so the policy AWS keeps has no such statement.
    return [found] if isinstance(found, dict) else [s for s in found if isinstance(s, dict)]


def _any_applies(
    found: Iterable[dict[str, Any]], effect: str, ask: Ask, caller: Caller | None = None, principal: str = ""
) -> bool:
    for statement in found:
        if statement.get("Effect") != effect:
            continue
        if caller is not None and not _principal_applies(statement, caller, principal):
            continue
        if applies(statement, ask):
            return True
    return False


def applies(statement: Mapping[str, Any], ask: Ask) -> bool:
    """Whether the statement's action, resource and condition all cover the ask (its Effect aside)."""
    if "Action" in statement:
        if not any(_like(a, ask.action, ask.context, fold=True) for a in _listed(statement["Action"])):
            return False
    elif any(_like(a, ask.action, ask.context, fold=True) for a in _listed(statement.get("NotAction"))):
        return False
    if "Resource" in statement:
        if not any(_like(r, ask.resource, ask.context) for r in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_like(r, ask.resource, ask.context) for r in _listed(statement["NotResource"])):
            return False
    return conditions_hold(statement.get("Condition") or {}, ask.context)


def _principal_applies(statement: Mapping[str, Any], caller: Caller, mode: str) -> bool:
    """Whether a resource policy's statement names the caller.

    `mode` "allow": in its own account, an Allow that names the account (its root or its id) only
    delegates to the identity policies, so it must name the caller or "*"; "account": it names the
    account; "cross": from another account, naming the caller's account is enough; "deny": a Deny
    that names the caller, its account or "*" covers the caller.
    """
    root = {f"arn:aws:iam::{caller.account}:root", caller.account}
    people = {"*", caller.arn, caller.principal_arn}
    named = {"allow": people, "account": root, "cross": people | root, "deny": people | root}[mode]
    if "Principal" in statement:
        return bool(_principals(statement["Principal"]) & named)
    if "NotPrincipal" in statement:
        return not _principals(statement["NotPrincipal"]) & (people | root)
    return False


def _principals(principal: Any) -> set[str]:
    if principal == "*":
        return {"*"}
    if isinstance(principal, Mapping):
        return set(_listed(principal.get("AWS")))
    return set()


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _like(pattern: str, value: str, context: Context, *, fold: bool = False) -> bool:
    """IAM's wildcard match (`*` any run, `?` one character), with policy variables filled in."""
    regex = _wild(pattern) if "${" not in pattern else _with_variables(pattern, context)
    return regex is not None and _compiled(regex, fold).fullmatch(value) is not None


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _with_variables(pattern: str, context: Context) -> str | None:
    parts, position = [], 0
    for match in _VARIABLE.finditer(pattern):
        parts.append(_wild(pattern[position : match.start()]))
        name = match[1].strip()
        values = context.get(name.lower(), ())
        if name in ("*", "?", "$"):
            parts.append(re.escape(name))
        elif len(values) == 1:
            parts.append(re.escape(values[0]))
        else:
            return None  # a variable without a (single) value matches nothing
        position = match.end()
    parts.append(_wild(pattern[position:]))
    return "".join(parts)


@lru_cache(maxsize=4096)
def _wild(text: str) -> str:
    return re.escape(text).replace(r"\*", ".*").replace(r"\?", ".")


@lru_cache(maxsize=4096)
def _compiled(regex: str, fold: bool) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def conditions_hold(condition: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    """Every operator and every key in it must hold (AND); any listed value may match (OR)."""
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            if not _holds(operator, key, _listed(wanted), context):
                return False
    return True


def _holds(operator: str, key: str, wanted: Sequence[str], context: Context) -> bool:
    qualifier, _, name = operator.rpartition(":")
    qualifier = qualifier.lower()
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    values = context.get(key.lower())
    if name == "Null":
        return (not values) == (wanted[0].lower() == "true") if wanted else False
    compare = _COMPARE.get(name.replace("Not", "", 1) if name in _NEGATED else name)
    if compare is None:
        log.warning("unknown IAM condition operator %s: the statement does not apply", operator)
        return False
    negated = name in _NEGATED
    if not values:
        return qualifier == "forallvalues" or if_exists or (negated and not qualifier)

    def positive(value: str) -> bool:
        return any(compare(value, w, context) for w in wanted)

    if qualifier == "forallvalues":
        return all(positive(v) != negated for v in values)
    if qualifier == "foranyvalue" or not negated:
        return any(positive(v) != negated for v in values)
    return not any(positive(v) for v in values)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    try:
        when = datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _ordered(parse: Callable[[str], Any], check: Callable[[Any, Any], bool]) -> Callable[[str, str, Context], bool]:
    def compare(value: str, wanted: str, _context: Context) -> bool:
        left, right = parse(value), parse(wanted)
        return left is not None and right is not None and check(left, right)

    return compare


def _arn_like(value: str, wanted: str, context: Context) -> bool:
    """ArnLike/ArnEquals: each of the six colon-separated parts matched on its own."""
    have, want = value.split(":", 5), wanted.split(":", 5)
    return len(have) == len(want) == 6 and all(_like(w, h, context) for w, h in zip(want, have, strict=True))


def _in_network(value: str, wanted: str, _context: Context) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


_COMPARE: dict[str, Callable[[str, str, Context], bool]] = {
    "StringEquals": lambda v, w, c: v == w,
    "StringEqualsIgnoreCase": lambda v, w, c: v.casefold() == w.casefold(),
    "StringLike": lambda v, w, c: _like(w, v, c),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda v, w, c: v.lower() == w.lower(),
    "IpAddress": _in_network,
    "NumericEquals": _ordered(_number, lambda a, b: a == b),
    "NumericLessThan": _ordered(_number, lambda a, b: a < b),
    "NumericLessThanEquals": _ordered(_number, lambda a, b: a <= b),
    "NumericGreaterThan": _ordered(_number, lambda a, b: a > b),
    "NumericGreaterThanEquals": _ordered(_number, lambda a, b: a >= b),
    "DateEquals": _ordered(_date, lambda a, b: a == b),
    "DateLessThan": _ordered(_date, lambda a, b: a < b),
    "DateLessThanEquals": _ordered(_date, lambda a, b: a <= b),
    "DateGreaterThan": _ordered(_date, lambda a, b: a > b),
    "DateGreaterThanEquals": _ordered(_date, lambda a, b: a >= b),
}
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "NotIpAddress",
}
