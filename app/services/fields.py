"""What is wrong with a request, in words: light (no AWS client), so the composer can import it at start-up."""

from __future__ import annotations

from contract import LABELS, BudgetError, RequestError


def field_message(error: Exception, *, named: bool = True) -> str:
    """What is wrong with a request, as one sentence without its full stop: "Width (width) is 500; allowed: …".

    `named` adds the field's own name after its label (the CLI's users type it; the composer shows only the label).
    A GPU budget problem names the instance type and what fits.
    """
    if isinstance(error, BudgetError):
        return str(error)
    if not isinstance(error, RequestError):
        return f"The request is not valid: {error}"
    detail = str(error).split(": ", 1)[-1]
    if error.field == "request":
        return f"The request {detail}"
    if error.field not in LABELS:
        return f"{error.field!r} is not a request field: {detail.replace('unknown field; ', '')}"
    return f"{LABELS[error.field]} ({error.field}) {detail}" if named else f"{LABELS[error.field]} {detail}"
