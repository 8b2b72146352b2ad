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
        return "mgf" if line.upper() == b"BEGIN IONS" else None
    return None


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
