"""The weight dtypes a model may be cast to at inference, checked in one place (eval, map, the model actor)."""

from __future__ import annotations

from magseg.errors import InputError

#: Weight dtypes a predictor may cast a model to (None keeps the checkpoint's own).
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")


def check_dtype(dtype: str | None) -> str | None:
    """``dtype`` when it is one of DTYPES (or None), else a one-line InputError naming the choices."""
    if dtype is not None and dtype not in DTYPES:
        raise InputError(
            f"dtype {dtype!r} is not one of {', '.join(DTYPES)}; leave it unset for the model's own"
        )
    return dtype
