"""What an upload is, from its first bytes: mzML, gzip-compressed mzML, MGF (or gzip MGF)."""

from __future__ import annotations

import zlib

SNIFF_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


def _text_format(head: bytes) -> str | None:
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if b"<mzML" in head or b"<indexedmzML" in head:
        return "mzml"
    for line in head.splitlines():
        line = line.strip()
        if not line or line.startswith((b"#", b";", b"!", b"/")) or b"=" in line.split(b" ")[0]:
            continue  # comments and global MGF parameters (CHARGE=2+)
        if line.upper() != b"BEGIN IONS":
            return None
        return None if _is_msalign(head) else "mgf"
    return None


def _is_msalign(head: bytes) -> bool:
    """An msalign file (TopFD's, FLASHDeconv's): MGF-like blocks of deconvolved neutral masses,
    which the engine refuses (read as MGF, the masses would pass for m/z values). The engine's
    rule (``is_msalign`` in core/src/io.rs): a header comment naming msalign, or a first block
    with ``PRECURSOR_MASS``, ``MS_ONE_ID`` or ``FRACTION_ID`` and no ``PEPMASS``."""
    lines = iter(line.strip() for line in head.splitlines())
    for line in lines:
        if line.upper() == b"BEGIN IONS":
            break
        if line.startswith(b"#") and b"msalign" in line.lower():
            return True
    block = []
    for line in lines:
        if line.upper() == b"END IONS":
            break
        block.append(line)
    keys = {line.split(b"=", 1)[0] for line in block if b"=" in line}
    return b"PEPMASS" not in keys and bool(keys & {b"PRECURSOR_MASS", b"MS_ONE_ID", b"FRACTION_ID"})


def sniff(head: bytes) -> str | None:
    """``"mzml"``, ``"mzml.gz"``, ``"mgf"``, ``"mgf.gz"`` or None, from the first
    :data:`SNIFF_BYTES` bytes of a file (fewer when the file is smaller)."""
    if head.startswith(GZIP_MAGIC):
        try:
            inner = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return None
        fmt = _text_format(inner)
        return None if fmt is None else fmt + ".gz"
    return _text_format(head)


def _inner(head: bytes) -> bytes:
    """The text of ``head``, decompressed when it is gzip (as far as it goes)."""
    if head.startswith(GZIP_MAGIC):
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return b""
    return head


def refusal(filename: str, head: bytes) -> str:
    """Why an upload whose :func:`sniff` is None is refused, in words that say what to do."""
    if _is_msalign(_inner(head)):
        return (f"upload {filename!r} is an msalign file (deconvolved masses from TopFD or "
                "FLASHDeconv), not spectra; mzforge deconvolves spectra itself: upload the mzML "
                "or MGF run the masses came from")
    return f"upload {filename!r} is not mzML, mzML.gz or MGF"
