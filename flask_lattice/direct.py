"""Hot-path statements run straight on a DB-API cursor.

Two statements run on every request of their kind: the webhook route's inbox insert and
the access gates' read. Through SQLAlchemy's execution layer each costs about 100 µs of
CPU before the database sees it, more than the database itself spends on it.
:class:`DirectStatement` keeps SQLAlchemy for what it is good at here (compiling the
statement for the dialect, and the types' bind and result processors, so values convert
exactly as they would through a ``Connection``) and runs the compiled SQL on the pooled
DB-API connection itself, at a tenth of the cost.

The price: these statements do not pass through SQLAlchemy's execution events or its
``echo`` log (:doc:`access` and :doc:`webhooks` say so). Driver errors are re-raised as
SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError`, and a connection the dialect reports
as disconnected is invalidated, as SQLAlchemy would do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled for one dialect, with the processors its values go through."""

    sql: str
    positions: Sequence[str] | None
    compiled: SQLCompiler
    bind_processors: Mapping[str, Processor]
    #: ``(column index, processor)`` for each result column that has one.
    result_processors: Sequence[tuple[int, Processor]]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        """``values`` converted for the driver, in its paramstyle."""
        unknown = values.keys() - self.compiled.binds.keys()
        if unknown:  # Connection.execute would drop them silently; here that is a bug
            raise sa.exc.ArgumentError(
                f"the statement has no parameter {', '.join(sorted(unknown))}: "
                "name its columns in DirectStatement(..., column_keys)"
            )
        converted = self.compiled.construct_params(dict(values))
        for name, process in self.bind_processors.items():
            if converted.get(name) is not None:
                converted[name] = process(converted[name])
        if self.positions is not None:
            return tuple(converted[name] for name in self.positions)
        return converted

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """A driver row with each value converted as SQLAlchemy would."""
        values = list(row)
        for index, process in self.result_processors:
            if values[index] is not None:
                values[index] = process(values[index])
        return tuple(values)


class DirectStatement:
    """A Core statement that runs on a DB-API cursor, compiled once per dialect.

    ``column_keys`` names the columns an ``INSERT`` sets (as ``Connection.execute`` would
    infer from its parameters).
    """

    def __init__(
        self, statement: sa.Select[Any] | sa.Insert, column_keys: Sequence[str] = ()
    ) -> None:
        self.statement = statement
        self.column_keys = list(column_keys)
        self._by_dialect: dict[tuple[type[Dialect], str], _Compiled] = {}

    def rows(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of the statement, on ``connection``'s DB-API connection (in its
        transaction)."""
        return self._run(connection.connection, connection.dialect, values)

    def run_alone(self, engine: sa.Engine, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement in a transaction of its own on a pooled connection, and commit.

        On a database server the connection runs it in autocommit mode, so the statement
        and its commit take one round trip instead of three (BEGIN, the statement,
        COMMIT). SQLite runs in-process, where switching modes costs more than it saves.
        """
        dialect = engine.dialect
        with _driver_errors(dialect):
            pooled = engine.raw_connection()
        try:
            if dialect.name == "sqlite":
                rows = self._run(pooled, dialect, values)
                with _driver_errors(dialect, pooled):
                    pooled.commit()
                return rows
            driver_connection = pooled.dbapi_connection
            assert driver_connection is not None, "a fresh checkout is always connected"
            dialect.set_isolation_level(driver_connection, "AUTOCOMMIT")
            try:
                return self._run(pooled, dialect, values)
            finally:
                if pooled.is_valid:  # not after a lost connection was invalidated
                    dialect.reset_isolation_level(driver_connection)
        finally:
            pooled.close()

    def _run(
        self, pooled: PoolProxiedConnection, dialect: Dialect, values: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        compiled = self._compiled(dialect)
        parameters = compiled.parameters(values)
        with _driver_errors(dialect, pooled):
            cursor = pooled.cursor()
            try:
                cursor.execute(compiled.sql, parameters)
                fetched = cursor.fetchall()
            finally:
                cursor.close()
        return [compiled.convert(row) for row in fetched]

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = (type(dialect), dialect.paramstyle)
        found = self._by_dialect.get(key)
        if found is None:
            found = self._by_dialect[key] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.column_keys or None)
        bind_processors = {
            name: process
            for name, bind in compiled.binds.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect))
        }
        # The lattice columns' result processors do not depend on the driver's type codes.
        result_processors = [
            (index, process)
            for index, column in enumerate(self.statement.exported_columns)
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]
        return _Compiled(
            sql=compiled.string,
            positions=compiled.positiontup if dialect.positional else None,
            compiled=compiled,
            bind_processors=bind_processors,
            result_processors=result_processors,
        )


@contextmanager
def _driver_errors(dialect: Dialect, pooled: PoolProxiedConnection | None = None) -> Iterator[None]:
    """Raise the driver's errors as SQLAlchemy does, invalidating a connection found lost."""
    try:
        yield
    except dialect.loaded_dbapi.Error as error:
        if pooled is not None and dialect.is_disconnect(error, pooled.dbapi_connection, None):
            pooled.invalidate(error)
        raise sa.exc.DBAPIError.instance(None, None, error, dialect.loaded_dbapi.Error) from error
