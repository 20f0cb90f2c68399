"""Sign-up, log-in and log-out, with hashed passwords and CSRF-protected forms."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from flask_lattice import safe_url
from flask_lattice.models import utcnow

from .extensions import db, login_manager, login_required
from .models import LoginSession, User
from .throttle import throttle_sign_in

blueprint = Blueprint("auth", __name__)

MIN_PASSWORD_LENGTH = 8


#: How long a sign-in (and its remember cookie) lasts without signing in again.
SESSION_LIFETIME = timedelta(days=30)


def load_user(login_id: str) -> User | None:
    """Flask-Login's loader: the user of the live sign-in whose token is ``login_id``.

    ``None`` (signed out) once the sign-in has ended at sign-out, or is older than
    :data:`SESSION_LIFETIME`.
    """
    login = db.session.get(LoginSession, login_id)
    if login is None or login.created_at < utcnow() - SESSION_LIFETIME:
        return None
    user = login.user
    user.login_token = login.token
    return user


login_manager.user_loader(load_user)
login_manager.id_attribute = "get_login_id"


def sign_in(user: User, *, remember: bool = False) -> None:
    """Open a new :class:`LoginSession` for ``user`` and sign them in with its token.

    Sign-ins older than :data:`SESSION_LIFETIME` are cleared away on the way.
    """
    db.session.execute(
        sa.delete(LoginSession).where(LoginSession.created_at < utcnow() - SESSION_LIFETIME)
    )
    login = LoginSession(token=secrets.token_urlsafe(32), user=user)
    db.session.add(login)
    db.session.commit()
    user.login_token = login.token
    login_user(user, remember=remember, duration=SESSION_LIFETIME)


def sign_out() -> None:
    """End the current sign-in: its token stops working in every copy of the cookies."""
    token = getattr(current_user, "login_token", None)
    if token is not None:
        db.session.execute(sa.delete(LoginSession).where(LoginSession.token == token))
        db.session.commit()
    logout_user()


def _safe_next(target: str | None) -> str:
    """``target`` as a URL on this site if it is one, else the dashboard (no open redirects)."""
    return safe_url(target, fallback=url_for("notes.dashboard"))


@blueprint.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    """Create an account and sign in."""
    if current_user.is_authenticated:
        return redirect(url_for("notes.dashboard"))
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST":
        name = form.get("name", "").strip()
        email = form.get("email", "").strip().lower()
        password = form.get("password", "")
        if not name:
            errors["name"] = "Tell us what to call you."
        if "@" not in email or "." not in email.rsplit("@", 1)[-1]:
            errors["email"] = "Enter a valid email address."
        elif db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
            errors["email"] = "An account with this email already exists. Log in instead?"
        if len(password) < MIN_PASSWORD_LENGTH:
            errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
        if not errors:
            user = User(name=name[:120], email=email)
            user.set_password(password)
            db.session.add(user)
            db.session.commit()
            sign_in(user)
            flash(f"Welcome to Quillnote, {user.name}! Write your first note below.", "success")
            return redirect(url_for("notes.dashboard"))
    status = 400 if errors else 200
    return render_template("auth/signup.html", errors=errors, form=form), status


@blueprint.route("/login", methods=["GET", "POST"])
@throttle_sign_in
def login() -> ResponseReturnValue:
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    error = None
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None and user.check_password(request.form.get("password", "")):
            sign_in(user, remember=bool(request.form.get("remember")))
            return redirect(_safe_next(request.args.get("next")))
        error = "That email and password do not match an account."
    status = 400 if error else 200
    return render_template("auth/login.html", error=error, form=request.form), status


@blueprint.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Sign out (a POST, so another site cannot log you out)."""
    sign_out()
    flash("You are signed out.", "info")
    return redirect(url_for("site.home"))
