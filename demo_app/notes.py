"""The product: the landing page, the dashboard, notes, export (Pro) and team seats (Team)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from flask_lattice import requires_feature, requires_plan

from .extensions import billing, db, login_required
from .models import Note, TeamMember, User
from .settings import FREE_NOTE_LIMIT

site = Blueprint("site", __name__)
blueprint = Blueprint("notes", __name__)

MAX_TITLE = 200
#: The export's file name, as the export page and the download both give it.
EXPORT_FILENAME = "quillnote-notes.md"


@site.get("/")
def home() -> ResponseReturnValue:
    """The landing page."""
    return render_template("home.html")


def _user() -> User:
    user: User = current_user._get_current_object()
    return user


def note_limit() -> int | None:
    """How many notes the current plan keeps (``None``: unlimited)."""
    return None if billing.has_feature("unlimited_notes") else FREE_NOTE_LIMIT


def _own_note(note_id: int) -> Note:
    note = db.session.get(Note, note_id)
    if note is None or note.owner_id != _user().id:
        abort(404, description="There is no such note in your account.")
    return note


@blueprint.get("/dashboard")
@login_required
def dashboard() -> ResponseReturnValue:
    """The user's notes, plan and usage."""
    return render_template("dashboard.html", notes=_user().notes, limit=note_limit())


@blueprint.post("/notes")
@login_required
def create() -> ResponseReturnValue:
    """Add a note, unless the Free plan's limit is reached.

    At the limit (a form from a tab opened before the last notes were saved, say) the
    typed title and body come back in a form, with why they were not saved: 402.
    """
    user = _user()
    limit = note_limit()
    title = request.form.get("title", "")
    body = request.form.get("body", "")
    if limit is not None and len(user.notes) >= limit:
        page = render_template(
            "notes/unsaved.html", title=title, body=body, limit=limit, count=len(user.notes)
        )
        return page, 402
    note = Note(owner=user, title=title.strip()[:MAX_TITLE] or "Untitled note", body=body)
    db.session.add(note)
    db.session.commit()
    flash(f"Saved “{note.title}”.", "success")
    return redirect(url_for("notes.dashboard"))


@blueprint.route("/notes/<int:note_id>", methods=["GET", "POST"])
@login_required
def edit(note_id: int) -> ResponseReturnValue:
    """Read and edit one note."""
    note = _own_note(note_id)
    if request.method == "POST":
        note.title = request.form.get("title", "").strip()[:MAX_TITLE] or "Untitled note"
        note.body = request.form.get("body", "")
        db.session.commit()
        flash("Note saved.", "success")
        return redirect(url_for("notes.dashboard"))
    return render_template("notes/edit.html", note=note)


@blueprint.post("/notes/<int:note_id>/delete")
@login_required
def delete(note_id: int) -> ResponseReturnValue:
    """Delete one note."""
    note = _own_note(note_id)
    db.session.delete(note)
    db.session.commit()
    flash(f"Deleted “{note.title}”.", "info")
    return redirect(url_for("notes.dashboard"))


@blueprint.get("/export")
@login_required
@requires_feature("export")
def export() -> ResponseReturnValue:
    """The export page (Pro and Team)."""
    return render_template(
        "notes/export.html", notes=_user().notes, export_filename=EXPORT_FILENAME
    )


@blueprint.get("/export/quillnote-notes.md")
@login_required
@requires_feature("export")
def export_download() -> ResponseReturnValue:
    """Every note as one Markdown file."""
    user = _user()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    parts = [f"# Quillnote export for {user.name}\n\n_Exported {stamp}_\n"]
    parts += [f"\n## {note.title}\n\n{note.body.strip()}\n" for note in user.notes]
    return Response(
        "".join(parts),
        mimetype="text/markdown",
        # The name the export page promises; the date is inside the file.
        headers={"Content-Disposition": f'attachment; filename="{EXPORT_FILENAME}"'},
    )


@blueprint.route("/team", methods=["GET", "POST"])
@login_required
@requires_plan("team")
def team() -> ResponseReturnValue:
    """Teammates, one per seat of the Team subscription (the owner takes one)."""
    user = _user()
    subscription = billing.subscription()
    seats = subscription.quantity if subscription is not None else 1
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        if "@" not in email:
            flash("Enter the teammate's email address.", "warning")
        elif any(member.email == email for member in user.members) or email == user.email:
            flash(f"{email} is already on your team.", "info")
        elif len(user.members) + 1 >= seats:
            flash("Every seat is taken. Add a seat on the billing page first.", "warning")
        else:
            db.session.add(TeamMember(owner=user, email=email))
            db.session.commit()
            flash(f"Invited {email}.", "success")
        return redirect(url_for("notes.team"))
    return render_template("team.html", members=user.members, seats=seats)


@blueprint.post("/team/<int:member_id>/remove")
@login_required
@requires_plan("team")
def remove_member(member_id: int) -> ResponseReturnValue:
    """Free a seat."""
    member = db.session.scalar(
        sa.select(TeamMember).where(TeamMember.id == member_id, TeamMember.owner_id == _user().id)
    )
    if member is None:
        abort(404, description="There is no such teammate.")
    db.session.delete(member)
    db.session.commit()
    flash(f"Removed {member.email}.", "info")
    return redirect(url_for("notes.team"))
