"""EPOC-style refinement: boundary probability maps and semantic mask -> instances."""

from magseg.refine.boundary import BoundaryModel, GradientBoundary, SegformerBoundary, load_boundary_model
from magseg.refine.instances import RefineResult, merge_small_fragments, refine, snap_semantic

__all__ = [
    "BoundaryModel",
    "GradientBoundary",
    "RefineResult",
    "SegformerBoundary",
    "load_boundary_model",
    "merge_small_fragments",
    "refine",
    "snap_semantic",
]
