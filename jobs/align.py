"""Ray job: vision-tower pre-alignment (one Ray Train worker) before SFT. `python jobs/align.py --config jobs/configs/X.yaml [--workers N]`."""

import sys
from pathlib import Path

# Under `ray job submit --working-dir .` the submitted checkout's magseg wins over an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magseg.train.ray_job import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("align"))
