"""Streamed multipart uploads: the request body is parsed as it arrives (python-multipart's
push parser), the file part is sniffed from its first 64 KiB (a bzip2 file's from its whole first
block, up to about 900 kB: see sniff.head_bytes), hashed and written to a staging file chunk by
chunk, and refused as soon as it is too large or not mzML/MGF. Nothing is held whole in memory;
nothing partial is kept."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .sniff import SNIFF_BYTES, head_bytes, refusal, sniff


class UploadRejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Received:
    filename: str
    size: int
    sha256: str
    format: str
    path: Path


def clean_filename(name: str) -> str:
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return (name.replace("\\", "/").rsplit("/", 1)[-1] or "upload")[:255]


async def receive_upload(request: Request, max_bytes: int, staging: Path) -> Received:
    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in opts:
        raise UploadRejected(415, "expected a multipart/form-data body with the file in field 'file'")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + SNIFF_BYTES:
        raise UploadRejected(413, f"upload of {int(length)} bytes is larger than the limit of {max_bytes} bytes")

    state: dict = {"headers": {}, "field": b"", "value": b"", "in_file": False, "done": False,
                   "filename": None, "head": bytearray(), "format": None, "size": 0, "file": None}
    sha = hashlib.sha256()
    staging.mkdir(parents=True, exist_ok=True)

    def write(data: bytes) -> None:
        f: IO[bytes] = state["file"]
        f.write(data)
        sha.update(data)

    def decide() -> None:
        head = bytes(state["head"])
        fmt = sniff(head)
        if fmt is None:
            raise UploadRejected(415, refusal(state["filename"], head))
        state["format"] = fmt
        state["file"] = tempfile.NamedTemporaryFile(dir=staging, prefix="upload-", delete=False)
        write(head)
        state["head"] = bytearray()

    def on_part_begin() -> None:
        state["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        disp, params = parse_options_header(state["headers"].get(b"content-disposition", b""))
        is_file = params.get(b"name") == b"file" and not state["done"] and state["filename"] is None
        state["in_file"] = is_file
        if is_file:
            raw = params.get(b"filename", b"upload")
            state["filename"] = clean_filename(raw.decode("utf-8", "replace"))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if not state["in_file"]:
            return
        chunk = data[start:end]
        state["size"] += len(chunk)
        if state["size"] > max_bytes:
            raise UploadRejected(413, f"upload {state['filename']!r} is larger than the limit of {max_bytes} bytes")
        if state["format"] is None:
            state["head"] += chunk
            if len(state["head"]) >= head_bytes(state["head"]):
                decide()
        else:
            write(chunk)

    def on_part_end() -> None:
        if state["in_file"]:
            if state["format"] is None:
                decide()
            state["in_file"] = False
            state["done"] = True

    parser = MultipartParser(opts[b"boundary"], {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if not state["done"]:
            raise UploadRejected(422, "the multipart body has no complete field 'file'")
    except UploadRejected:
        _discard(state)
        raise
    except Exception as e:  # malformed multipart
        _discard(state)
        raise UploadRejected(400, f"malformed multipart body: {e}") from None
    state["file"].close()
    return Received(filename=state["filename"], size=state["size"], sha256=sha.hexdigest(),
                    format=state["format"], path=Path(state["file"].name))


def _discard(state: dict) -> None:
    f = state.get("file")
    if f is not None:
        f.close()
        try:
            os.unlink(f.name)
        except FileNotFoundError:
            pass
