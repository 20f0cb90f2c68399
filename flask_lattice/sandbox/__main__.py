"""``python -m flask_lattice.sandbox``: run the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys

from .limits import TEST_MODE_RATE
from .server import StripeSandbox
from .store import DEFAULT_SEARCH_DELAY


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
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="sk_test_…",
        help="a secret key to accept (repeatable; the first is printed; default: a fixed one)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        nargs="?",
        const=TEST_MODE_RATE,
        metavar="PER_SECOND",
        help=f"answer 429 above this many requests per second, globally and per endpoint "
        f"(Stripe test mode: {TEST_MODE_RATE:g}, the value without a number); off by default",
    )
    parser.add_argument(
        "--chaos",
        action="store_true",
        help="deliver webhooks shuffled, duplicated and delayed, as Stripe may",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --chaos randomness")
    parser.add_argument(
        "--search-delay",
        type=float,
        default=DEFAULT_SEARCH_DELAY,
        metavar="SECONDS",
        help="how long new objects stay invisible to search (Stripe: under a minute)",
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
        rate_limit=args.rate_limit,
        chaos=args.chaos,
        seed=args.seed,
        search_delay=args.search_delay,
        **(
            {"api_key": args.api_key[0], "extra_api_keys": args.api_key[1:]} if args.api_key else {}
        ),
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
