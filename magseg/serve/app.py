"""The Ray Serve application: a model deployment batching patches across requests, and the HTTP ingress.

`serve run magseg.serve.app:build_app stac=... model=...`, a Serve config file (jobs/configs/serve_*.yaml),
or `magseg serve`. The app module only wires: routes live in magseg.serve.routes, work in .service.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from magseg import __version__
from magseg.inference.engine import generate_scored
from magseg.model.generate import Request, RowLimited, Scored
from magseg.serve.config import ServeConfig, load_serve_config
from magseg.serve.routes import LayerRoutes, TileRoutes
from magseg.serve.service import LayerService, TileService

__all__ = ["PatchModel", "TileServer", "build_app"]

# The replica's state: one TileServer per process, set in its constructor and read by the routes.
_STATE: dict[str, Any] = {}

app = FastAPI(
    title="magseg tiles",
    version=__version__,
    description="Agricultural fields mapped on request by a MAgSeg model, as XYZ tiles (TiTiler-style routes).",
)


# Module functions, never the _STATE name directly from the deployment class: Ray pickles the ingress
# class and its app by value (with a copy of their globals), but a module function by reference, so
# these read and write the replica's one real _STATE.
def _install(config: ServeConfig, service: TileService) -> None:
    _STATE["config"], _STATE["service"] = config, service


def _service() -> TileService:
    service: TileService = _STATE["service"]
    return service


def _layer() -> LayerService | None:
    return _service().layer


def _api_key() -> str | None:
    config: ServeConfig = _STATE["config"]
    return config.api_key()


TileRoutes(service=_service, api_key=_api_key).register(app)
LayerRoutes(layer=_layer, api_key=_api_key).register(app)


@serve.deployment(name="patch_model")
class PatchModel:
    """The model: patches from concurrent tile requests are generated together (``@serve.batch``)."""

    def __init__(
        self,
        model: str,
        engine: str = "hf",
        threads: int = 1,
        max_batch_size: int = 32,
        batch_wait_timeout_s: float = 0.02,
        max_new_tokens: int | None = None,
        dtype: str | None = None,
    ):
        import torch

        from magseg.inference import Predictor

        torch.set_num_threads(max(int(threads), 1))
        # vllm: a batch of patches from many tiles, vLLM's prefix cache shares each scene
        self.predictor = Predictor.for_engine(
            model, engine, batch_size=max_batch_size, max_new_tokens=max_new_tokens, dtype=dtype
        )
        self.__call__.set_max_batch_size(max_batch_size)  # type: ignore[attr-defined]
        self.__call__.set_batch_wait_timeout_s(batch_wait_timeout_s)  # type: ignore[attr-defined]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.02)
    async def __call__(self, items: list[Request | RowLimited]) -> list[Scored]:
        # a seam re-read comes row-limited: the engine may stop after the rows its merge reads
        requests = [i.request if isinstance(i, RowLimited) else i for i in items]
        rows = [i.rows if isinstance(i, RowLimited) else 0 for i in items]
        # generation blocks for a while: off the event loop, so the next batch keeps filling meanwhile
        scored, _ = await asyncio.to_thread(
            generate_scored,
            self.predictor.engine,
            requests,
            self.predictor.processor,
            rows,  # 0: no limit (the grid's patches)
        )
        return scored


@serve.deployment(name="tile_server")
@serve.ingress(app)
class TileServer:
    """The HTTP ingress: its TileService computes grid tiles through the model deployment."""

    def __init__(self, config: dict[str, Any], model: DeploymentHandle) -> None:
        settings = ServeConfig(**config)
        _install(settings, TileService(settings, lambda request: model.remote(request)))


def build_app(args: dict[str, Any]) -> serve.Application:
    """The application for a config (ServeConfig keys); resources, batching and limits come from it."""
    config = load_serve_config(None, **args)
    scaling: dict[str, Any] = (
        {"autoscaling_config": config.autoscaling}
        if config.autoscaling
        else {"num_replicas": config.model_replicas}
    )
    model = PatchModel.options(  # type: ignore[attr-defined]
        ray_actor_options={"num_cpus": config.model_cpus, "num_gpus": config.model_gpus},
        # room for a full batch from every tile in flight (Serve's default of 5 would cap batches at 5)
        max_ongoing_requests=max(config.max_ongoing_requests, 2 * config.max_batch_size),
        **scaling,
    ).bind(
        config.model,
        config.engine,
        config.model_threads,
        config.max_batch_size,
        config.batch_wait_timeout_s,
        config.max_new_tokens,
        config.dtype,
    )
    key = config.api_key()
    actor: dict[str, Any] = {"num_cpus": config.server_cpus}
    if key:  # the key travels to the replicas, which do not see the driver's environment
        actor["runtime_env"] = {"env_vars": {config.api_key_env: key}}
    server = TileServer.options(  # type: ignore[attr-defined]
        num_replicas=config.server_replicas,
        ray_actor_options=actor,
        max_ongoing_requests=config.max_ongoing_requests,
        max_queued_requests=config.max_queued_requests,
    )
    return server.bind(config.to_dict(), model)  # type: ignore[no-any-return]
