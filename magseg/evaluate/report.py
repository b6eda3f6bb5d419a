"""The evaluation report as text: the model's per-class table, then ablation and baselines side by side."""

from __future__ import annotations

from typing import Any

from magseg.classes import CLASS_NAMES
from magseg.metrics import ClassScores, format_table


def class_scores(summary: dict[str, Any]) -> dict[str, ClassScores]:
    """The per-class instance entries of a method summary, back as ClassScores (pixel DICE left out)."""
    keys = set(ClassScores.__dataclass_fields__)
    return {
        name: ClassScores(**{k: v for k, v in summary[name].items() if k in keys})
        for name in CLASS_NAMES[1:]
        if name in summary and keys <= set(summary[name])
    }


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = [("model", report), ("model, refinement off", report["refinement_off"])]
    if "compare" in report:
        rows += [
            ("compare", report["compare"]),
            ("compare, refinement off", report["compare"]["refinement_off"]),
        ]
    for name, summary in report["baselines"].items():
        label = name.replace("_", " ")
        rows += [(label, summary), (f"{label}, refinement off", summary["refinement_off"])]
    if "ceiling" in report:  # the truth's own mask at the model's grid, refined alike
        rows.append(("truth at grid (ceiling)", report["ceiling"]))
    return rows


def comparison_table(report: dict[str, Any]) -> str:
    """One line per method: mean DICE (per scene, full resolution), patch DICE (the GRPO reward on
    held-out greedy output: each decoded grid vs the truth grid), the field class's instance metrics, and
    the seam excess (share of pixel pairs across patch seams whose predicted classes differ, minus the
    truth's share on the same seams: the stitching artifacts of independent patches)."""
    header = [
        "method",
        "mean DICE",
        "patch DICE",
        "field mIoU",
        "field med",
        "FNR",
        "FPR",
        "valid",
        "tok/patch",
        "patch/s",
        "seam excess",
    ]
    lines = [header]
    for label, s in _rows(report):
        f = s.get("field", {})
        lines.append([
            label, _num(s["mean_dice"]), _num(s.get("patch_dice")), _num(f.get("mean_iou")), _num(f.get("median_iou")),
            _num(f.get("fnr")), _num(f.get("fpr")),
            _num(s.get("decode_valid_rate"), ".1%"), _num(s.get("tokens_per_patch"), ".1f"),
            _num(s.get("patches_per_s"), ".1f"), _num(s.get("seam_excess"), ".3f"),
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    out = []
    for r in lines:
        out.append(
            "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)])
        )
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in out)


def dice_table(report: dict[str, Any]) -> str:
    """Pixel DICE per class (pooled over scenes), one line per method: a collapse to one class shows."""
    names = list(CLASS_NAMES[1:])
    lines = [["method", *names]]
    for label, s in _rows(report):
        if "refinement off" in label:
            continue
        lines.append([label, *(_num(s.get(n, {}).get("dice")) for n in names)])
    return _align(lines)


def _align(lines: list[list[str]]) -> str:
    """Rows of cells as a fixed-width table: first column left, the rest right, a rule under the header."""
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    out = ["  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)])
           for r in lines]  # fmt: skip
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in out)


def versus_table(model: dict[str, Any], baselines: dict[str, Any]) -> str:
    """Mean DICE, fields mIoU / median / F1 and pixel DICE per class: the model, then each baseline."""
    names = list(CLASS_NAMES[1:])
    lines = [["method", "mean DICE", "field mIoU", "field med", "field F1", *(f"{n} DICE" for n in names)]]
    named = [
        (k.replace("_", " ") + (" (ceiling)" if k == "truth_at_grid" else ""), v)
        for k, v in baselines.items()
    ]
    for label, s in [("model", model), *named]:
        f = s.get("field", {})
        lines.append([label, _num(s["mean_dice"]), _num(f.get("mean_iou")), _num(f.get("median_iou")),
                      _num(f.get("f1")), *(_num(s.get(n, {}).get("dice")) for n in names)])  # fmt: skip
    return _align(lines)


def confidence_lines(report: dict[str, Any]) -> list[str]:
    """The per-field confidence's calibration on these scenes, and where a fit was saved."""
    out: list[str] = []
    conf = report.get("confidence")
    if conf:
        f = conf["fields"]
        ratio = f"{f['error_ratio']:.2f}x" if f["error_ratio"] is not None else "-"
        out += [
            "",
            f"field confidence: ECE {f['ece']:.3f} over {f['n']} fields ({f['matched_share']:.0%} matched at "
            f"IoU >= 0.5); least confident {f['low_share']:.0%}: error {f['low_error']:.0%} vs "
            f"{f['rest_error']:.0%} for the rest ({ratio}); all classes ECE {conf['all']['ece']:.3f}",
        ]
    fit = report.get("confidence_fit")
    if fit:
        out.append(
            f"confidence calibrator fitted on {fit['instances']} instances, saved to {fit['path']} "
            f"(in-sample fields ECE {fit['in_sample_ece_fields']:.3f})"
        )
    return out


def lead_lines(baselines: dict[str, Any]) -> list[str]:
    """The model's fields mIoU lead over each baseline summary, with its 95% interval over resampled scenes."""
    out = []
    for name, summary in baselines.items():
        d = summary.get("fields_miou_model_minus") or {}
        if d.get("difference") is None:
            continue
        ci = d.get("ci95")
        sure = (
            f" (95% interval {ci[0]:+.3f} to {ci[1]:+.3f}, ahead in {d['ahead']:.0%} of scene resamples)"
            if ci
            else " (one scene: no interval)"
        )
        out.append(f"fields mIoU, model minus {name.replace('_', ' ')}: {d['difference']:+.3f}{sure}")
    return out


def _rereads(report: dict[str, Any]) -> str:
    """' + N seam re-reads (share S)' when the model re-read seams, else ''."""
    rr = report.get("rereads") or {}
    return f" + {rr['patches']} seam re-reads (share {rr['share']:g})" if rr.get("share") else ""


def format_report(report: dict[str, Any]) -> str:
    """The whole text report of `magseg eval`."""
    cfg = report["config"]
    crop = f"crop {cfg['crop_size'] or cfg['patch']} px" if cfg["with_crop"] else "no crop"
    measured = "from output ids" if report["tokens_measured"] else "re-tokenised from text"
    bias = report.get("class_bias") or {}
    biased = ", class bias " + " ".join(f"{k} {v:+g}" for k, v in bias.items()) if bias else ""
    head = [
        f"model {report['model']} (p={cfg['patch']}, g={cfg['grid']}, context {cfg['context_size']} px, {crop}{biased})",
        f"data {report['data']}: {report['n_scenes']} scenes, {report['n_patches']} patches"
        f"{_rereads(report)}; boundary: {report['boundary']}",
        f"decode valid {report['decode_valid_rate']:.1%}, {report['tokens_per_patch']:.1f} tokens/patch "
        f"({measured}), {report['patches_per_s']:.2f} patches/s",
        "",
        "model + refinement, per class:",
        format_table(class_scores(report)),
        f"mean DICE {report['mean_dice']:.3f} (per scene, classes present, averaged)",
        *_seam_line(report),
        "",
        "ablation and baselines (same scenes, same refinement and scoring):",
        comparison_table(report),
        *lead_lines(report["baselines"]),
        "",
        "pixel DICE per class (refined, pooled over scenes; '-': class in neither mask):",
        dice_table(report),
    ]
    head.extend(confidence_lines(report))
    if "compare" in report:
        head.append(f"compare = {report['compare']['model']}")
    fitted = report["baselines"].get("pixel_classifier", {}).get("fitted_on")
    if fitted:
        head.append(f"pixel classifier fitted on {fitted}")
    return "\n".join(head)


def layer_seam_line(seams: dict[str, Any] | None) -> str:
    """One line on a region layer's patch seams (the demo's stitching figure), or why there is none."""
    if not seams or seams.get("seam_excess") is None:
        return "seam excess: no scene lies on the region job's patch grid"
    line = (
        f"seam excess {seams['seam_excess']:.3f} across the region job's patch seams (layer "
        f"{seams['seam_disagreement']:.3f} vs truth {seams['seam_truth']:.3f})"
    )
    if seams.get("cell_excess") is not None:
        line += f"; {seams['cell_excess']:.3f} across the cell lines inside patches"
    return line


def _seam_line(report: dict[str, Any]) -> list[str]:
    """The patch seams before and after refinement (a layer is cut from the refined mask)."""
    if report.get("seam_excess") is None or report.get("seam_excess_refined") is None:
        return []
    line = (
        f"seam excess {report['seam_excess']:.3f} stitched, {report['seam_excess_refined']:.3f} refined "
        "(disagreement across patch seams beyond the truth's)"
    )
    if report.get("cell_excess") is not None and report.get("cell_excess_refined") is not None:
        line += (
            f"; on the cell lines inside patches {report['cell_excess']:.3f} / "
            f"{report['cell_excess_refined']:.3f}"
        )
    return [line]
