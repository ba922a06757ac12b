"""Loading YAML configuration into pydantic models, with every problem named by its place.

Fleets, scenarios and the packaged data tables all go through ``load_model`` so that a bad file
gets the same kind of message: the file, each problem's location, what was wrong and the value.
Dates stay strings until pydantic parses them, so a bad date is reported, not silently taken.
"""

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigFileError(ValueError):
    """A configuration file that cannot be used; the message lists every problem."""


class _NoTimestampLoader(yaml.SafeLoader):
    """A safe loader that leaves dates and times as strings, for pydantic to parse."""


_NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_NoTimestampLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{source}: not valid YAML: {exc}") from exc


def describe(error: ValidationError, source: str, what: str = "file") -> str:
    lines = [f"{source}: {error.error_count()} problem(s) in the {what}"]
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {where}: {problem['msg']} (got {problem['input']!r})")
    return "\n".join(lines)


def load_model(model: type[M], text: str, source: str, what: str = "file") -> M:
    """Parse YAML ``text`` into ``model`` or raise ``ConfigFileError`` listing every problem."""
    data = parse_yaml(text, source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(describe(exc, source, what)) from exc


def load_model_file(model: type[M], path: Path, what: str = "file") -> M:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc.strerror}") from exc
    return load_model(model, text, str(path), what)
