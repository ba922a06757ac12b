"""The one exception the stack raises."""


class StackError(RuntimeError):
    """A stack step failed; the message says what happened and what to do next."""
