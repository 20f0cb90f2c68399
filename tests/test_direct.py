"""Statements run straight on the DB-API cursor (``flask_lattice.direct``), on both backends."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from flask_lattice.direct import DirectStatement
from flask_lattice.models import Base, Subscription, WebhookEvent

SUBSCRIPTIONS = Subscription.__table__
EVENTS = WebhookEvent.__table__
START = datetime(2026, 11, 1, 12, 30, 15, 123456, tzinfo=UTC)

BY_BILLABLE = DirectStatement(
    sa.select(
        SUBSCRIPTIONS.c.id,
        SUBSCRIPTIONS.c.status,
        SUBSCRIPTIONS.c.cancel_at_period_end,
        SUBSCRIPTIONS.c.current_period_start,
        SUBSCRIPTIONS.c.current_period_end,
        SUBSCRIPTIONS.c.trial_end,
    )
    .where(SUBSCRIPTIONS.c.billable_key == sa.bindparam("billable_key"))
    .order_by(SUBSCRIPTIONS.c.id)
)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _add_subscriptions(connection: sa.Connection) -> None:
    for number, status in enumerate(["active", "canceled"], start=1):
        connection.execute(
            sa.insert(SUBSCRIPTIONS).values(
                stripe_subscription_id=f"sub_{number}",
                stripe_customer_id="cus_1",
                billable_key="user:1",
                status=status,
                cancel_at_period_end=number == 1,
                current_period_start=START,
                current_period_end=START + timedelta(days=30),
                raw={},
            )
        )


def test_rows_match_what_sqlalchemy_returns(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        _add_subscriptions(connection)
    with engine.connect() as connection:
        direct = BY_BILLABLE.rows(connection, {"billable_key": "user:1"})
        through_sqlalchemy = [
            tuple(row)
            for row in connection.execute(BY_BILLABLE.statement, {"billable_key": "user:1"})
        ]
    assert direct == through_sqlalchemy
    first = direct[0]
    assert first[1:] == ("active", True, START, START + timedelta(days=30), None)
    assert first[3].tzinfo is not None, "timestamps load aware, as the column type says"
    with engine.connect() as connection:
        assert BY_BILLABLE.rows(connection, {"billable_key": "user:2"}) == []


def test_rows_read_inside_the_connections_transaction(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        _add_subscriptions(connection)  # not committed
        assert len(BY_BILLABLE.rows(connection, {"billable_key": "user:1"})) == 2
        connection.rollback()
        assert BY_BILLABLE.rows(connection, {"billable_key": "user:1"}) == []


def _event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "customer.updated",
        "created": START,
        "livemode": False,
        "payload": "{}",
        "received_at": START,
        "status": "received",
        "attempts": 0,
    }


INSERT_EVENT = DirectStatement(sa.insert(EVENTS).returning(EVENTS.c.id), list(_event("evt")))


def test_run_alone_commits_and_converts_bound_values(engine: sa.Engine) -> None:
    assert INSERT_EVENT.run_alone(engine, _event("evt_1")) == [("evt_1",)]
    with engine.connect() as connection:
        row = connection.execute(sa.select(EVENTS)).one()
    assert (row.id, row.created, row.livemode, row.api_version) == ("evt_1", START, False, None)


def test_a_failing_statement_raises_sqlalchemys_error_and_keeps_nothing(
    engine: sa.Engine,
) -> None:
    INSERT_EVENT.run_alone(engine, _event("evt_1"))
    with pytest.raises(sa.exc.IntegrityError):
        INSERT_EVENT.run_alone(engine, _event("evt_1"))
    # The pooled connection went back usable, with the failed transaction rolled back.
    assert INSERT_EVENT.run_alone(engine, _event("evt_2")) == [("evt_2",)]
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(EVENTS)) == 2


def test_a_missing_value_is_refused_before_anything_is_sent(engine: sa.Engine) -> None:
    values = _event("evt_1")
    del values["status"]
    with pytest.raises(sa.exc.InvalidRequestError, match="status"):
        INSERT_EVENT.run_alone(engine, values)


def test_a_value_for_a_column_the_statement_does_not_set_is_refused(engine: sa.Engine) -> None:
    values = {**_event("evt_1"), "last_error": "boom"}
    with pytest.raises(sa.exc.ArgumentError, match="no parameter last_error"):
        INSERT_EVENT.run_alone(engine, values)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_unreachable_database_raises_sqlalchemys_operational_error(
    backend: str, tmp_path: Any
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'missing' / 'app.db'}"
        if backend == "sqlite"
        else f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"
    )
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.OperationalError):
        INSERT_EVENT.run_alone(engine, _event("evt_1"))


def test_the_pooled_connection_goes_back_to_transactions_after_run_alone(
    engine: sa.Engine,
) -> None:
    INSERT_EVENT.run_alone(engine, _event("evt_1"))
    with engine.connect() as connection:  # the same pooled connection, reused
        connection.execute(sa.insert(EVENTS).values(**_event("evt_2")))
        connection.rollback()
        count = connection.scalar(sa.select(sa.func.count()).select_from(EVENTS))
    assert count == 1, "a rollback still undoes work: the connection left autocommit mode"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_dropped_server_connection_is_invalidated_and_replaced(
    engine: sa.Engine, database_url: str
) -> None:
    INSERT_EVENT.run_alone(engine, _event("evt_1"))  # the pool now holds one connection
    with engine.connect() as connection:
        backend = connection.scalar(sa.text("SELECT pg_backend_pid()"))
    admin = sa.create_engine(database_url)
    with admin.connect() as connection:  # as a server restart would
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    admin.dispose()

    with pytest.raises(sa.exc.OperationalError):
        INSERT_EVENT.run_alone(engine, _event("evt_2"))
    assert INSERT_EVENT.run_alone(engine, _event("evt_3")) == [("evt_3",)]
