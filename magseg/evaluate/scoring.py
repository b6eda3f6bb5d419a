"""Pool a method's per-scene predictions into one score: instance metrics over all scenes, mean DICE per scene;
and how sure a difference in mean IoU between two methods is (a bootstrap over the scenes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from magseg.classes import CLASS_NAMES
from magseg.metrics import ClassScores, dice_per_class, mean_dice, score_instances, scores_to_json


@dataclass
class ScenePair:
    """One scene's prediction and truth, compact (int32 instances, uint8 classes)."""

    pred_instance: np.ndarray
    pred_class: np.ndarray
    true_instance: np.ndarray
    true_class: np.ndarray


def _mosaic(arrays: list[np.ndarray], height: int, offset_ids: bool) -> np.ndarray:
    """Scenes side by side, padded to one height, one empty column between them (no 8-connection across).

    Instance ids are offset per scene so they stay unique in the mosaic.
    """
    parts: list[np.ndarray] = []
    offset = 0
    for a in arrays:
        block = np.zeros((height, a.shape[1] + 1), dtype=np.int64 if offset_ids else np.uint8)
        if offset_ids:
            block[: a.shape[0], : a.shape[1]] = np.where(a > 0, a.astype(np.int64) + offset, 0)
            offset += int(a.max(initial=0))
        else:
            block[: a.shape[0], : a.shape[1]] = a
        parts.append(block)
    return np.hstack(parts)


def pooled_scores(pairs: list[ScenePair]) -> dict[str, ClassScores]:
    """The seed's instance metrics over all scenes at once (medians over every instance, not per scene)."""
    height = max(p.true_class.shape[0] for p in pairs)
    return score_instances(
        _mosaic([p.pred_instance for p in pairs], height, True),
        _mosaic([p.pred_class for p in pairs], height, False),
        _mosaic([p.true_instance for p in pairs], height, True),
        _mosaic([p.true_class for p in pairs], height, False),
    )


@dataclass
class MethodScores:
    """Collects a method's scenes; ``summary`` gives the per-class metrics and mean DICE."""

    pairs: list[ScenePair] = field(default_factory=list)
    dice: list[float] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros((len(CLASS_NAMES), 3), dtype=np.int64))

    def add(
        self,
        pred_instance: np.ndarray,
        pred_class: np.ndarray,
        true_instance: np.ndarray,
        true_class: np.ndarray,
    ) -> None:
        self.pairs.append(
            ScenePair(
                pred_instance.astype(np.int32, copy=False),
                pred_class.astype(np.uint8, copy=False),
                true_instance.astype(np.int32, copy=False),
                true_class.astype(np.uint8, copy=False),
            )
        )
        # per scene at full resolution over the classes present in either mask, then averaged
        self.dice.append(mean_dice(pred_class, true_class))
        self.counts += dice_per_class(pred_class, true_class, len(CLASS_NAMES))

    def class_dice(self) -> dict[str, float]:
        """Pixel DICE per class pooled over all scenes, for classes in the truth or the prediction."""
        inter, n_pred, n_true = self.counts[:, 0], self.counts[:, 1], self.counts[:, 2]
        return {
            name: float(2 * inter[c] / (n_pred[c] + n_true[c]))
            for c, name in enumerate(CLASS_NAMES)
            if c > 0 and n_pred[c] + n_true[c] > 0
        }

    def summary(self) -> dict[str, Any]:
        """{class name: scores..., "mean_dice": float}: scores_to_json's layout, each class with its pooled
        pixel DICE (key ``dice``), plus the per-scene mean DICE."""
        if not self.pairs:
            raise ValueError("no scene was scored")
        out: dict[str, Any] = dict(scores_to_json(pooled_scores(self.pairs)))
        for name, value in self.class_dice().items():
            out[name] = {**out.get(name, {}), "dice": value}
        out["mean_dice"] = float(np.mean(self.dice))
        return out

    def scene_iou(self, name: str = "field") -> tuple[np.ndarray, np.ndarray]:
        """Per scene: the sum of the class's truth-instance IoUs and their count (the pooled mean IoU is
        their ratio of totals: truth instances never cross scenes)."""
        sums, counts = [], []
        for p in self.pairs:
            s = score_instances(p.pred_instance, p.pred_class, p.true_instance, p.true_class)[name]
            counts.append(s.n_truth)
            sums.append((s.mean_iou or 0.0) * s.n_truth)
        return np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)


#: A method's per-scene IoU sums and truth-instance counts for one class (MethodScores.scene_iou).
SceneIoU = tuple[np.ndarray, np.ndarray]


def iou_difference(a: SceneIoU, b: SceneIoU, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Pooled mean IoU of ``a`` minus ``b`` on the same scenes (each from MethodScores.scene_iou, computed
    once per method however many it is compared with), with a 95% interval from resampling whole scenes (a
    paired bootstrap: the instances of one scene are not independent). ``ahead`` is the share of resamples
    where ``a`` leads; ``difference`` is None when no scene holds the class, ``ci95`` and ``ahead`` when
    fewer than two do."""
    sa, n = a
    sb, nb = b
    if len(sa) != len(sb) or not np.array_equal(n, nb):
        raise ValueError("the two methods were not scored on the same scenes")
    used = n > 0
    out: dict[str, Any] = {"difference": None, "ci95": None, "ahead": None, "scenes": int(used.sum())}
    if not used.any():
        return out
    gap, n = (sa - sb)[used], n[used]
    out["difference"] = float(gap.sum() / n.sum())
    if gap.size < 2:
        return out
    pick = np.random.default_rng(seed).integers(0, gap.size, size=(resamples, gap.size))
    draws = gap[pick].sum(axis=1) / n[pick].sum(axis=1)
    out["ci95"] = [float(v) for v in np.percentile(draws, [2.5, 97.5])]
    out["ahead"] = float(np.mean(draws > 0))
    return out
