"""`magseg synth` on the command line: a dataset on success; one-line errors, exit 2, nothing written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from magseg.cli import main


def run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["magseg", "synth", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_writes_a_dataset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "ds"
    code = run(
        monkeypatch, "--out", str(out), "--scenes", "2", "--size", "64", "--seed", "9", "--location", "nashik"
    )
    assert code == 0
    assert sorted(p.name for p in (out / "scenes").iterdir()) == ["synth-9-000.tif", "synth-9-001.tif"]
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--size", "48"], "size"),
        (["--size", "100"], "multiple of 16"),
        (["--gsd", "0"], "gsd"),
        (["--gsd", "-0.5"], "gsd"),
        (["--scenes", "0"], "scenes"),
        (["--location", "atlantis"], "karnal"),
        (["--location", "200,10"], "LON,LAT"),
        (["--cloud-fraction", "2"], "cloud"),
    ],
)
def test_bad_input(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    args: list[str],
    needle: str,
) -> None:
    out = tmp_path / "never"
    assert run(monkeypatch, "--out", str(out), *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and needle in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_non_empty_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "x").write_text("x")
    assert run(monkeypatch, "--out", str(tmp_path), "--size", "64") == 2
    assert "--overwrite" in capsys.readouterr().err
