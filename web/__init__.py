"""caseloop over HTTP: the integration API, operations endpoints and, later, the staff pages.

Every route calls the services (never the database directly), as the CLI does.
"""
