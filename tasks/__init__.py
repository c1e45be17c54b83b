"""Celery tasks: thin entry points that take ids and call a service as caseloop itself."""
