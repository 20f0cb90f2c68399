"""The ``pytest11`` entry point: loads :mod:`flask_lattice.testing.plugin` only when the
host asks for it with ``lattice_fixtures = true`` in its pytest configuration.

Installing Flask-Lattice therefore adds no fixtures to anyone's test run by itself.
"""

from __future__ import annotations

import pytest

PLUGIN = "flask_lattice.testing.plugin"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "lattice_fixtures",
        type="bool",
        default=False,
        help="Load Flask-Lattice's fixtures (flask_lattice.testing.plugin).",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getini("lattice_fixtures") and not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
