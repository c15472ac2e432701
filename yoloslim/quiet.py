"""Other libraries' log lines held back where they would bury ours or name private files: one context manager."""

from __future__ import annotations

import contextlib
import logging

from ultralytics.utils import LOGGER as ULTRALYTICS_LOGGER

SILENT = logging.CRITICAL + 1


@contextlib.contextmanager
def quieted(logger: logging.Logger | str, level: int = logging.WARNING):
    """The logger (or the one of that name) at `level` inside (SILENT: nothing), at its own level again after."""
    logger = logging.getLogger(logger) if isinstance(logger, str) else logger
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def quiet_ultralytics(level: int = logging.WARNING):
    """Ultralytics' logger at `level` inside: its summaries of a validation, an export, a device check."""
    return quieted(ULTRALYTICS_LOGGER, level)
