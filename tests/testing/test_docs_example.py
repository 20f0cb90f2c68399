"""The testing page's example app, conftest and tests run as written, in a folder of
their own, through the plugin as a host would load it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.docs import files
from tests.helpers.support import run_pytest


def _write_example(folder: Path) -> dict[str, str]:
    example = files("testing.md")
    assert set(example) == {"acme.py", "conftest.py", "test_billing.py"}
    for name, source in example.items():
        (folder / name).write_text(source)
    return example


def test_the_example_passes_with_pytest_plugins(tmp_path: Path) -> None:
    _write_example(tmp_path)
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_the_ini_flag_turns_the_plugin_on_and_it_is_off_otherwise(tmp_path: Path) -> None:
    example = _write_example(tmp_path)
    conftest = example["conftest.py"].replace(
        'pytest_plugins = ["flask_lattice.testing.plugin"]\n', ""
    )
    assert conftest != example["conftest.py"]
    (tmp_path / "conftest.py").write_text(conftest)

    off = run_pytest(tmp_path, "-k", "pro_subscriber")
    assert off.returncode != 0
    assert "fixture 'lattice_config' not found" in off.stdout

    (tmp_path / "pytest.ini").write_text("[pytest]\nlattice_fixtures = true\n")
    on = run_pytest(tmp_path, "-k", "pro_subscriber")
    assert on.returncode == 0, on.stdout + on.stderr
    assert "1 passed" in on.stdout


def test_the_sandbox_page_example_passes(tmp_path: Path) -> None:
    example = files("sandbox.md")
    assert set(example) == {"test_sandbox_example.py"}
    (tmp_path / "test_sandbox_example.py").write_text(example["test_sandbox_example.py"])
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
