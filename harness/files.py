"""File writes: one atomic-write helper for results, reports and compare outputs.

Readers (a report link, a nightly job, a crash) never see half a file. A symlink is written
through (its target is replaced, the link stays), and a FIFO, a terminal or /dev/stdout is
written to directly: renaming over them would replace the user's plumbing with a plain file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import InputError


def write_atomic_bytes(path: Path, data: bytes) -> Path:
    """Write to a temp file in the target's folder, fsync, rename over the target."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except OSError:
        mode = None
    try:
        if mode is not None and not stat.S_ISREG(mode):
            if stat.S_ISDIR(mode):
                raise InputError(f"{path}: is a folder; give a file name")
            with open(target, "wb") as f:  # FIFO, character device, /dev/stdout
                f.write(data)
            return path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; results and reports are meant to be shared
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
    return path


def write_atomic_text(path: Path, text: str) -> Path:
    return write_atomic_bytes(path, text.encode("utf-8"))
