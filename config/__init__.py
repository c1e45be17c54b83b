"""Configuration: settings from the environment, the shipped policy file, the Celery app, queue and
task names, and the composition point (:mod:`config.wiring`).

Nothing here reads the environment at import time; call :func:`config.settings.get_settings`.
"""
