"""The quickstart's app, the templates page's layout and the logging page's snippet run
as written; the logging and models pages name every logger and every column."""

from __future__ import annotations

import re
from pathlib import Path
from textwrap import dedent

from flask_lattice.models import Base
from tests.helpers.docs import DOCS, code_blocks, files
from tests.helpers.support import run_pytest

ROOT = DOCS.parent

QUICKSTART_TESTS = dedent(
    """
    import pytest

    from app import create_app

    pytest_plugins = ["flask_lattice.testing.plugin"]


    @pytest.fixture
    def app(lattice_config, tmp_path):
        return create_app(
            {**lattice_config, "TESTING": True,
             "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/app.db"}
        )


    def test_the_quickstart_journey(app, lattice_catalog, lattice_subscribe):
        client = app.test_client()
        assert client.get("/dev-login/ada@example.com").status_code == 302
        pricing = client.get("/billing/pricing").get_data(as_text=True)
        assert "$12.00" in pricing and "$120.00" in pricing
        assert client.get("/reports").status_code == 302
        subscription = lattice_subscribe("user:1", "pro")
        assert subscription.status == "active"
        assert client.get("/reports").get_data(as_text=True) == "Pro reports"
        assert client.get("/export").get_data(as_text=True) == "Your export"


    def test_the_templates_page_layout(lattice_config, tmp_path, lattice_sandbox):
        app = create_app(
            {**lattice_config, "TESTING": True, "LATTICE_BASE_TEMPLATE": "layout.html",
             "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/app.db"}
        )
        page = app.test_client().get("/billing/pricing").get_data(as_text=True)
        assert "Pricing · Acme" in page and "<nav>" in page
        assert ".lattice-plans {" in page and "lattice-plan" in page
    """
)


def test_the_quickstart_app_and_the_layout_run(tmp_path: Path) -> None:
    quickstart = files("quickstart.md")
    assert set(quickstart) == {"app.py"}
    (tmp_path / "app.py").write_text(quickstart["app.py"])
    (layout,) = files("templates.md").items()
    (tmp_path / layout[0]).parent.mkdir(parents=True)
    (tmp_path / layout[0]).write_text(layout[1])
    (tmp_path / "test_quickstart.py").write_text(QUICKSTART_TESTS)
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_logging_snippet_runs() -> None:
    (snippet,) = code_blocks("logging.md")
    exec(compile(snippet, "logging.md", "exec"), {})


def test_the_logging_page_names_every_logger() -> None:
    page = (DOCS / "logging.md").read_text()
    for path in sorted((ROOT / "flask_lattice").rglob("*.py")):
        source = path.read_text()
        if not re.search(r"\blog\.(info|warning|error|exception)\(", source):
            continue
        named = re.search(r'log = logging\.getLogger\("([\w.]+)"\)', source)
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        logger = named[1] if named else module
        assert f"`{logger}`" in page, f"{logger} ({path.name}) is missing from logging.md"


def test_the_models_page_names_every_column() -> None:
    page = (DOCS / "models.md").read_text()
    for table in Base.metadata.sorted_tables:
        section = page.split(f"(`{table.name}`)", 1)[1].split("\n## ", 1)[0]
        skipped = {
            "id",
            "created_at",
            "updated_at",
            "watermark_created",
            "watermark_event_id",
            "fetched_at",
        }
        for column in table.columns:
            if column.name in skipped and table.name != "lattice_webhook_events":
                continue
            assert f"`{column.name}`" in section, f"{table.name}.{column.name}"
