"""Exhaustive sweeps sharded over a Dask cluster (``search.cluster=local`` or a scheduler's
address): chunks become tasks on the cluster's worker processes, each evaluating with its own
copy of the study's :class:`~dse.search.evaluate.Evaluator` (shipped once to every worker), and
their outcomes come back to this process, which merges them in chunk order, so the front, the
counts and the checkpoints (and a resume after ``kill -9``) are bit for bit the single-process
sweep's (``exhaustive.exhaustive_search``; a chunk is ``chunks.evaluate_span``).

Dask distributed (``dask.distributed``: ``LocalCluster``, ``Client``) schedules the tasks; a
window of ``2 x workers`` chunks is in flight so every worker stays busy while this process
merges. Each worker compiles the model once (or loads it from the JAX caches the workers share
with this machine).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Iterator, Sequence

from ..jax_config import configure
from ..progress import Progress
from .chunks import ChunkOutcome, evaluate_span
from .evaluate import Evaluator
from .objectives import Constraint, Objective

log = logging.getLogger("dse.search")

LOCAL = "local"


def cluster_address(value) -> str:
    """``"local"`` or a scheduler address (``tcp://host:8786``, ``tls://…``); anything else is
    refused in one line."""
    text = str(value).strip()
    if text.lower() == LOCAL:
        return LOCAL
    if "://" in text and text.split("://", 1)[1]:
        return text
    raise ValueError(
        f"search.cluster={value!r} is neither 'local' nor a Dask scheduler address; write "
        "search.cluster=local (a cluster of search.workers processes on this machine), "
        "search.cluster=tcp://HOST:8786, or search.cluster=null to sweep in this process"
    )


@contextlib.contextmanager
def dask_client(cluster: str, workers: int, progress: Progress):
    """A Dask client on a ``LocalCluster`` of ``workers`` single-threaded processes, or on the
    scheduler at ``cluster``; every worker gets dse's JAX settings before any data arrives
    (float64 arrays would otherwise be read as float32)."""
    from dask.distributed import Client, LocalCluster

    with contextlib.ExitStack() as scope:
        with progress.phase(f"starting the Dask cluster ({cluster})"):
            if cluster == LOCAL:
                local = scope.enter_context(
                    LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.CRITICAL,
                    )
                )  # fmt: skip
                client = scope.enter_context(Client(local))
            else:
                try:
                    client = scope.enter_context(Client(cluster, timeout="30s"))
                except OSError as e:
                    raise ValueError(
                        f"search.cluster={cluster}: no Dask scheduler answers there ({e}); "
                        "start one (dask scheduler) or use search.cluster=local"
                    ) from None
            client.run(configure)
        log.info("dask: %d workers at %s", len(client.scheduler_info()["workers"]), cluster)
        yield client


def dask_chunks(client):
    """The ``chunks`` strategy of ``exhaustive_search`` on ``client``'s cluster: the evaluator
    is scattered to every worker once, chunks are submitted in order with a window of two per
    worker, and outcomes are yielded in chunk order."""

    def run(
        ev: Evaluator,
        objectives: tuple[Objective, ...],
        constraints: tuple[Constraint, ...],
        keep: bool,
        starts: Sequence[int],
    ) -> Iterator[ChunkOutcome]:
        shipped = client.scatter(ev, broadcast=True)
        window = 2 * max(len(client.scheduler_info()["workers"]), 1)
        todo, pending = iter(starts), deque()

        def submit() -> None:
            lo = next(todo, None)
            if lo is not None:
                args = (shipped, objectives, constraints, keep, lo)
                pending.append(client.submit(evaluate_span, *args, pure=False))

        for _ in range(window):
            submit()
        while pending:
            outcome = pending.popleft().result()
            submit()
            yield outcome

    return run
