"""The ``caseloop`` command line: an entry point that calls the workflow services."""
