"""Shopkeeper behind gunicorn, configured in code: what `shopkeeper serve` runs.

gunicorn is a pre-fork production server; Django's `runserver` is for development only.
Each worker reads requests on an event loop and runs Django on `threads` threads (worker.py), so
slow clients cannot take the threads. Static files are served by WhiteNoise from the same process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from shopkeeper.redaction import MaskSecretsFilter

# gunicorn's combined format without %(u)s, the user name of Basic credentials; what is left
# (the request line, the referer) passes the same masking as every other log line.
ACCESS_LOG_FORMAT = '%(h)s %(l)s - %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


class MaskedLogger(Logger):
    """gunicorn's error and access logs, with secrets masked (shopkeeper.redaction)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, MaskSecretsFilter) for f in log.filters):
                log.addFilter(MaskSecretsFilter())


class ShopkeeperServer(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        from shopkeeper.wsgi import application

        return application


def server_options(*, host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        # An event loop reads each request whole; only complete requests take a thread (worker.py).
        "worker_class": "shopkeeper.server.worker.BufferingWorker",
        # Load Django once in the master: a broken deployment fails before any worker forks.
        "preload_app": True,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": "shopkeeper.server.gunicorn_app.MaskedLogger",
        "errorlog": "-",
        "timeout": 60,
        "graceful_timeout": 10,
        "proc_name": "shopkeeper",
        # Recent gunicorn opens a control socket at one fixed path per user; two servers (tests,
        # a second instance) would fight over it, and nothing here uses it.
        "control_socket_disable": True,
    }
