"""MAgSeg instruction samples: scene as global context + which patch -> the RRLE of that patch."""

from magseg.samples.build import Sample, SampleConfig, scene_samples
from magseg.samples.write import load_samples, write_samples

__all__ = ["Sample", "SampleConfig", "load_samples", "scene_samples", "write_samples"]
