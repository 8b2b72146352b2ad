"""Upload handling: a size-capped temporary-file handler and the content check.

Files arrive one per request from the upload page (XHR with a progress bar). Django spools each
to a temporary file on disk (never to memory), the content is sniffed from its first bytes, then
the file is streamed to the API from disk.
"""

from __future__ import annotations

import bz2
import zlib
from typing import IO

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

ALLOWED_SUFFIXES = (".mzml", ".mzml.gz", ".mzml.bz2", ".mgf", ".mgf.gz", ".mgf.bz2")
SNIFF_BYTES = 64 * 1024
# The compressions the engine reads, with the ending a compressed file's name must have.
COMPRESSION_SUFFIXES = {"gzip": ".gz", "bzip2": ".bz2"}
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


def _bzip2_block_size_digit(head: bytes) -> int | None:
    """The block size (in hundreds of kB) a bzip2 stream declares ("BZh" and "1" to "9", the
    engine's rule), or None when ``head`` does not start a bzip2 stream."""
    digit = head[3:4]
    if head.startswith(b"BZh") and len(digit) == 1 and digit in b"123456789":
        return int(digit)
    return None


def compression_of(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if _bzip2_block_size_digit(head) is not None:
        return "bzip2"
    return None


def head_bytes(head: bytes) -> int:
    """How many first bytes of a file the check needs, judged from its first few: SNIFF_BYTES, but
    for bzip2 its whole first block. bzip2 gives no text until a block has been read to its end,
    and a block holds up to 900 kB of text (``-9``, the default), which compresses to nearly as
    much when it does not compress well: from the first 64 KB of a real run, nothing. bzip2's
    manual bounds the compressed size at the text's plus 1% and 600 bytes; 1 KB covers those and
    the stream's header. (The API's rule: mzforge.api.sniff.head_bytes.)"""
    digit = _bzip2_block_size_digit(head)
    if digit is None:
        return SNIFF_BYTES
    return max(SNIFF_BYTES, digit * 101_000 + 1024)


def _decompressed(name: str, kind: str, head: bytes) -> bytes:
    """The first SNIFF_BYTES of the text in a compressed head, or ValueError when the stream is
    damaged (or, for bzip2, cut short before its first block ends: bzip2 writes a block only once
    it has read it whole)."""
    damaged = ValueError(f"'{name}' looks {kind}-compressed but cannot be decompressed; it may be damaged or cut short.")
    if kind == "gzip":
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            raise damaged from None
    decompressor = bz2.BZ2Decompressor()
    try:
        text = decompressor.decompress(head, max_length=SNIFF_BYTES)
    except OSError:  # "Invalid data stream": a bad header, block or checksum
        raise damaged from None
    if not text and not decompressor.eof:
        raise damaged
    return text


def sniff_format(name: str, head: bytes) -> str:
    """Returns "mzml", "mgf", or either with ".gz" or ".bz2", from the first bytes of a file
    (head_bytes of them), or raises ValueError with a message for the person who uploaded it. The
    file name's ending must agree."""
    lower = name.lower()
    if not lower.endswith(ALLOWED_SUFFIXES):
        raise ValueError(
            f"'{name}' is not an mzML or MGF file: the name must end in .mzML, .mzML.gz, .mzML.bz2, .mgf, "
            ".mgf.gz or .mgf.bz2."
        )
    if not head:
        raise ValueError(f"'{name}' is empty.")
    kind = compression_of(head)
    if kind is not None:
        suffix = COMPRESSION_SUFFIXES[kind]
        text = _decompressed(name, kind, head)
        if b"<mzML" in text or b"<indexedmzML" in text:
            if not lower.endswith(".mzml" + suffix):
                raise ValueError(f"'{name}' holds {kind}-compressed mzML; its name should end in .mzML{suffix}.")
            return "mzml" + suffix
        if b"BEGIN IONS" in text:
            if is_msalign(text):
                raise ValueError(MSALIGN.format(name=name))
            if not lower.endswith(".mgf" + suffix):
                raise ValueError(f"'{name}' holds {kind}-compressed MGF; its name should end in .mgf{suffix}.")
            return "mgf" + suffix
        raise ValueError(f"'{name}' is {kind}-compressed but holds neither mzML nor MGF.")
    for kind, suffix in COMPRESSION_SUFFIXES.items():
        if lower.endswith(suffix):
            raise ValueError(f"'{name}' ends in {suffix} but is not {kind}-compressed.")
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
    """The first bytes of a file the check needs (see head_bytes), the file rewound."""
    fileobj.seek(0)
    head = fileobj.read(SNIFF_BYTES)
    head += fileobj.read(head_bytes(head) - len(head))
    fileobj.seek(0)
    return head


__all__ = ["LimitedTemporaryFileUploadHandler", "UploadTooLarge", "human_size", "read_head", "sniff_format"]
