"""CPU time spent while a scenario runs, split by who spent it: the server under test (its
supervisor and workers), PostgreSQL (every `postgres` process) and the load generator (wrk,
a child of this process). Divided by the requests served, it says where each request's
time goes on this 2-core machine, where the three share the cores."""

from __future__ import annotations

import resource
from dataclasses import dataclass

import psutil


def _tree_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _postgres_seconds() -> dict[int, float]:
    seen: dict[int, float] = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] == "postgres" and proc.info["cpu_times"] is not None:
            times = proc.info["cpu_times"]
            seen[proc.pid] = times.user + times.system
    return seen


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSnapshot:
    server: float
    postgres: dict[int, float]
    children: float

    @classmethod
    def take(cls, server_pid: int | None) -> CpuSnapshot:
        return cls(_tree_seconds(server_pid), _postgres_seconds(), _children_seconds())

    def per_request(
        self, later: CpuSnapshot, requests: int, server_pid: int | None
    ) -> dict[str, float]:
        """Microseconds of CPU per request, from this snapshot to `later`. PostgreSQL's
        backends that started in between count from zero."""
        if requests <= 0:
            return {}
        postgres = sum(t - self.postgres.get(pid, 0.0) for pid, t in later.postgres.items())
        spent = {
            "server": later.server - self.server if server_pid is not None else 0.0,
            "postgres": max(postgres, 0.0),
            "wrk": later.children - self.children,
        }
        return {name: seconds / requests * 1e6 for name, seconds in spent.items()}
