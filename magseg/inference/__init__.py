"""Scene inference: the training prompt format per patch, batched generation, decoding and stitching."""

from magseg.format import ModelFormat
from magseg.inference.engine import CountingHFEngine, Engine, generate_counted
from magseg.inference.meta import (
    META_NAME,
    read_model_meta,
    resolve_config,
    write_model_card_meta,
)
from magseg.inference.predict import (
    Predictor,
    ScenePrediction,
    default_max_new_tokens,
    predict_scene,
    stitch_grids,
)
from magseg.inference.requests import patch_origins, scene_requests
from magseg.model.generate import token_counts

__all__ = [
    "META_NAME",
    "CountingHFEngine",
    "Engine",
    "ModelFormat",
    "Predictor",
    "ScenePrediction",
    "default_max_new_tokens",
    "generate_counted",
    "patch_origins",
    "predict_scene",
    "read_model_meta",
    "resolve_config",
    "scene_requests",
    "stitch_grids",
    "token_counts",
    "write_model_card_meta",
]
