"""A local Ray cluster (`ray start --head`) for the job tests: one per session, everything under one temp dir."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"


@dataclass
class Cluster:
    address: str  # the dashboard (job submission) address
    env: dict[str, str]  # HOME, RAY_AUTH_MODE etc. for the ray CLI
    root: Path
    running: set[str] = field(default_factory=set)  # submission ids not known to have ended

    def ray(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run a `ray` CLI command against this cluster."""
        return subprocess.run(
            [str(RAY), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def submit(
        self, sid: str, script: str, *args: str, wait: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`ray job submit --working-dir <repo> -- <venv python> jobs/<script> args` (cluster/README.md)."""
        cmd = ["job", "submit", "--address", self.address, "--working-dir", str(REPO), "--submission-id", sid]
        cmd += [] if wait else ["--no-wait"]
        self.running.add(sid)
        done = self.ray(*cmd, "--", sys.executable, f"jobs/{script}", *args)
        if wait:
            self.running.discard(sid)
        return done

    def _api(self, path: str, method: str = "GET") -> dict[str, Any]:
        """The job REST API (what `ray job` calls), with the cluster's token: no CLI start-up per call."""
        token = (self.root / "home" / ".ray" / "auth_token").read_text().strip()
        req = urllib.request.Request(
            f"{self.address}{path}", method=method, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
            return answer

    def status(self, sid: str) -> str:
        return str(self._api(f"/api/jobs/{sid}")["status"])

    def stop(self, sid: str, timeout: float = 60) -> str:
        """Stop a job (like `ray job stop`) and wait until it has ended; returns its final status."""
        self._api(f"/api/jobs/{sid}/stop", method="POST")
        deadline = time.monotonic() + timeout
        while (status := self.status(sid)) in ("PENDING", "RUNNING"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {sid} still {status} {timeout} s after stop")
            time.sleep(0.2)
        self.running.discard(sid)
        return status

    def logs(self, sid: str) -> str:
        return str(self._api(f"/api/jobs/{sid}/logs")["logs"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Cluster]:
    # A short root: Ray's unix sockets live under it and their paths must stay under 108 characters.
    root = Path(tempfile.mkdtemp(prefix="mgr", dir="/tmp"))
    (root / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # HOME: the auth token (~/.ray/auth_token) and anything else Ray writes to ~ stays in root.
    env |= {"HOME": str(root / "home"), "RAY_AUTH_MODE": "token", "RAY_TMPDIR": str(root / "t")}
    env |= {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_AUTO_CONNECT": "0", "TMPDIR": str(root)}
    dash = _free_port()
    cmd = [str(RAY), "start", "--head", "--block", "--num-cpus=2", "--num-gpus=0"]
    cmd += [f"--port={_free_port()}", f"--ray-client-server-port={_free_port()}"]
    cmd += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}"]
    cmd += [f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={root / 't'}"]
    cmd += ["--disable-usage-stats"]
    cluster = Cluster(f"http://127.0.0.1:{dash}", env, root)
    token = cluster.ray("get-auth-token", "--generate")  # ~/.ray/auth_token, read by ray start and ray job
    assert token.returncode == 0, token.stderr
    log = (root / "ray_start.log").open("w")
    # --block keeps `ray start` in the foreground; its own session is one process group to end at teardown.
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited: {(root / 'ray_start.log').read_text()[-2000:]}")
            if cluster.ray("job", "list", "--address", cluster.address, timeout=60).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the local Ray cluster did not answer within 90 s")
            time.sleep(1)
        yield cluster
    finally:
        for sid in list(cluster.running):  # job drivers run in their own sessions: stop them first
            with contextlib.suppress(Exception):
                cluster.stop(sid)
        # SIGTERM lets Ray clean up; its graceful shutdown can take half a minute, so SIGKILL after 5 s.
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
                break
        log.close()
        shutil.rmtree(root, ignore_errors=True)
