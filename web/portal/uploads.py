"""Upload handling: a size-capped temporary-file handler and the content check.

Files arrive one per request from the upload page (XHR with a progress bar). Django spools each
to a temporary file on disk (never to memory), the content is sniffed from its first bytes, then
the file is streamed to the API from disk.
"""

from __future__ import annotations

import zlib
from typing import IO

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

ALLOWED_SUFFIXES = (".mzml", ".mzml.gz", ".mgf", ".mgf.gz")
SNIFF_BYTES = 64 * 1024
MSALIGN = ("'{name}' is an msalign file (deconvolved masses from TopFD or FLASHDeconv), not MGF spectra; "
           "mzforge deconvolves spectra itself: upload the mzML (or MGF) run the masses came from.")


class UploadTooLarge(Exception):
    pass


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Always writes to a temporary file and stops reading once the file passes the limit."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.MZFORGE_MAX_UPLOAD_BYTES:
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def is_msalign(head: bytes) -> bool:
    """An msalign file (TopFD's, FLASHDeconv's): MGF-like blocks of deconvolved neutral masses,
    which the engine refuses. The API's rule (mzforge.api.sniff): a comment naming msalign before
    the first block, or a first block with PRECURSOR_MASS, MS_ONE_ID or FRACTION_ID and no PEPMASS."""
    lines = iter(line.strip() for line in head.splitlines())
    for line in lines:
        if line.upper() == b"BEGIN IONS":
            break
        if line.startswith(b"#") and b"msalign" in line.lower():
            return True
    keys = set()
    for line in lines:
        if line.upper() == b"END IONS":
            break
        if b"=" in line:
            keys.add(line.split(b"=", 1)[0].upper())
    return b"PEPMASS" not in keys and bool(keys & {b"PRECURSOR_MASS", b"MS_ONE_ID", b"FRACTION_ID"})


def sniff_format(name: str, head: bytes) -> str:
    """Returns "mzml", "mzml.gz", "mgf" or "mgf.gz" from the first bytes of a file, or raises ValueError
    with a message for the person who uploaded it. The file name's ending must agree."""
    lower = name.lower()
    if not lower.endswith(ALLOWED_SUFFIXES):
        raise ValueError(
            f"'{name}' is not an mzML or MGF file: the name must end in .mzML, .mzML.gz, .mgf or .mgf.gz."
        )
    if not head:
        raise ValueError(f"'{name}' is empty.")
    if head[:2] == b"\x1f\x8b":
        try:
            text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            raise ValueError(f"'{name}' looks gzip-compressed but cannot be decompressed; it may be damaged.") from None
        if b"<mzML" in text or b"<indexedmzML" in text:
            if not lower.endswith(".mzml.gz"):
                raise ValueError(f"'{name}' holds gzip-compressed mzML; its name should end in .mzML.gz.")
            return "mzml.gz"
        if b"BEGIN IONS" in text:
            if is_msalign(text):
                raise ValueError(MSALIGN.format(name=name))
            if not lower.endswith(".mgf.gz"):
                raise ValueError(f"'{name}' holds gzip-compressed MGF; its name should end in .mgf.gz.")
            return "mgf.gz"
        raise ValueError(f"'{name}' is gzip-compressed but holds neither mzML nor MGF.")
    if lower.endswith(".gz"):
        raise ValueError(f"'{name}' ends in .gz but is not gzip-compressed.")
    if b"<mzML" in head or b"<indexedmzML" in head:
        if lower.endswith(".mgf"):
            raise ValueError(f"'{name}' holds mzML but its name ends in .mgf; rename it to .mzML.")
        return "mzml"
    if b"BEGIN IONS" in head:
        if is_msalign(head):
            raise ValueError(MSALIGN.format(name=name))
        if not lower.endswith(".mgf"):
            raise ValueError(f"'{name}' holds MGF but its name does not end in .mgf; rename it.")
        return "mgf"
    if lower.endswith(".mgf"):
        raise ValueError(f"'{name}' is not an MGF file: no 'BEGIN IONS' block near its start.")
    raise ValueError(f"'{name}' is not mzML: no <mzML> element near its start.")


def read_head(fileobj: IO[bytes]) -> bytes:
    fileobj.seek(0)
    head = fileobj.read(SNIFF_BYTES)
    fileobj.seek(0)
    return head


__all__ = ["LimitedTemporaryFileUploadHandler", "UploadTooLarge", "human_size", "read_head", "sniff_format"]
