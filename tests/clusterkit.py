"""A real two-machine set-up on one machine: mongod (the embedded-db wheel's binary) on a local port, a Dask
scheduler and workers started with Dask's own commands, and `faceset extract --cluster` against them.

Used by tests/curate/extract/test_cluster.py and bench/cluster_speed.py.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until something listens on the port (or the process died)."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def mongod_binary() -> Path:
    """The mongod that FiftyOne's embedded-db wheel ships."""
    import importlib.util

    spec = importlib.util.find_spec("fiftyone")  # not imported: this process's FiftyOne config stays unread
    path = Path(list(spec.submodule_search_locations)[0]) / "db" / "bin" / "mongod"
    if not path.exists():
        raise FileNotFoundError(f"no mongod at {path} (install the embedded-db extra)")
    return path


class Cluster:
    """mongod + Dask scheduler + named workers, as separate processes; stop() ends them all."""

    def __init__(self, root: Path):
        self.root = root
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        root.mkdir(parents=True, exist_ok=True)
        db_port = free_port()
        (root / "db").mkdir(exist_ok=True)
        self._start("mongod", [str(mongod_binary()), "--dbpath", str(root / "db"), "--port", str(db_port),
                               "--bind_ip", "127.0.0.1", "--quiet"])
        wait_port(db_port, self.procs["mongod"])
        self.database_uri = f"mongodb://127.0.0.1:{db_port}"
        self.env = {**os.environ, "FIFTYONE_DATABASE_URI": self.database_uri, "FIFTYONE_DATABASE_VALIDATION": "false",
                    "FIFTYONE_DEFAULT_DATASET_DIR": str(root / "media"), "FIFTYONE_DO_NOT_TRACK": "true"}
        self.env.pop("DASK_SCHEDULER_ADDRESS", None)
        port = free_port()
        self._start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"])
        wait_port(port, self.procs["scheduler"])
        self.address = f"tcp://127.0.0.1:{port}"

    def _start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        self.logs[name] = self.root / f"{name}.log"
        log = open(self.logs[name], "wb")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=getattr(self, "env", None))
        return self.procs[name]

    def add_worker(self, name: str) -> subprocess.Popen:
        """One single-threaded worker process (no nanny: a killed worker stays dead)."""
        return self._start(name, [str(BIN / "dask"), "worker", self.address, "--name", name, "--nthreads", "1",
                                  "--no-nanny", "--no-dashboard", "--local-directory", str(self.root / name)])

    def wait_workers(self, n: int, timeout: float = 60) -> None:
        """Wait until n workers have joined the scheduler."""
        client = self.client()
        try:
            client.wait_for_workers(n, timeout=timeout)
        finally:
            client.close()

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout="20s", set_as_default=False)

    def kill(self, name: str) -> None:
        """SIGKILL a process of the set-up (a worker dying mid-task)."""
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def faceset(self, *args: str, cluster: bool = True) -> subprocess.Popen:
        """`faceset ...` against this database (and this scheduler unless cluster=False), running."""
        cmd = [str(BIN / "faceset"), *args] + (["--cluster", self.address] if cluster else [])
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)

    def db(self) -> Any:
        import pymongo

        return pymongo.MongoClient(self.database_uri)["fiftyone"]

    def faces(self, dataset: str) -> dict[str, tuple]:
        """face_key -> (bbox, yaw, shot, track) of every sample of a dataset, read straight from the database."""
        db = self.db()
        doc = db.datasets.find_one({"name": dataset})
        if doc is None:
            return {}
        out: dict[str, tuple] = {}
        for s in db[doc["sample_collection_name"]].find({}, {"face_key": 1, "bbox": 1, "yaw": 1, "shot": 1, "track": 1}):
            assert s["face_key"] not in out, f"duplicate face {s['face_key']}"
            out[s["face_key"]] = (tuple(s["bbox"]), s["yaw"], s.get("shot"), s.get("track"))
        return out

    def stop(self) -> None:
        for name in list(self.procs)[::-1]:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
