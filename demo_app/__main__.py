"""``python -m demo_app``: run Quillnote with the sandbox, Redis and a worker (``make demo``)."""

from .runner import main

raise SystemExit(main())
