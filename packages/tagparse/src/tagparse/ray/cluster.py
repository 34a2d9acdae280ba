"""Joining a running Ray cluster (`--ray-address`) or starting a local one, with one-line errors.

An address Ray cannot reach would otherwise retry for a minute and end in a traceback; the TCP
port is tried first (5 s), so a wrong `--ray-address` is one `error:` line naming it.
"""

from __future__ import annotations

import logging
import socket
from types import ModuleType

from tagparse.errors import TagparseError

INSTALL_HINT = "pip install 'tagparse[ray]'"
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> ModuleType:
    """`ray` with Ray Data, or the one-line error naming the extra to install."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise TagparseError(
            f"--distributor ray needs Ray Data ({e.name or e} is not installed); {INSTALL_HINT}"
        ) from None
    return ray


def check_reachable(address: str) -> None:
    """A `host:port` address must accept a TCP connection; `auto` and `ray://` are Ray's."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise TagparseError(
            f"--ray-address {address!r}: expected HOST:PORT of the head's GCS (e.g. "
            "10.0.0.1:6379, as `ray start --head` prints), `auto` or ray://HOST:10001"
        )
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise TagparseError(
            f"--ray-address {address}: no Ray cluster answers there ({e.strerror or e}); "
            "start one with `ray start --head` or fix the address"
        ) from None


class RayCluster:
    """The Ray session of one run: joined (`address`), reused (already initialised in this
    process, e.g. a notebook or a test) or started locally with `num_cpus` (None: the machine's).
    Only a session this run started is shut down by `close()`."""

    def __init__(self, address: str | None, num_cpus: int | None):
        self.ray = import_ray()
        self._owned = False
        if self.ray.is_initialized():
            return
        if address is not None:
            check_reachable(address)
        self.ray.init(
            address=address,
            num_cpus=None if address is not None else num_cpus,
            include_dashboard=False,
            log_to_driver=False,  # the workers' logs stay in Ray's session folder
            logging_level=logging.ERROR,
            configure_logging=True,
        )
        self._owned = True
        context = self.ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # tagparse's own bar counts the commits
        _quiet_console("ray.data")

    def close(self) -> None:
        if self._owned:
            self.ray.shutdown()
            self._owned = False


def _quiet_console(logger_name: str) -> None:
    """Ray Data prints a failed task's traceback to the console before it raises; the run's
    own `error:` line says what happened, so the console shows nothing below CRITICAL (the
    session's `logs/ray-data/` files keep everything)."""
    for handler in logging.getLogger(logger_name).handlers:
        if type(handler) is not logging.FileHandler and isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.CRITICAL)
