"""Performance targets for caseloop, with the figures they print (``make benchmark``)."""
