"""Where the real data lives, and reading its files with errors that name the file and line.

Nothing is downloaded: loaders read local files under a data directory given explicitly
(``--data-dir`` on the command line, ``data_dir=`` in Python) or by the ``MTL_SCHED_DATA``
environment variable.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

DATA_DIR_ENV = "MTL_SCHED_DATA"


class DataFormatError(ValueError):
    """A data file does not have the expected format.

    :param path: the offending file.
    :param line: 1-based line number, or ``None`` when the problem concerns the whole file.
    :param message: what is wrong.
    """

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``data_dir`` when given, else ``$MTL_SCHED_DATA``.

    :param data_dir: explicit directory; wins over the environment variable.
    :raises FileNotFoundError: when neither is set or the directory does not exist.
    """
    if data_dir is None:
        from_env = os.environ.get(DATA_DIR_ENV)
        if not from_env:
            raise FileNotFoundError(
                f"no data directory: pass --data-dir DIR (data_dir= in Python) or set "
                f"{DATA_DIR_ENV} to the directory holding the datasets"
            )
        root, origin = Path(from_env), f"${DATA_DIR_ENV}"
    else:
        root, origin = Path(data_dir), "--data-dir"
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {root} (from {origin}) does not exist")
    return root


def require_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a `Path`; raises ``FileNotFoundError`` naming it when it is missing.

    :param path: the file a loader needs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing data file {path}")
    return path


def read_lines(
    path: str | os.PathLike[str], fallback_encoding: str | None = None
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a text file, without the trailing newline.

    Files ending in ``.gz`` are decompressed on the fly. Each line is decoded as UTF-8 on its
    own, so one badly encoded line (FDU-MTL's MR files hold cp1252 bytes) does not spoil the
    rest of the file.

    :param path: the file.
    :param fallback_encoding: encoding tried for a line that is not valid UTF-8; ``None``
        makes such a line an error.
    :raises DataFormatError: naming the file and line that cannot be decoded, or a ``.gz`` file
        that is not gzip data or whose stream is truncated or corrupt.
    """
    path = require_file(path)
    if path.suffix != ".gz":
        with open(path, "rb") as handle:
            yield from _decoded(path, enumerate(handle, start=1), fallback_encoding)
        return
    with gzip.open(path, "rb") as handle:
        yield from _decoded(path, _gzip_lines(path, handle), fallback_encoding)


def _gzip_lines(path: Path, handle: gzip.GzipFile) -> Iterator[tuple[int, bytes]]:
    """The numbered lines of an open gzip file; a broken stream is a `DataFormatError`."""
    number = 0
    while True:
        try:
            raw = handle.readline()
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            where = f"after line {number}" if number else "before its first line"
            raise DataFormatError(
                path, None, f"not gzip data, or its gzip stream breaks off {where} ({err})"
            ) from None
        if not raw:
            return
        number += 1
        yield number, raw


def _decoded(
    path: Path, lines: Iterator[tuple[int, bytes]], fallback_encoding: str | None
) -> Iterator[tuple[int, str]]:
    for number, raw in lines:
        raw = raw.rstrip(b"\r\n")
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as err:
            if fallback_encoding is None:
                raise DataFormatError(path, number, f"not valid UTF-8 ({err.reason})") from None
            try:
                yield number, raw.decode(fallback_encoding)
            except UnicodeDecodeError:
                raise DataFormatError(
                    path, number, f"neither UTF-8 nor {fallback_encoding}"
                ) from None
