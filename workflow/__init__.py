"""The domain of caseloop: events, the case lifecycle, the working-day calendar, clocks, duties,
staff and reminders.

Nothing in this package imports Celery, Jinja2, HTTP code or any outer layer; it announces what
happened on the bus (:mod:`workflow.bus`) and the services act on it.
"""
