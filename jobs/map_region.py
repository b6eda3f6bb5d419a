"""Ray job: map a region. `python jobs/map_region.py --config jobs/configs/map_tiny_cpu.yaml [magseg map flags]`.

Under `ray job submit` the driver joins the submitting cluster (RAY_ADDRESS is set for it); every
`magseg map` flag works here and wins over the config file.
"""

import sys
from pathlib import Path

# Under `ray job submit --working-dir .` the submitted checkout's magseg wins over an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magseg.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.argv = ["magseg", "map", *sys.argv[1:]]
    main()
