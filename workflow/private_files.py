"""Files and folders that hold personal data, made readable by their owner only.

The process's umask usually leaves new files world-readable (0644); on a shared server that
would let any account read letters, emails and the database. So these are created with their
modes given explicitly (0600 files, 0700 folders) rather than relying on the umask.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` and any missing parents, created 0700 (folders that exist are left as they are)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist (for a file another library opens)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)


def open_private(path: Path) -> int:
    """``path`` opened for writing from the start, created 0600 (an existing file keeps its mode
    but is emptied): a file descriptor for ``os.fdopen``."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)


def write_private(path: Path, data: bytes) -> None:
    with os.fdopen(open_private(path), "wb") as out:
        out.write(data)
