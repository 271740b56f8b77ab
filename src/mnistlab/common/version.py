"""The package version, one definition for the package, checkpoints and reports (pyproject.toml has the same)."""

__version__ = "0.1.0"
