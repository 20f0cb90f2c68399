"""The console's read pages: inbox filters and pages, timelines, subscription lists."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from flask_lattice.models import Subscription, WebhookEvent, utcnow
from tests.admin.conftest import Console
from tests.admin.helpers import PREFIX
from tests.helpers.support import host

_EVENT_LINK = re.compile(r'href="/billing/admin/events/(evt_[A-Za-z0-9_]+)"')
_NEXT = re.compile(r'<a rel="next" href="([^"]+)"')


def _store_events(app: Flask, count: int) -> list[str]:
    """``count`` events: alternating types and statuses, one received per hour back."""
    now = utcnow()
    ids = []
    with app.app_context():
        session = host(app).db.session
        for n in range(count):
            event_id = f"evt_{n:04d}"
            object_id = f"sub_{n % 3}"
            session.add(
                WebhookEvent(
                    id=event_id,
                    type="invoice.paid" if n % 2 else "customer.subscription.updated",
                    created=now - timedelta(hours=n),
                    received_at=now - timedelta(hours=n),
                    object_id=object_id,
                    status="failed" if n % 5 == 0 else "processed",
                    last_error="boom" if n % 5 == 0 else None,
                    payload=json.dumps({"id": event_id, "data": {"object": {"id": object_id}}}),
                )
            )
            ids.append(event_id)
        session.commit()
    return ids


def _listed(console: Console, url: str) -> list[str]:
    """Every event id listed across all pages of ``url``."""
    found: list[str] = []
    while url:
        page = console.operator.get(url)
        assert page.status_code == 200, url
        text = page.get_data(as_text=True)
        found += _EVENT_LINK.findall(text)
        following = _NEXT.search(text)
        url = following.group(1).replace("&amp;", "&") if following else ""
    return found


def test_the_inbox_pages_through_every_event_newest_first(console: Console) -> None:
    ids = _store_events(console.app, 120)
    assert _listed(console, f"{PREFIX}/events") == ids


def test_the_inbox_filters_by_status_type_object_and_date(console: Console) -> None:
    ids = _store_events(console.app, 60)
    failed = [event_id for n, event_id in enumerate(ids) if n % 5 == 0]
    assert _listed(console, f"{PREFIX}/events?status=failed") == failed
    paid = [event_id for n, event_id in enumerate(ids) if n % 2]
    assert _listed(console, f"{PREFIX}/events?type=invoice.paid") == paid
    about = [event_id for n, event_id in enumerate(ids) if n % 3 == 1]
    assert _listed(console, f"{PREFIX}/events?object=sub_1") == about
    with console.app.app_context():
        rows = host(console.app).db.session.query(WebhookEvent).all()
        days = {row.received_at.date() for row in rows}
    first_day = min(days)
    on_first_day = [
        row.id
        for row in sorted(rows, key=lambda row: row.received_at, reverse=True)
        if row.received_at.date() == first_day
    ]
    day = first_day.isoformat()
    assert _listed(console, f"{PREFIX}/events?since={day}&until={day}") == on_first_day
    both = f"{PREFIX}/events?status=failed&type=customer.subscription.updated&object=sub_0"
    assert _listed(console, both) == [
        event_id for n, event_id in enumerate(ids) if n % 10 == 0 and n % 3 == 0
    ]


def test_the_timeline_lists_an_objects_events_in_watermark_order(console: Console) -> None:
    ids = _store_events(console.app, 12)
    with console.app.app_context():
        session = host(console.app).db.session
        watermark = session.get(WebhookEvent, "evt_0003")
        assert watermark is not None
        session.add(
            Subscription(
                stripe_subscription_id="sub_0",
                stripe_customer_id="cus_0",
                status="active",
                watermark_created=watermark.created,
                watermark_event_id="evt_0003",
            )
        )
        session.commit()
    page = console.operator.get(f"{PREFIX}/objects/sub_0").get_data(as_text=True)
    about = [event_id for n, event_id in enumerate(ids) if n % 3 == 0]
    assert _EVENT_LINK.findall(page) == list(reversed(about))  # oldest created first
    assert page.count("applied: the row's current state") == 1
    assert page.count("newer than the watermark") == 1  # evt_0000
    assert page.count("older than the watermark") == 2  # evt_0009, evt_0006


def test_subscription_lists_show_trials_dunning_deadlines_and_cancels(
    app_factory: Any, sandbox: Any
) -> None:
    from tests.admin.conftest import open_console
    from tests.helpers.spine import signed_in

    app = app_factory(sandbox=sandbox, LATTICE_PAST_DUE_GRACE=timedelta(days=3))
    open_console(app)
    operator, _ = signed_in(app, "ops@example.com")
    now = utcnow()
    period_start = datetime(2026, 1, 1, tzinfo=UTC) if now.year > 2026 else now - timedelta(days=5)
    rows = {
        "sub_trial_soon": {"status": "trialing", "trial_end": now + timedelta(days=2)},
        "sub_trial_later": {"status": "trialing", "trial_end": now + timedelta(days=20)},
        "sub_late": {
            "status": "past_due",
            "current_period_start": period_start,
            "current_period_end": period_start + timedelta(days=30),
        },
        "sub_leaving": {
            "status": "active",
            "cancel_at_period_end": True,
            "current_period_end": now + timedelta(days=9),
        },
        "sub_fine": {"status": "active", "plan_key": "pro"},
    }
    with app.app_context():
        session = host(app).db.session
        for sub_id, fields in rows.items():
            session.add(
                Subscription(stripe_subscription_id=sub_id, stripe_customer_id="cus_1", **fields)
            )
        session.commit()
    page = operator.get(f"{PREFIX}/subscriptions").get_data(as_text=True)
    trials = page.split("<h2>Trials ending within 7 days</h2>")[1].split("<h2>")[0]
    assert "sub_trial_soon" in trials and "sub_trial_later" not in trials
    late = page.split("<h2>Past due</h2>")[1].split("<h2>")[0]
    deadline = period_start + timedelta(days=3)  # the unpaid period began; grace 3 days
    assert "sub_late" in late and deadline.strftime("%Y-%m-%d %H:%M") in late
    cancels = page.split("<h2>Scheduled to cancel</h2>")[1].split("<h2>")[0]
    assert "sub_leaving" in cancels and "sub_fine" not in cancels
    filtered = operator.get(f"{PREFIX}/subscriptions?status=active&plan=pro").get_data(as_text=True)
    listing = filtered.split("<h2>All active on pro</h2>")[1]
    assert "sub_fine" in listing and "sub_leaving" not in listing
