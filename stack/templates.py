"""Configuration files rendered from the package's ``templates/`` folder."""

from __future__ import annotations

from importlib import resources
from string import Template


def render(name: str, **values: object) -> str:
    """The template ``templates/<name>`` with ``$placeholders`` filled in."""
    text = resources.files("stack").joinpath("templates", name).read_text()
    return Template(text).substitute({k: str(v) for k, v in values.items()})


def packaged_text(*parts: str) -> str:
    """A file shipped inside the ``stack`` package, such as ``maven/pom.xml``."""
    return resources.files("stack").joinpath(*parts).read_text()
