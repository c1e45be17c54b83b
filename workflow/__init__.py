"""The domain of caseloop: events, the case lifecycle, the working-day calendar and clocks.

Nothing in this package imports Celery, Jinja2 or an HTTP framework; entry points call into it.
"""
