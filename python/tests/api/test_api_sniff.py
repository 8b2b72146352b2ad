"""What an upload is, from its first bytes (mzforge.api.sniff), for the compressed forms that need
more than a look at the bytes, bzip2 in particular; and the streamed upload that hands the sniff
its head (mzforge.api.uploads)."""

from __future__ import annotations

import asyncio
import bz2
import gzip
import random
from pathlib import Path

from starlette.requests import Request

from mzforge.api.sniff import SNIFF_BYTES, head_bytes, refusal, sniff
from mzforge.api.uploads import receive_upload

MGF = b"# made by a test\nBEGIN IONS\nTITLE=one\nPEPMASS=445.12\nCHARGE=2+\n100.0 5.0\n200.0 7.5\nEND IONS\n"
MSALIGN = b"BEGIN IONS\nID=0\nSCANS=1\nMS_ONE_ID=0\nPRECURSOR_MASS=1000.5\n500.2\t100\t1\nEND IONS\n"


def test_a_bzip2_mgf_is_mgf_bz2() -> None:
    assert sniff(bz2.compress(MGF)) == "mgf.bz2"
    assert sniff(bz2.compress(MGF, compresslevel=1)) == "mgf.bz2"
    assert sniff(gzip.compress(MGF)) == "mgf.gz" and sniff(MGF) == "mgf"  # as before


def test_a_bzip2_msalign_is_refused_for_what_it_is() -> None:
    head = bz2.compress(MSALIGN)
    assert sniff(head) is None
    assert refusal("masses.mgf.bz2", head).startswith("upload 'masses.mgf.bz2' is an msalign file")


def test_bzip2_text_that_is_not_spectra_is_refused_naming_what_is_accepted() -> None:
    head = bz2.compress(b"hello, not spectra\n" * 100)
    assert sniff(head) is None
    assert refusal("notes.txt.bz2", head) == ("upload 'notes.txt.bz2' is not mzML or MGF (plain, gzip- "
                                              "or bzip2-compressed)")


def test_a_damaged_or_cut_bzip2_stream_is_refused_as_such() -> None:
    whole = bz2.compress(MGF * 50)
    # Cut inside its one block, cut after the header, zeros over the block's start (its checksum).
    for head in (whole[:len(whole) // 2], whole[:30], whole[:4] + bytes(40) + whole[44:]):
        assert sniff(head) is None
        assert refusal("x.mgf.bz2", head) == ("upload 'x.mgf.bz2' is bzip2-compressed but cannot be "
                                              "decompressed: it is damaged or cut short")


def test_the_head_of_a_bzip2_file_holds_its_first_block_even_when_nothing_compresses() -> None:
    """bzip2 gives no text until its first block is read whole: the head must hold it, for text
    that does not compress at all too (the worst case for the block's compressed size)."""
    noise = random.Random(7).randbytes(1_000_000)  # more than a block of the largest size
    for level in (1, 5, 9):
        stream = bz2.compress(noise, compresslevel=level)
        needed = head_bytes(stream[:4])
        assert needed >= SNIFF_BYTES
        assert bz2.BZ2Decompressor().decompress(stream[:needed], max_length=1) != b"", level
    # The head of other files stays the first 64 KiB; "BZh0" is no bzip2 block size.
    assert head_bytes(gzip.compress(MGF)) == head_bytes(MGF) == head_bytes(b"BZh0" + MGF) == SNIFF_BYTES


def mgf_of_random_peaks(n: int) -> bytes:
    """An MGF that compresses about as badly as real peak lists do (to 40-50%)."""
    rng = random.Random(11)
    peaks = b"".join(b"%.5f %.1f\n" % (rng.uniform(100, 2000), rng.uniform(1, 1e6)) for _ in range(n))
    return b"BEGIN IONS\nPEPMASS=445.12\n" + peaks + b"END IONS\n"


def test_a_bzip2_file_longer_than_its_head_is_sniffed_from_the_head() -> None:
    """What the upload hands over: the first head_bytes() bytes of a stream that goes on."""
    stream = bz2.compress(mgf_of_random_peaks(200_000))
    head = stream[:head_bytes(stream)]
    assert len(head) < len(stream)
    assert sniff(stream[:SNIFF_BYTES]) is None  # the first 64 KiB alone hold no whole block
    assert sniff(head) == "mgf.bz2"


def test_an_upload_arriving_in_pieces_waits_for_the_first_bzip2_block(tmp_path: Path) -> None:
    """A server hands the body on in pieces of 64 KiB or less (the test client passes it whole):
    the sniff must wait for bzip2's first block, not decide at the first 64 KiB."""
    data = bz2.compress(mgf_of_random_peaks(20_000))  # one block, about 160 kB compressed
    assert len(data) > 2 * SNIFF_BYTES
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="peaks.mgf.bz2"\r\n\r\n'
            + data + b"\r\n--XyZ--\r\n")
    pieces = [body[i:i + 16384] for i in range(0, len(body), 16384)]

    async def receive() -> dict:
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    request = Request({"type": "http", "method": "POST", "path": "/v1/uploads",
                       "headers": [(b"content-type", b"multipart/form-data; boundary=XyZ")]}, receive)
    got = asyncio.run(receive_upload(request, max_bytes=10**8, staging=tmp_path))
    assert got.format == "mgf.bz2"
    assert got.path.read_bytes() == data and got.size == len(data)
