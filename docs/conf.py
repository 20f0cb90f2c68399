"""Sphinx configuration for the Flask-Lattice documentation."""

project = "Flask-Lattice"
author = "The Flask-Lattice maintainers"
copyright = "2026, " + author
extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "Flask-Lattice"
myst_heading_anchors = 3
autodoc_typehints = "description"
