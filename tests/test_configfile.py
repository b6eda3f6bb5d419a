"""read_yaml_mapping: every config loader's errors are one line naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from magseg.configfile import read_yaml_mapping
from magseg.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "no such config file; see here"),
        ("a: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "must be a YAML mapping"),
    ],
)
def test_bad_files(tmp_path: Path, text: str | None, expected: str) -> None:
    path = tmp_path / "c.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError, match=expected) as info:
        read_yaml_mapping(path, "a test config", "see here")
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_reads_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\nb: [x, y]\n")
    assert read_yaml_mapping(path, "a test config", "see here") == {"a": 1, "b": ["x", "y"]}
    path.write_text("")
    assert read_yaml_mapping(path, "a test config", "see here") == {}
