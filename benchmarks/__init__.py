"""Performance targets for caseloop, with the figures they print (``make bench``, ``make bench-quick``)."""
