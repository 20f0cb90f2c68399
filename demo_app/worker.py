"""``python -m demo_app.worker``: the webhook worker that ``make demo`` starts.

The same as ``flask --app demo_app lattice worker``, with RQ logging only warnings, so
the demo's console stays readable.
"""

from __future__ import annotations

from flask_lattice.webhooks.worker import build_worker

from . import create_app


def main() -> None:
    """Process webhook jobs (with RQ's scheduler, for retries) until stopped."""
    app = create_app()
    build_worker(app).work(with_scheduler=True, logging_level="WARNING")


if __name__ == "__main__":
    main()
