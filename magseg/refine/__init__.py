"""EPOC-style refinement: boundary probability maps and semantic mask -> instances."""

from magseg.refine.boundary import (
    BoundaryModel,
    FusedBoundary,
    GradientBoundary,
    OrientedBoundary,
    SegformerBoundary,
    choose_boundary_model,
    load_boundary_model,
    merge_threshold,
    scene_boundary,
)
from magseg.refine.instances import (
    RefineResult,
    merge_small_fragments,
    merge_weak_borders,
    refine,
    separate_instances,
    size_gaps,
    snap_semantic,
)

__all__ = [
    "BoundaryModel",
    "FusedBoundary",
    "GradientBoundary",
    "OrientedBoundary",
    "RefineResult",
    "SegformerBoundary",
    "choose_boundary_model",
    "load_boundary_model",
    "merge_small_fragments",
    "merge_threshold",
    "merge_weak_borders",
    "refine",
    "scene_boundary",
    "separate_instances",
    "size_gaps",
    "snap_semantic",
]
