"""Tests of `magseg eval`: the report's keys and ranges, the ablation, the baselines and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from magseg.classes import CLASS_NAMES
from magseg.cli import SUBCOMMANDS
from magseg.errors import InputError
from magseg.evaluate import format_report, run_eval
from tests.conftest import run_magseg

MAX_NEW = 6
SCORE_KEYS = {"mean_iou", "median_iou", "fnr", "fpr", "n_truth", "n_pred", "precision", "recall", "f1"}


@pytest.fixture(scope="module")
def report(model_dir: Path, synth_folder: Path) -> dict[str, Any]:
    return run_eval(synth_folder, model_dir, compare=model_dir, max_new_tokens=MAX_NEW, batch_size=16)


def check_method(summary: dict[str, Any], n_truth: dict[str, int]) -> None:
    """Per-class scores (as `magseg score --json`) and mean DICE, all in range."""
    for name in CLASS_NAMES[1:]:
        scores = summary[name]
        assert set(scores) - {"dice"} == SCORE_KEYS
        if n_truth[name] > 0:  # pixel DICE, pooled over scenes, for every class in the truth
            assert 0.0 <= scores["dice"] <= 1.0
        assert scores["n_truth"] == n_truth[name]  # every method is scored on the same truth
        for key in ("mean_iou", "median_iou", "fnr", "fpr", "precision", "recall", "f1"):
            assert scores[key] is None or 0.0 <= scores[key] <= 1.0
    assert 0.0 <= summary["mean_dice"] <= 1.0


def test_report_has_every_key_in_range(report: dict[str, Any]) -> None:
    n_truth = {name: report[name]["n_truth"] for name in CLASS_NAMES[1:]}
    assert n_truth["field"] > 10  # synthetic scenes are full of fields
    check_method(report, n_truth)
    check_method(report["refinement_off"], n_truth)
    assert 0.0 <= report["decode_valid_rate"] <= 1.0
    assert 1.0 <= report["tokens_per_patch"] <= MAX_NEW and report["tokens_measured"]
    assert report["patches_per_s"] > 0 and report["n_patches"] == 32 and report["n_scenes"] == 2
    assert report["config"]["context_size"] == 64  # from the model's card
    assert report["confidence"] is None  # no calibrator in this model's folder
    for key in ("seam_excess", "seam_excess_refined", "cell_excess", "cell_excess_refined"):  # share - share
        assert -1.0 <= report[key] <= 1.0
    assert report["rereads"] == {"share": 0.0, "patches": 0}  # this model's card asks for none
    for name in ("field_everywhere", "pixel_classifier"):
        check_method(report["baselines"][name], n_truth)
        check_method(report["baselines"][name]["refinement_off"], n_truth)
    json.dumps(report)  # plain JSON types only


def test_pixel_dice_per_class_is_pooled_over_scenes(report: dict[str, Any], synth_folder: Path) -> None:
    from magseg.sources import list_scenes

    # "field everywhere", refinement off, predicts every pixel field: DICE = 2|F| / (N + |F|), pooled
    truths = [ref.load().labels.semantic for ref in list_scenes(synth_folder)]
    fields = sum(int((t == 1).sum()) for t in truths)
    pixels = sum(t.size for t in truths)
    plain = report["baselines"]["field_everywhere"]["refinement_off"]
    assert plain["field"]["dice"] == pytest.approx(2 * fields / (pixels + fields))
    assert plain["tree"]["dice"] == 0.0  # trees in the truth, none predicted
    assert "pixel DICE per class" in format_report(report)


def test_compare_is_evaluated_identically(report: dict[str, Any]) -> None:
    # the same checkpoint compared with itself: greedy decoding gives the same scores
    other = report["compare"]
    assert other["mean_dice"] == report["mean_dice"]
    assert other["field"] == report["field"] and other["refinement_off"] == report["refinement_off"]
    assert other["decode_valid_rate"] == report["decode_valid_rate"]


def test_baselines_behave(report: dict[str, Any]) -> None:
    fe = report["baselines"]["field_everywhere"]
    # "field" everywhere finds every field before refinement (one huge instance covers them all)
    assert fe["refinement_off"]["field"]["fnr"] == 0.0 and fe["refinement_off"]["field"]["n_pred"] == 2
    # refinement cuts it along image boundaries into many instances
    assert fe["field"]["n_pred"] > fe["refinement_off"]["field"]["n_pred"]
    pc = report["baselines"]["pixel_classifier"]
    assert pc["mean_dice"] > fe["mean_dice"]
    assert "synthetic" in pc["fitted_on"] and "seed 1" in pc["fitted_on"]


def test_the_fields_lead_over_each_baseline_comes_with_an_interval(report: dict[str, Any]) -> None:
    """The model's fields mIoU minus each baseline's is their pooled figures' difference, with a 95% interval
    over the (two) scenes, and the text report says it."""
    text = format_report(report)
    for name, base in [*report["baselines"].items(), ("ceiling", report["ceiling"])]:
        d = base["fields_miou_model_minus"]
        assert d["difference"] == pytest.approx(report["field"]["mean_iou"] - base["field"]["mean_iou"])
        assert d["scenes"] == 2 and -1 <= d["ci95"][0] <= d["ci95"][1] <= 1 and 0 <= d["ahead"] <= 1
        if name != "ceiling":
            assert f"fields mIoU, model minus {name.replace('_', ' ')}: {d['difference']:+.3f}" in text


def test_text_report(report: dict[str, Any]) -> None:
    text = format_report(report)
    for needle in ("mean IoU", "FNR", "mean DICE", "tokens/patch", "patches/s", "refinement off",
                   "field everywhere", "pixel classifier", "compare", " stitched, "):  # fmt: skip
        assert needle in text
    assert f"compare = {report['compare']['model']}" in text


def test_rereads_are_counted_and_reported(model_dir: Path, synth_folder: Path) -> None:
    out = run_eval(synth_folder, model_dir, max_new_tokens=MAX_NEW, batch_size=16, rereads=0.5, max_scenes=1)
    assert out["rereads"]["share"] == 0.5 and 0 <= out["rereads"]["patches"] <= 8  # 16 patches a scene
    assert "seam re-reads (share 0.5)" in format_report(out)
    with pytest.raises(InputError, match="re-read share"):
        run_eval(synth_folder, model_dir, max_new_tokens=MAX_NEW, rereads=-1, max_scenes=1)


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setitem(SUBCOMMANDS, "eval", ("eval", "Evaluate a model on labelled scenes."))
    return run_magseg(monkeypatch, capsys, "eval", *args)


def test_cli_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], model_dir: Path, synth_folder: Path
) -> None:
    args = ["--model", str(model_dir), "--data", str(synth_folder), "--max-scenes", "1"]
    status, out, err = run_cli(monkeypatch, capsys, *args, "--json", "--max-new-tokens", "4", "--grid", "4")
    assert status == 0, err
    result = json.loads(out)  # exactly one JSON object on stdout, progress on stderr
    assert result["n_scenes"] == 1 and result["config"]["grid"] == 4  # the flag overrides the card
    assert {"mean_dice", "decode_valid_rate", "tokens_per_patch", "patches_per_s", "refinement_off",
            "baselines"} <= set(result) and "compare" not in result  # fmt: skip
    assert set(CLASS_NAMES[1:]) <= set(result)
    assert "synth-5-000" in err


@pytest.mark.parametrize(
    "case", ["not_model", "no_data", "empty_data", "bundled_missing", "bad_compare", "no_calibration"]
)
def test_cli_bad_input_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_dir: Path,
    synth_folder: Path,
    case: str,
) -> None:
    (tmp_path / "empty").mkdir()
    args = {
        "not_model": ["--model", str(synth_folder), "--data", str(synth_folder)],
        "no_data": ["--model", str(model_dir), "--data", str(tmp_path / "missing")],
        "empty_data": ["--model", str(model_dir), "--data", str(tmp_path / "empty")],
        "bundled_missing": ["--data", str(synth_folder)],
        "bad_compare": [
            "--model",
            str(model_dir),
            "--compare",
            str(tmp_path / "nope"),
            "--data",
            str(synth_folder),
        ],
        "no_calibration": ["--model", str(model_dir), "--data", str(synth_folder), "--reliability", "r.png"],
    }[case]
    if case == "bundled_missing":
        monkeypatch.setattr("magseg.evaluate.run.BUNDLED_MODEL", tmp_path / "tiny-magseg")
    status, out, err = run_cli(monkeypatch, capsys, *args)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    if case == "bundled_missing":
        assert "train" in err and "--model" in err
    if case == "no_calibration":
        assert "--fit-confidence" in err and not Path("r.png").exists()


def test_run_eval_refuses_bad_numbers(model_dir: Path, synth_folder: Path) -> None:
    with pytest.raises(InputError, match="max-scenes"):
        run_eval(synth_folder, model_dir, max_scenes=0)
    with pytest.raises(InputError, match="batch-size"):
        run_eval(synth_folder, model_dir, batch_size=0)


def test_the_ceiling_is_the_truth_at_the_grid(report: dict[str, Any]) -> None:
    ceiling = report["ceiling"]
    assert "truth_at_grid" not in report["baselines"]
    # the truth coarsened to 8 px cells is nearly right at full resolution, far above any method here
    assert ceiling["refinement_off"]["mean_dice"] > 0.7
    assert (
        ceiling["refinement_off"]["mean_dice"]
        >= report["baselines"]["pixel_classifier"]["refinement_off"]["mean_dice"]
    )
    assert "truth at grid (ceiling)" in format_report(report)


def test_boundary_label_names_fusion_and_merge_threshold() -> None:
    from types import SimpleNamespace

    from magseg.evaluate.run import boundary_label

    assert boundary_label(None, None) == "image fallback"
    asks = SimpleNamespace(fuse_image_fallback=True, merge_below=0.6)
    label = boundary_label(asks, "models/b")  # type: ignore[arg-type]
    assert label.startswith("models/b + image fallback (max)") and "under 0.6 merged" in label
    plain = SimpleNamespace(fuse_image_fallback=False, merge_below=0.0)
    assert boundary_label(plain, "models/b") == "models/b"  # type: ignore[arg-type]
