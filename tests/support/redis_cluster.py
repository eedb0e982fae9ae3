"""A local Redis Cluster on free ports: N masters (and optional replicas), torn down with `stop()`.

Each node is `redis-server --cluster-enabled yes` without persistence in a private directory;
`redis-cli --cluster create` assigns the slots; `start()` returns once every node reports
`cluster_state:ok` and agrees on the masters.
"""
from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from redis import Redis as SyncRedis


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(n: int) -> list[int]:
    """Ports P with P and its cluster bus port P + 10000 both free."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.randrange(20000, 50000)
        if port not in ports and _is_free(port) and _is_free(port + 10000):
            ports.append(port)
    return ports


class LocalCluster:
    def __init__(self, masters: int = 3, replicas: int = 0, node_timeout_ms: int = 2000):
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.dir = Path(tempfile.mkdtemp(prefix="flashsale-cluster-"))
        self.ports: list[int] = []
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self, timeout_s: float = 30.0) -> "LocalCluster":
        self.ports = _free_ports(self.masters * (1 + self.replicas))
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            self._wait_ping(port, timeout_s)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=timeout_s)
        self.wait_ok(timeout_s)
        if self.replicas:
            self.wait_replicas_linked(timeout_s)
        return self

    def wait_replicas_linked(self, timeout_s: float = 30.0) -> None:
        """Every replica's link to its master is up (the first sync done)."""
        deadline = time.monotonic() + timeout_s
        while True:
            linked = 0
            for port in self.live_ports():
                with self.node(port) as r:
                    info = r.info("replication")
                    if info.get("role") == "slave" and info.get("master_link_status") == "up":
                        linked += 1
            if linked >= self.masters * self.replicas:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the replicas of the local Redis Cluster did not link up")
            time.sleep(0.1)

    def _spawn(self, port: int) -> None:
        log = open(self.dir / f"redis-{port}.log", "ab")
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(self.dir / f"nodes-{port}.conf"),
             "--cluster-node-timeout", str(self.node_timeout_ms), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    @staticmethod
    def _wait_ping(port: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with SyncRedis(host="127.0.0.1", port=port, socket_timeout=1) as r:
                    r.ping()
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def node(self, port: int) -> SyncRedis:
        return SyncRedis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=2)

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Every live node says cluster_state:ok and counts the expected masters."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if all(self._ok(port) for port in self.live_ports()):
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the local Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)

    def _ok(self, port: int) -> bool:
        with self.node(port) as r:
            info = r.execute_command("CLUSTER", "INFO")
            if isinstance(info, dict):
                state, size = info.get("cluster_state"), int(info.get("cluster_size", 0))
            else:
                fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
                state, size = fields.get("cluster_state"), int(fields.get("cluster_size", 0))
            return state == "ok" and size == self.masters

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def role(self, port: int) -> str:
        with self.node(port) as r:
            return r.execute_command("ROLE")[0]

    def master_ports(self) -> list[int]:
        return [p for p in self.live_ports() if self.role(p) == "master"]

    def replica_of(self, master_port: int) -> int:
        for port in self.live_ports():
            with self.node(port) as r:
                role = r.execute_command("ROLE")
                if role[0] == "slave" and int(role[2]) == master_port:
                    return port
        raise LookupError(f"no replica of {master_port}")

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def restart(self, port: int) -> None:
        """Start a killed node again with its cluster config: a failed-over master rejoins as a replica."""
        self._spawn(port)
        self._wait_ping(port, 10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
