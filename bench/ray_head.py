"""A local Ray head node for a benchmark or a test: `ray start --head --block` on loopback ports of its own,
in a short temporary directory, stopped with every process it started (its process group) afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 120


class RayHeadError(RuntimeError):
    """The head did not start, or no driver could join it."""


def free_ports(count: int) -> list[int]:
    """`count` loopback ports that nothing listens on now (all held at once, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stop_group(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """End `ray start` and every process of its group (the head's servers and workers): SIGTERM, then SIGKILL
    for what is still there after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            continue
        break
    proc.wait()


@contextmanager
def local_head(cpus: int, *, object_store_mb: int = 256, start_seconds: float = START_SECONDS) -> Iterator[str]:
    """Yields the address (HOST:PORT) of a head with `cpus` CPUs once a driver can join it; RayHeadError
    when it does not start within `start_seconds`."""
    temp_dir = tempfile.mkdtemp(prefix="pw-ray-")  # short: Ray's socket paths must fit in 107 characters
    gcs, node_manager, object_manager, agent, agent_grpc, metrics, runtime_env, workers = free_ports(8)
    args = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
            f"--port={gcs}", f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
            f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}",
            f"--min-worker-port={workers}", f"--max-worker-port={workers + 40}",
            f"--num-cpus={cpus}", "--num-gpus=0", f"--object-store-memory={object_store_mb * 1024 * 1024}",
            "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, start_new_session=True)
    output: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip())
            if "Ray runtime started" in line:
                started.set()
        started.set()  # exited: the wait below ends at once

    threading.Thread(target=read, daemon=True).start()
    try:
        if not started.wait(start_seconds) or proc.poll() is not None:
            tail = " | ".join(line for line in output[-5:] if line) or "no output"
            how = "timed out" if proc.poll() is None else f"exited {proc.returncode}"
            raise RayHeadError(f"`ray start --head` {how}: {tail}")
        address = f"127.0.0.1:{gcs}"
        _wait_for_driver(address, proc, start_seconds)
        yield address
    finally:
        stop_group(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_driver(address: str, proc: subprocess.Popen[str], seconds: float) -> None:
    """Until a driver can join: `ray start` reports the head started a little before its node has
    registered with the cluster, and a driver that comes in between finds no node on this machine."""
    probe = ("import logging, sys, ray; ray.init(address=sys.argv[1], logging_level=logging.ERROR, "
             "log_to_driver=False); ray.shutdown()")
    deadline = time.monotonic() + seconds
    while True:
        joined = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=120)
        if joined.returncode == 0:
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            lines = [line for line in joined.stderr.splitlines() if line.strip()]
            raise RayHeadError(f"no driver could join the head at {address}: {lines[-1] if lines else 'no output'}")
        time.sleep(1)
