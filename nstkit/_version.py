"""nstkit's version and its run record's: the one place each is written (pyproject.toml reads `__version__`;
`nstkit --version` prints it; docs/run-record.md describes each record version)."""

__version__ = "0.2.0"
RECORD_VERSION = 5  # what each version changed, and how older ones are read: `core.record._upgrade`
