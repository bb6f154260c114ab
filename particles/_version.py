"""The package version (read by the build backend and written into every file)."""

__version__ = "0.1.0"
