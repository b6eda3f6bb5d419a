"""Ray Train glue for the boundary model's plain torch loop: restore its checkpoint, report each new save."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from magseg.train.ray_train import HF_CHECKPOINT, Progress

#: run_boundary's resume file, relative to its output folder; a Ray checkpoint holds the same layout.
STATE = Path(HF_CHECKPOINT) / "state.pt"
STEP = "step.json"


class BoundaryReporter:
    """A run_boundary callback: metrics to Ray at every log, plus the checkpoint once it has been rewritten.

    run_boundary calls back before it saves in the same step, so a save is reported at the next log:
    the reported state is that of the last multiple of ``save_every`` before the current step.
    """

    def __init__(self, out: Path, save_every: int, progress: Progress, start_step: int) -> None:
        self.out, self.save_every, self.progress = out, save_every, progress
        self.last_step = start_step
        self.mtime = (out / STATE).stat().st_mtime_ns if (out / STATE).is_file() else 0
        progress.begin(start_step)

    def __call__(self, step: int, logs: dict[str, float]) -> None:
        import ray.train
        from ray.train import Checkpoint

        if step > self.last_step:  # validation logs repeat the step of the training log
            self.progress.end(step - self.last_step)
            self.last_step = step
        state = self.out / STATE
        mtime = state.stat().st_mtime_ns if state.is_file() else 0
        if mtime == self.mtime:
            ray.train.report(dict(logs))
            return
        self.mtime = mtime
        saved = (step - 1) // self.save_every * self.save_every
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / HF_CHECKPOINT).mkdir()
            shutil.copy2(state, Path(tmp) / STATE)
            (Path(tmp) / STEP).write_text(json.dumps({"step": saved}))
            ray.train.report(dict(logs), checkpoint=Checkpoint.from_directory(tmp))


def train_boundary(config: Any, restored: Path | None, out: Path, progress: Progress) -> int | None:
    """Run run_boundary in ``out`` (seeded with the restored state); returns the step it resumed from."""
    from magseg.train.boundary import run_boundary

    step = None
    if restored is not None and (restored / STATE).is_file():
        (out / HF_CHECKPOINT).mkdir(parents=True, exist_ok=True)
        shutil.copy2(restored / STATE, out / STATE)
        step = int(json.loads((restored / STEP).read_text())["step"])
        print(f"magseg: resuming the boundary model from step {step}")
    reporter = BoundaryReporter(out, config.save_every, progress, step or 0)
    run_boundary(config, output_dir=out, callbacks=[reporter])
    return step
