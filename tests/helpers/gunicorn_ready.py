"""A gunicorn config for the boot test: each worker leaves a file once the app has loaded."""

from __future__ import annotations

import os
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Called by gunicorn in a worker after the app has been imported and built."""
    directory = os.environ["QUILLNOTE_TEST_READY_DIR"]
    with open(os.path.join(directory, str(worker.pid)), "w"):
        pass
