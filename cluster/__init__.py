"""Where independent tasks run: regression shards (sim/), place-and-route seeds and exploration points
(tools/). One function, `map_tasks`, with three engines:

    --jobs J                          a local pool of J workers on this machine (threads driving a simulator or
                                      nextpnr each, or processes for Python work; no Dask)
    --scheduler local --jobs J        a Dask LocalCluster of J single-threaded worker processes on loopback
    --scheduler tcp://HOST:PORT       an existing Dask distributed cluster (`dask scheduler` + `dask worker`, or
                                      dask-jobqueue on SLURM/PBS: docs/cluster.md)

Results come back in the order of the inputs whatever the engine, so a run's output is the same on one process and
on a cluster. Tasks must be picklable functions of picklable arguments; those that run tools (Verilator, nextpnr)
need the tools and the files they name at the same paths on every worker (a shared file system, as on any HPC
cluster).
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Callable, Iterable

from flowerrors import FlowError


def add_arguments(parser, jobs_default: int = 1, what: str = "tasks") -> None:
    parser.add_argument("--jobs", type=int, default=jobs_default,
                        help=f"{what} run side by side (local workers, or Dask LocalCluster workers)")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT|local",
                        help=f"run the {what} on this Dask distributed scheduler ('local': a Dask LocalCluster of "
                             "--jobs workers on loopback); default: a local pool of --jobs workers")


def check_jobs(jobs: int) -> None:
    if jobs < 1:
        raise FlowError(f"--jobs {jobs} runs nothing; use --jobs 1 or more.")


def _client(scheduler: str, jobs: int):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise FlowError("--scheduler needs Dask distributed; run `make venv` (it installs requirements.lock).") \
            from None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        return Client(cluster), cluster
    if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
        raise FlowError(f"--scheduler {scheduler} is not an address; use tcp://HOST:PORT (from `dask scheduler`) "
                        "or 'local'.")
    try:
        return Client(scheduler, timeout="20s"), None
    except (OSError, TimeoutError) as exc:
        raise FlowError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with `dask scheduler` "
                        "and workers with `dask worker ADDRESS`, or drop --scheduler.") from None


def map_tasks(fn: Callable, items: Iterable, jobs: int = 1, scheduler: str | None = None,
              key: str = "task", processes: bool = False, on_done: Callable[[int, object], None] | None = None
              ) -> list:
    """[fn(item) for item in items], run on the chosen engine; results in input order, the first exception
    re-raised. Local workers are threads (for tasks that wait on a subprocess) or, with processes=True,
    processes (for tasks that compute in Python). `on_done(index, result)` is called in this process as each
    task finishes, in completion order (progress output for long maps)."""
    items = list(items)
    check_jobs(jobs)
    if not items:
        return []
    done = on_done or (lambda index, result: None)
    results: list = [None] * len(items)
    if scheduler:
        client, cluster = _client(scheduler, jobs)
        try:
            from distributed import as_completed as dask_completed
            futures = client.map(fn, items, pure=False, key=[f"{key}-{i}" for i in range(len(items))])
            index = {future.key: i for i, future in enumerate(futures)}
            for future in dask_completed(futures):
                i = index[future.key]
                results[i] = future.result()
                done(i, results[i])
            return results
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    if jobs == 1 or len(items) == 1:
        for i, item in enumerate(items):
            results[i] = fn(item)
            done(i, results[i])
        return results
    executor = ProcessPoolExecutor if processes else ThreadPoolExecutor
    with executor(max_workers=min(jobs, len(items))) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            done(i, results[i])
    return results
