"""Creating Quillnote's tables (its own and Flask-Lattice's) safely from several processes.

Every web process builds the app, and ``gunicorn -w 2`` builds it in two processes at once:
two ``CREATE TABLE`` for the same table collide in PostgreSQL's catalog (a unique violation
on ``pg_type``) and one worker fails to boot. On PostgreSQL the tables are therefore created
under a transaction-scoped advisory lock: the first process creates them, the others wait,
then find them in place.
"""

from __future__ import annotations

import sqlalchemy as sa

from .extensions import db

#: The advisory lock's key (any 64-bit integer agreed by every process of the app).
SCHEMA_LOCK_KEY = 0x5155_494C_4C4E_4F54  # "QUILLNOT"


def create_tables() -> None:
    """Create the missing tables in one transaction; on PostgreSQL, one process at a time.

    Needs an app context. The lock is released when the transaction ends.
    """
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
        db.metadata.create_all(connection)
