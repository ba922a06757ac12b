"""Why a frame was rejected: one exception with a kind for metrics and a reason for people."""

from typing import Final, Literal, get_args

#: What was wrong, from a small fixed set (a metric label):
#: ``too_long``: longer than any HJ 212 frame can be; ``encoding``: not printable ASCII;
#: ``framing``: not ``##`` + 4-digit length + data + 4-hex CRC; ``length_mismatch``: the length
#: field disagrees with the data segment; ``crc_mismatch``: the check code is wrong;
#: ``header``: a missing, repeated or malformed header field; ``cp_grammar``: the
#: ``CP=&&...&&`` part does not parse; ``data_time``: a ``DataTime``/``SampleTime`` is not a time.
ErrorKind = Literal[
    "too_long",
    "encoding",
    "framing",
    "length_mismatch",
    "crc_mismatch",
    "header",
    "cp_grammar",
    "data_time",
]
ERROR_KINDS: Final[tuple[ErrorKind, ...]] = get_args(ErrorKind)


class Hj212Error(ValueError):
    """A frame that could not be decoded: ``kind`` says which check failed, ``reason`` says
    exactly what was wrong (``CRC mismatch: packet says 1C81, computed 1C80``).

    Reasons never quote the password.
    """

    def __init__(self, kind: ErrorKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: ErrorKind = kind
        self.reason = reason

    def __reduce__(self) -> tuple[type["Hj212Error"], tuple[ErrorKind, str]]:
        return type(self), (self.kind, self.reason)

    def __repr__(self) -> str:
        return f"Hj212Error({self.kind!r}, {self.reason!r})"
