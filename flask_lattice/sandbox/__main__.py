"""``python -m flask_lattice.sandbox``: run the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys

from .server import StripeSandbox


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, print the URL and signing secret, and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m flask_lattice.sandbox", description="A local Stripe API sandbox."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--forward-to", help="deliver every event here (like `stripe listen`)")
    parser.add_argument("--persist", help="SQLite file that keeps the sandbox's state")
    parser.add_argument("--webhook-secret", help="whsec_… used to sign forwarded events")
    parser.add_argument(
        "--dunning-final-status", choices=("canceled", "unpaid"), default="canceled"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sandbox = StripeSandbox(
        args.port,
        host=args.host,
        forward_to=args.forward_to,
        persist_path=args.persist,
        webhook_secret=args.webhook_secret,
        dunning_final_status=args.dunning_final_status,
    )
    sys.stdout.write(
        f"Stripe sandbox listening on {sandbox.url}\n"
        f"API key:                    {sandbox.api_key}\n"
        f"Webhook signing secret:     {sandbox.webhook_secret}\n"
        + (f"Forwarding events to:       {args.forward_to}\n" if args.forward_to else "")
        + "Press Ctrl-C to stop.\n"
    )
    sys.stdout.flush()
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        sys.stdout.write("\nstopped\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
