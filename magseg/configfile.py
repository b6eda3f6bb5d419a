"""Read a YAML config file into a mapping, with one-line errors for a missing, unparsable or non-mapping file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from magseg.errors import InputError

__all__ = ["read_yaml_mapping"]


def read_yaml_mapping(path: str | os.PathLike[str], what: str, hint: str) -> dict[str, Any]:
    """The mapping a YAML file holds; ``what`` names the config in errors, ``hint`` says where to look."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: no such config file; {hint}")
    try:
        values = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{file}: not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
    if not isinstance(values, dict):
        raise InputError(f"{file}: {what} must be a YAML mapping")
    return values
