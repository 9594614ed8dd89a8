"""The one exception type for what a designer can cause or fix."""


class UserError(Exception):
    """A problem the user can act on; `str(error)` is written for them, not for a developer.

    `hint` optionally says what to do next ("Run `aws sso login --profile work`").
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} {self.hint}" if self.hint else base
