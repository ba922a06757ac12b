"""Dead letters: records that could not be accepted, with the reason and the raw bytes.

Nothing accepted is dropped silently: a bad record goes to the dead-letter topic as one of
these, so an operator can see why and replay it once fixed.
"""

import base64
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.identifiers import UtcDatetime

DEAD_LETTER_SCHEMA_VERSION: Final = 1


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = DEAD_LETTER_SCHEMA_VERSION
    stage: str = Field(
        min_length=1, max_length=64, description="who rejected it, e.g. stream.readings"
    )
    kind: str = Field(
        min_length=1, max_length=32, pattern=r"^[a-z_]+$", description="e.g. not_json, wrong_schema"
    )
    reason: str = Field(min_length=1, max_length=2000, description="exactly what was wrong")
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    raw_base64: str = Field(description="the rejected record's bytes, base64 encoded")
    rejected_at: UtcDatetime

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.raw_base64)

    @staticmethod
    def encode_raw(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")


def encode_dead_letter(letter: DeadLetter) -> bytes:
    return letter.model_dump_json().encode()


def decode_dead_letter(raw: bytes) -> DeadLetter:
    return DeadLetter.model_validate_json(raw)
