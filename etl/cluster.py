"""Ray, the distributed engine of fetch and embed: joining a cluster, and a task pool behind
`concurrent.futures`, so a stage drives Ray tasks exactly as it drives a local pool.

The database never leaves the driver (this process): stages read requests in partitions with
SQL, send them to workers, and commit what comes back partition by partition. Workers need this
package installed (the same version) and the images' storage within reach.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from skyscript_db.config import ClusterConfig
from skyscript_db.errors import ConfigError

log = logging.getLogger(__name__)

# A task whose worker process dies (killed, out of memory, node lost) runs again this many
# times; an exception the task itself raises is its result, never retried by Ray.
TASK_RETRIES = 3


def connect(address: str | None) -> None:
    """Join the cluster at `address` ('auto', 'HOST:PORT'; None: $RAY_ADDRESS when set, as in
    a Ray job) or start one on this machine; once per process."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError("executor 'ray' needs Ray: pip install 'skyscript-db[ray]'") from e
    if ray.is_initialized():
        return
    # 'local' starts a fresh instance, never one a stale /tmp/ray address file points at
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    _check_listening(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ConfigError(f"ray address {address!r}: cannot join the cluster: {e}") from e
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False  # the stage shows its own
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    log.info("ray: %s", ray.cluster_resources())


def _check_listening(address: str) -> None:
    """A HOST:PORT nobody listens on is one clear error now; Ray itself would retry for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # 'local', 'auto': Ray resolves them
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ConfigError(f"ray address {address!r}: nothing answers there ({e}); start the "
                          "cluster with `ray start --head`, or check the address") from e


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class RayPool(Executor):
    """`submit(fn, *args)` runs `fn` as a Ray task (one CPU) and returns its Future."""

    def __init__(self, config: ClusterConfig):
        connect(config.ray_address)
        self._remote: dict[Callable, Any] = {}

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        import ray

        if fn not in self._remote:
            self._remote[fn] = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(fn)
        return self._remote[fn].remote(*args, **kwargs).future()
