"""Fetch one file from a list of mirrors, never leaving unverified bytes at the destination."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from mnistlab.common.atomic import atomic_path
from mnistlab.common.errors import DatasetError

CHUNK_BYTES = 1 << 16
TIMEOUT_SECONDS = 30


def mirror_url(base: str, file_name: str) -> str:
    """`file_name` under the mirror `base` (an http or https URL, with or without a trailing "/");
    `DatasetError` naming the mirror if it is not such a URL."""
    try:
        parts = urllib.parse.urlsplit(base)
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as error:
        raise DatasetError(f"--mirror {base[:200]}: not a valid URL ({error}); give a base URL such as "
                           f"https://example.org/mnist/") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise DatasetError(f"--mirror {base[:200]}: not an http:// or https:// base URL; give one such as "
                           f"https://example.org/mnist/")
    return base.rstrip("/") + "/" + file_name


def download_verified(
    urls: Sequence[str],
    destination: Path,
    gz_checksums: dict[str, str],
    verify_payload: Callable[[Path], None],
    progress: bool = True,
) -> None:
    """Download to `destination` from the first of `urls` whose bytes pass every check.

    `gz_checksums` maps a hashlib algorithm name ("md5", "sha256") to the
    expected hex digest of the downloaded bytes; `verify_payload(path)` raises
    `DatasetError` when the decompressed content is wrong. Each attempt writes
    to a temporary file beside `destination` that is renamed into place only
    after it passes, so a failure leaves the destination as it was.
    """
    failures = []
    for url in urls:
        try:
            with atomic_path(destination) as temporary:
                digests = _fetch(url, temporary, list(gz_checksums), progress)
                for algorithm, expected in gz_checksums.items():
                    if digests[algorithm] != expected:
                        raise DatasetError(f"{algorithm} {digests[algorithm]} does not match the pinned {expected}")
                verify_payload(temporary)
            return
        except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError, DatasetError) as error:
            failures.append(f"{url} ({_describe(error)})")
    raise DatasetError(
        f"{destination.name}: could not download a verified copy; tried {'; '.join(failures)}. "
        f"Check the network, run 'mnistlab data fetch {destination.parent.name} --mirror URL', or copy the files into a folder "
        f"and set MNISTLAB_DATA_DIR"
    )


def _fetch(url: str, path: Path, algorithms: list[str], progress: bool) -> dict[str, str]:
    """Stream `url` into `path`, returning the hex digests of the bytes received."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    request = urllib.request.Request(url, headers={"User-Agent": "mnistlab"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response, open(path, "wb") as output:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=path.name.split(".")[1],
                  disable=None if progress else True) as bar:  # None: no bar when stderr is not a terminal
            while chunk := response.read(CHUNK_BYTES):
                output.write(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                bar.update(len(chunk))
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _describe(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__

