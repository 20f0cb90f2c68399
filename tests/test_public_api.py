"""The public API: ``flask_lattice.__all__``, the API reference page and the docstrings."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import flask_lattice

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
DIRECTIVE = re.compile(r"^\.\. auto(?:class|function|data|module):: flask_lattice\.(\w+)$", re.M)


def test_the_api_page_documents_exactly_all() -> None:
    documented = DIRECTIVE.findall(API_PAGE.read_text())
    assert len(documented) == len(set(documented)), "a name is documented twice"
    assert sorted(documented) == sorted(flask_lattice.__all__)


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in flask_lattice.__all__:
        assert getattr(flask_lattice, name) is not None, name


def test_every_public_class_and_function_has_a_docstring() -> None:
    missing = [
        name
        for name in flask_lattice.__all__
        if (inspect.isclass(value := getattr(flask_lattice, name)) or inspect.isfunction(value))
        and not (value.__doc__ or "").strip()
    ]
    assert missing == []


def test_every_exception_is_under_one_root() -> None:
    exceptions = [
        value
        for name in flask_lattice.__all__
        if inspect.isclass(value := getattr(flask_lattice, name)) and issubclass(value, Exception)
    ]
    assert len(exceptions) > 10
    assert all(issubclass(error, flask_lattice.LatticeError) for error in exceptions)
    http_errors = [
        error for error in exceptions if issubclass(error, flask_lattice.BillingHTTPError)
    ]
    assert all(400 <= error.code < 600 for error in http_errors if error.code is not None)
