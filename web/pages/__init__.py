"""The pages staff use every day: server-rendered HTML in the GOV.UK Design System's patterns.

Each module holds one page's routes (or a few that belong together); :mod:`web.pages.rendering`
holds what they share: the templates, who is signed in, notices after a form, paging. Pages read
and act through :mod:`services` only, as the signed-in member of staff, so each shows only what
that person may see. Every action is a plain HTML form: nothing needs JavaScript.
"""
