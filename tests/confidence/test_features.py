"""Instance features: token confidence, outline and inner boundary strength, area, class."""

from __future__ import annotations

import numpy as np

from magseg.classes import FIELD, TREE
from magseg.confidence import FEATURES, instance_features


def _two_fields() -> tuple[np.ndarray, np.ndarray]:
    instance = np.zeros((20, 20), dtype=np.int32)
    instance[2:10, 2:10] = 1
    instance[12:18, 12:18] = 4
    semantic = np.where(instance > 0, FIELD, 0)
    semantic[instance == 4] = TREE
    return instance, semantic


def test_features_per_instance() -> None:
    instance, semantic = _two_fields()
    conf = np.ones((20, 20), dtype=np.float32)
    conf[2:10, 2:6] = 0.2  # half of field 1 was written unsure
    boundary = np.zeros((20, 20), dtype=np.float32)
    boundary[instance > 0] = 0.1
    boundary[2, 2:10] = 0.9  # a strong edge along field 1's top
    ids, x = instance_features(instance, semantic, conf, boundary, gsd=0.5)
    assert ids.tolist() == [1, 4] and x.shape == (2, len(FEATURES))
    f = {name: x[:, i] for i, name in enumerate(FEATURES)}
    np.testing.assert_allclose(f["token_mean"], [0.6, 1.0], rtol=1e-6)
    np.testing.assert_allclose(f["token_low"], [0.5, 0.0])
    assert f["edge"][0] > f["inner"][0] == np.float32(0.1)
    np.testing.assert_allclose(f["edge"][1], 0.1, rtol=1e-6)
    np.testing.assert_allclose(f["log_area"], np.log10([64 * 0.25, 36 * 0.25]))
    assert f["is_field"].tolist() == [1.0, 0.0]


def test_no_boundary_and_no_instances() -> None:
    instance, semantic = _two_fields()
    _, x = instance_features(instance, semantic, np.ones((20, 20)), None, gsd=1.0)
    assert (x[:, FEATURES.index("edge")] == 0).all() and np.isfinite(x).all()
    ids, none = instance_features(np.zeros((5, 5)), np.zeros((5, 5)), np.ones((5, 5)), None, gsd=1.0)
    assert ids.size == 0 and none.shape == (0, len(FEATURES))
