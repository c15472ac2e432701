"""yoloslim's logger: logging.getLogger("yoloslim"), quiet when Ultralytics is (YOLO_VERBOSE=False).

Its handler writes to sys.stdout as it is when a message is logged, so redirections (and pytest's capture)
see the output. Quieten it with logging.getLogger("yoloslim").setLevel(logging.WARNING), or verbose=False
on the command line.
"""

from __future__ import annotations

import logging
import os
import sys


class CurrentStdout(logging.StreamHandler):
    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):  # StreamHandler sets it at init; the current sys.stdout is used instead
        pass


LOGGER = logging.getLogger("yoloslim")
if not LOGGER.handlers:
    _handler = CurrentStdout()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    LOGGER.addHandler(_handler)
    LOGGER.propagate = False
    # Ultralytics' own rule for its verbosity, read without importing it
    LOGGER.setLevel(logging.INFO if os.getenv("YOLO_VERBOSE", "true").lower() == "true" else logging.WARNING)
