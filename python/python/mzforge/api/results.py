"""Result tables of a succeeded analysis: every input's Parquet file, with an ``upload_id``
column in front, filtered by upload, spectrum index, m/z and retention time (which leaves out
spectra without one: null ``rt_seconds``), served as Parquet, CSV or paged JSON."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .db import Analysis
from .storage import LocalStorage, Storage

TABLES = ("spectra", "peaks", "features")


@dataclass
class Filters:
    upload_id: int | None = None
    spectrum_index: int | None = None
    min_mz: float | None = None
    max_mz: float | None = None
    min_rt: float | None = None
    max_rt: float | None = None

    @property
    def needs_rt(self) -> bool:
        return self.min_rt is not None or self.max_rt is not None


def read_input_table(storage: Storage, prefix: str, table: str) -> pa.Table:
    key = f"{prefix}{table}.parquet"
    if isinstance(storage, LocalStorage):
        return pq.read_table(storage.path("results", key), memory_map=True)
    data = storage.get_bytes("results", key)
    if data is None:
        raise FileNotFoundError(key)
    return pq.read_table(io.BytesIO(data))


def _rt_mask(t: pa.Table, f: Filters) -> Any:
    """The spectra within the retention-time bounds; a spectrum without one (null
    ``rt_seconds``: its file gives none) is not within any."""
    mask = None
    if f.min_rt is not None:
        mask = pc.fill_null(pc.greater_equal(t["rt_seconds"], f.min_rt), False)
    if f.max_rt is not None:
        m = pc.fill_null(pc.less_equal(t["rt_seconds"], f.max_rt), False)
        mask = m if mask is None else pc.and_(mask, m)
    return mask


def load(storage: Storage, analysis: Analysis, table: str, f: Filters) -> pa.Table:
    parts = []
    for item in analysis.inputs:
        if f.upload_id is not None and item["upload_id"] != f.upload_id:
            continue
        prefix = item.get("result_prefix")
        if not prefix:
            continue
        t = read_input_table(storage, prefix, table)
        if f.spectrum_index is not None:
            t = t.filter(pc.equal(t["spectrum_index"], f.spectrum_index))
        mz_col = "precursor_mz" if table == "spectra" else "mz"
        if f.min_mz is not None:
            t = t.filter(pc.fill_null(pc.greater_equal(t[mz_col], f.min_mz), False))
        if f.max_mz is not None:
            t = t.filter(pc.fill_null(pc.less_equal(t[mz_col], f.max_mz), False))
        if f.needs_rt:
            spectra = t if table == "spectra" else read_input_table(storage, prefix, "spectra")
            mask = _rt_mask(spectra, f)
            if table == "spectra":
                t = t.filter(mask)
            else:
                keep = spectra.filter(mask)["spectrum_index"]
                t = t.filter(pc.is_in(t["spectrum_index"], value_set=keep.combine_chunks()))
        t = t.add_column(0, "upload_id", pa.repeat(pa.scalar(item["upload_id"], pa.int64()), t.num_rows))
        parts.append(t)
    if not parts:
        raise LookupError("no results for these inputs")
    return pa.concat_tables(parts)


def write_file(t: pa.Table, fmt: str, directory: Any = None) -> str:
    """``t`` as a Parquet or CSV temporary file; returns its path (the caller deletes it)."""
    import os
    import tempfile

    if directory is not None:
        os.makedirs(directory, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="result-", suffix=f".{fmt}", dir=directory)
    with os.fdopen(fd, "wb") as f:
        if fmt == "parquet":
            pq.write_table(t, f, compression="zstd")
        else:
            pacsv.write_csv(t, f)
    return path


def to_parquet(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf, compression="zstd")
    return buf.getvalue()


def to_csv(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(t, buf)
    return buf.getvalue()


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def to_json_page(t: pa.Table, limit: int, offset: int) -> dict[str, Any]:
    page = t.slice(offset, limit)
    columns = page.column_names
    cols = [page[c].to_pylist() for c in columns]
    rows = [[_clean(v) for v in row] for row in zip(*cols)] if cols else []
    return {"columns": columns, "rows": rows, "total": t.num_rows, "limit": limit, "offset": offset}
