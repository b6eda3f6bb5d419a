"""Labelled scenes from disk: a `magseg synth` folder, a naip-fields-like folder, or any images + labels folder."""

from magseg.sources.folder import list_scenes
from magseg.sources.scene import LabelledScene, SceneRef

__all__ = ["LabelledScene", "SceneRef", "list_scenes"]
