"""Which kind of worker an operation needs, declared by the operation itself rather than by each caller.

The UI's task runner reads the declaration (`lane_of`); a caller that names a lane still wins.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Lane(enum.Enum):
    """Where an op runs: the pool (local reads, files), the network lane, the one-worker library lane, or long work.

    AWS calls get their own lane so that a slow or offline network never delays the gallery's reads; work that
    takes many minutes (a deploy follows a 20–40-minute pipeline) gets a one-worker lane of its own so that it
    never holds a network or pool worker.
    """

    POOL = "pool"
    NETWORK = "network"
    LIBRARY = "library"
    LONG = "long"


#: Declared lanes by code object, so that a generator (which carries only its code) finds its function's lane.
_DECLARED: dict[Any, Lane] = {}


def lane(which: Lane) -> Callable[[F], F]:
    """Declare the lane of a function or method: `@lane(Lane.LONG)`."""

    def declare(fn: F) -> F:
        _DECLARED[fn.__code__] = which
        return fn

    return declare


def lane_of(op: Any) -> Lane | None:
    """The lane declared by `op` (a function, bound method, functools.partial of one, or a generator it made)."""
    while isinstance(op, functools.partial):
        op = op.func
    if inspect.isgenerator(op):
        return _DECLARED.get(op.gi_code)
    code = getattr(getattr(op, "__func__", op), "__code__", None)
    return _DECLARED.get(code) if code is not None else None
