"""Celery tasks: thin entry points that take ids, open a unit of work and call a service."""
