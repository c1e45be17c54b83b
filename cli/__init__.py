"""The ``caseloop`` command line: an entry point that turns arguments into service calls."""
