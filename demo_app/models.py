"""Quillnote's own tables: users, their notes, and team members."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from flask_lattice.models import UTCDateTime, utcnow

from .extensions import db


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """Someone with a Quillnote account; also the billable (``user:<id>``).

    Flask-Login identifies a signed-in user by the token of their :class:`LoginSession`
    (:meth:`get_login_id`), not by ``id``, so that signing out ends the session for good.
    """

    __tablename__ = "users"
    #: Lets ``login_token`` below be a plain attribute rather than a column.
    __allow_unmapped__ = True

    #: The token of the sign-in this instance was loaded for (not stored on the row).
    login_token: str | None = None

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    notes: Mapped[list[Note]] = relationship(
        back_populates="owner", cascade="all, delete-orphan", order_by="Note.updated_at.desc()"
    )
    members: Mapped[list[TeamMember]] = relationship(
        back_populates="owner", cascade="all, delete-orphan", order_by="TeamMember.id"
    )

    def set_password(self, password: str) -> None:
        """Store a salted hash of ``password``, never the password."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """Whether ``password`` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def get_login_id(self) -> str:
        """What Flask-Login keeps in the session and remember cookies: the sign-in's token."""
        if self.login_token is None:
            raise RuntimeError("open a LoginSession (demo_app.auth.sign_in) before login_user")
        return self.login_token


class LoginSession(db.Model):  # type: ignore[name-defined,misc]
    """One sign-in: a random token that the session and remember cookies carry.

    Deleted at sign-out, so a copied session cookie or an old remember cookie stops working.
    """

    __tablename__ = "login_sessions"

    token: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship()


class Note(db.Model):  # type: ignore[name-defined,misc]
    """One note: a title and a Markdown body."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship(back_populates="notes")


class TeamMember(db.Model):  # type: ignore[name-defined,misc]
    """A teammate invited to share an owner's notes; each one takes a seat."""

    __tablename__ = "team_members"
    __table_args__ = (sa.UniqueConstraint("owner_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    owner: Mapped[User] = relationship(back_populates="members")
