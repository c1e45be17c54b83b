"""Configuration: settings from the environment, the shipped policy file, and (later) the Celery app.

Nothing here reads the environment at import time; call :func:`config.settings.get_settings`.
"""
