"""Write files so that readers see either the old file or the complete new one, never half."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from mnistlab.common.errors import ConfigError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.part"
    # Created here (exclusively, so no other file is overwritten) with the usual permissions: mode 0o666 less the umask.
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def same_file(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Do both paths name one existing file (the same inode: through links, `..` or a different spelling)?"""
    try:
        return os.path.samefile(first, second)
    except OSError:  # either is missing or unreadable: they cannot be shown to be one file
        return False


def check_output_file(path: str | os.PathLike, flag: str, inputs: Sequence[str | os.PathLike] = (),
                      force: bool = False, example: str = "NAME") -> Path:
    """Refuse an output path that would replace what the command did not create; return it as a `Path`.

    Refused always: a folder, anything but a regular file (a device such as /dev/null, a pipe), and any of
    the command's `inputs`. Refused unless `force`: an existing file. `flag` names the path in the message,
    `example` the file name it suggests inside a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give the file to write, e.g. {path / example}")
    if os.path.lexists(path) and not path.is_file() and not path.is_symlink():
        raise ConfigError(f"{flag} {path}: exists and is not a regular file; give a new file name")
    for source in inputs:
        if same_file(path, source):
            raise ConfigError(f"{flag} {path}: is the input {source} itself; give another file name for the output")
    if os.path.lexists(path) and not force:
        raise ConfigError(f"{flag} {path}: exists already; give a new file name, or add --force to replace it")
    return path
