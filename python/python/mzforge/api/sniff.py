"""What an upload is, from its first bytes: mzML or MGF, plain, gzip- or bzip2-compressed."""

from __future__ import annotations

import bz2
import zlib

SNIFF_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# "BZh" and the block size in hundreds of kB, "1" to "9" (the engine's rule, core/src/io/mod.rs).
BZIP2_MAGIC = b"BZh"
BZIP2_BLOCK_SIZE_DIGITS = b"123456789"
# What a compressed upload's format adds to its text's: "mzml.gz", "mgf.bz2".
COMPRESSION_SUFFIXES = {"gzip": ".gz", "bzip2": ".bz2"}


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
    rule (``is_msalign`` in core/src/io/mod.rs): a header comment naming msalign, or a first block
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


def _bzip2_block_size_digit(head: bytes) -> int | None:
    """The block size (in hundreds of kB) a bzip2 stream declares, or None when ``head`` does
    not start a bzip2 stream."""
    digit = head[3:4]
    if head.startswith(BZIP2_MAGIC) and len(digit) == 1 and digit in BZIP2_BLOCK_SIZE_DIGITS:
        return int(digit)
    return None


def _compression(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if _bzip2_block_size_digit(head) is not None:
        return "bzip2"
    return None


def head_bytes(head: bytes) -> int:
    """How many first bytes of a file :func:`sniff` needs, judged from its first few (at least
    4): :data:`SNIFF_BYTES`, but for bzip2 its whole first block. bzip2 gives no text until a
    block has been read to its end, and a block holds up to 900 kB of text (``-9``, the
    default), which compresses to nearly as much when it does not compress well: from the first
    64 KiB of a real run, bzip2 gives nothing at all. bzip2's manual bounds the compressed size
    at the text's plus 1% and 600 bytes; 1 KiB covers those and the stream's header."""
    digit = _bzip2_block_size_digit(head)
    if digit is None:
        return SNIFF_BYTES
    return max(SNIFF_BYTES, digit * 101_000 + 1024)


def _inner(head: bytes) -> bytes | None:
    """The first :data:`SNIFF_BYTES` of the text in ``head``: decompressed when it is gzip or
    bzip2 (as far as it goes), None when the compressed stream is damaged, or is cut short
    before bzip2's first block ends (gzip, written as it goes, gives what it has)."""
    kind = _compression(head)
    if kind == "gzip":
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return None
    if kind == "bzip2":
        decompressor = bz2.BZ2Decompressor()
        try:
            text = decompressor.decompress(head, max_length=SNIFF_BYTES)
        except OSError:  # "Invalid data stream": a bad header, block or checksum
            return None
        # Nothing out of a stream that has not ended: its first block is incomplete (the head
        # holds a whole first block, see head_bytes, unless the file is smaller).
        return text if text or decompressor.eof else None
    return head


def sniff(head: bytes) -> str | None:
    """``"mzml"``, ``"mzml.gz"``, ``"mzml.bz2"``, ``"mgf"``, ``"mgf.gz"``, ``"mgf.bz2"`` or None,
    from the first :func:`head_bytes` bytes of a file (fewer when the file is smaller)."""
    text = _inner(head)
    fmt = None if text is None else _text_format(text)
    if fmt is None:
        return None
    return fmt + COMPRESSION_SUFFIXES.get(_compression(head), "")


def refusal(filename: str, head: bytes) -> str:
    """Why an upload whose :func:`sniff` is None is refused, in words that say what to do."""
    text = _inner(head)
    if text is not None and _is_msalign(text):
        return (f"upload {filename!r} is an msalign file (deconvolved masses from TopFD or "
                "FLASHDeconv), not spectra; mzforge deconvolves spectra itself: upload the mzML "
                "or MGF run the masses came from")
    kind = _compression(head)
    if kind is not None and text is None:
        return (f"upload {filename!r} is {kind}-compressed but cannot be decompressed: it is "
                "damaged or cut short")
    return f"upload {filename!r} is not mzML or MGF (plain, gzip- or bzip2-compressed)"
