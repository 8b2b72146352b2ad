"""The public functions. Parameter names and defaults are those of ``mzforge run`` (and of
``run.json``'s ``params``); ``tests/test_api.py`` checks them against the engine's."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np

from . import _mzforge

if TYPE_CHECKING:
    import pyarrow

StrPath = str | os.PathLike[str]


def open(path: StrPath, *, on_bad_spectrum: Literal["skip", "fail"] = "skip") -> _mzforge.Reader:
    """Opens an mzML or MGF file (plain or gzip; the format is read from the content).

    The reader iterates every mass spectrum in file order (non-MS traces such as UV are left
    out, as ``mzforge run`` leaves them out); ``reader[i]`` and ``reader["native id"]`` read one
    spectrum, seeking through an offset index on plain mzML and scanning on gzip or MGF;
    ``len(reader)`` counts the spectra in the file. Use it as a context manager to close it.

    A spectrum whose arrays cannot be decoded is skipped and listed in ``reader.warnings``
    (``on_bad_spectrum="skip"``, the command line's default) or raises
    :class:`InvalidInputError` (``"fail"``).
    """
    return _mzforge.Reader(path, on_bad_spectrum)


@dataclass(frozen=True, repr=False)
class Centroids:
    """Peaks in columns: apex m/z (float64), apex intensity, signal-to-noise and full width at
    half maximum in m/z units (float32 each)."""

    mz: np.ndarray
    intensity: np.ndarray
    snr: np.ndarray
    fwhm: np.ndarray

    def __len__(self) -> int:
        return len(self.mz)

    def __repr__(self) -> str:
        return f"Centroids({len(self)} peaks)"

    def to_arrow(self) -> pyarrow.Table:
        """The peaks as a table with the columns of ``peaks.parquet`` (without
        ``spectrum_index``)."""
        import pyarrow as pa

        return pa.table(
            {"mz": self.mz, "intensity": self.intensity, "snr": self.snr, "fwhm": self.fwhm}
        )


def _params(
    *,
    threads: int = 0,
    ms_levels: Sequence[int] = (),
    signal: str = "auto",
    on_bad_spectrum: str = "skip",
    batch_size: int = 64,
    min_snr: float = 0.0,
    min_intensity: float = 0.0,
    noise_window: float = 200.0,
    spacing_difference_gap: float = 4.0,
    spacing_difference: float = 1.5,
    max_missing: int = 1,
    deconvolve: bool = True,
    charge_range: tuple[int, int] | None = None,
    isotope_model: str = "averagine",
    tolerance_ppm: float = 10.0,
    min_fit: float = 0.8,
) -> _mzforge.Params:
    return _mzforge.make_params(
        threads=threads,
        ms_levels=list(ms_levels),
        signal=signal,
        on_bad_spectrum=on_bad_spectrum,
        batch_size=batch_size,
        min_snr=min_snr,
        min_intensity=min_intensity,
        noise_window=noise_window,
        spacing_difference_gap=spacing_difference_gap,
        spacing_difference=spacing_difference,
        max_missing=max_missing,
        deconvolve=deconvolve,
        charge_range=None if charge_range is None else tuple(charge_range),
        isotope_model=isotope_model,
        tolerance_ppm=tolerance_ppm,
        min_fit=min_fit,
    )


def centroid(
    mz: Any,
    intensity: Any,
    *,
    min_snr: float = 0.0,
    min_intensity: float = 0.0,
    noise_window: float = 200.0,
    spacing_difference_gap: float = 4.0,
    spacing_difference: float = 1.5,
    max_missing: int = 1,
) -> Centroids:
    """Centroids one profile spectrum (OpenMS PeakPickerHiRes's algorithm).

    ``mz`` (ascending) and ``intensity`` are 1-D array-likes of equal length; they are used
    in place when they already are contiguous float64 and float32 arrays, converted
    otherwise. ``min_snr`` is the signal-to-noise a peak and every point it is fitted on must
    reach (0 keeps every local maximum), ``noise_window`` the width in m/z of the noise
    estimation window; the other settings are PeakPickerHiRes's (see ``mzforge run --help``).
    """
    params = _params(
        min_snr=min_snr,
        min_intensity=min_intensity,
        noise_window=noise_window,
        spacing_difference_gap=spacing_difference_gap,
        spacing_difference=spacing_difference,
        max_missing=max_missing,
    )
    mz = np.ascontiguousarray(mz, dtype=np.float64)
    intensity = np.ascontiguousarray(intensity, dtype=np.float32)
    if mz.ndim != 1 or intensity.ndim != 1:
        from ._errors import InvalidInputError

        raise InvalidInputError(
            f"m/z and intensity must be 1-D arrays, not {mz.ndim}-D and {intensity.ndim}-D"
        )
    return Centroids(*_mzforge.centroid(mz, intensity, params))


class RunResult:
    """What :func:`process` produced: ``spectra``, ``peaks`` and ``features`` as
    ``pyarrow.Table`` (the columns of the Parquet files ``mzforge run`` writes), the full ``params``, the run's
    ``summary`` (as in ``run.json``) and its ``warnings``; ``output`` is the result directory
    when one was written."""

    def __init__(self, native: _mzforge.RunResult) -> None:
        self._native = native
        self.params: dict[str, Any] = json.loads(native.params_json)
        self.summary: dict[str, Any] = json.loads(native.summary_json)
        self.output: Path | None = Path(native.output) if native.output is not None else None
        self._tables: dict[str, pyarrow.Table] = {}

    @property
    def warnings(self) -> list[str]:
        """Warnings of the run (at most 100 listed; ``summary["warnings_total"]`` counts all)."""
        return list(self.summary["warnings"])

    def _table(self, name: str) -> pyarrow.Table:
        if name not in self._tables:
            import pyarrow as pa

            native = getattr(self._native, name)
            if native is not None:
                # Zero-copy: the Arrow C stream hands Rust's buffers to pyarrow.
                self._tables[name] = pa.RecordBatchReader.from_stream(native).read_all()
            else:
                import pyarrow.parquet as pq

                assert self.output is not None
                self._tables[name] = pq.read_table(
                    self.output / f"{name}.parquet", memory_map=True
                )
        return self._tables[name]

    @property
    def spectra(self) -> pyarrow.Table:
        """One row per spectrum (``spectra.parquet``'s columns)."""
        return self._table("spectra")

    @property
    def peaks(self) -> pyarrow.Table:
        """One row per centroid (``peaks.parquet``'s columns)."""
        return self._table("peaks")

    @property
    def features(self) -> pyarrow.Table:
        """One row per isotopic envelope found by deconvolution (``features.parquet``'s
        columns)."""
        return self._table("features")

    def __repr__(self) -> str:
        s = self.summary
        where = f", output={str(self.output)!r}" if self.output else ""
        return (
            f"RunResult({s['spectra_written']} spectra, {s['peaks_written']} peaks, "
            f"{s['warnings_total']} warnings{where})"
        )


def process(
    path: StrPath,
    *,
    out: StrPath | None = None,
    threads: int = 0,
    ms_levels: Sequence[int] = (),
    signal: Literal["auto", "declared", "profile", "centroid"] = "auto",
    on_bad_spectrum: Literal["skip", "fail"] = "skip",
    min_snr: float = 0.0,
    min_intensity: float = 0.0,
    noise_window: float = 200.0,
    spacing_difference_gap: float = 4.0,
    spacing_difference: float = 1.5,
    max_missing: int = 1,
    deconvolve: bool = True,
    charge_range: tuple[int, int] | None = None,
    isotope_model: Literal["averagine", "glycan", "glycopeptide", "nucleotide"] = "averagine",
    tolerance_ppm: float = 10.0,
    min_fit: float = 0.8,
    batch_size: int = 64,
) -> RunResult:
    """Processes a whole file as ``mzforge run`` does: reads, tells profile from centroid,
    centroids and deconvolves, on ``threads`` worker threads (0: every core) with the GIL
    released. The keywords are the command line's options (``deconvolve=False`` is
    ``--no-deconvolve``; ``charge_range=(1, 60)`` is ``--charge-range 1-60`` and turns off the
    automatic extension to high charges).

    Without ``out`` the tables stay in memory (``result.spectra``, ``.peaks``, ``.features``, handed to
    pyarrow without a copy). With ``out=DIR`` the run writes ``DIR/<stem>/`` with
    ``spectra.parquet``, ``peaks.parquet``, ``features.parquet`` and ``run.json``, exactly as
    ``mzforge run PATH --out DIR``, and the result's tables read those files back.

    Raises :class:`InputReadError` / :class:`InvalidInputError` for unreadable input,
    :class:`InvalidParameterError` for bad parameters, :class:`OutputError` when ``out``
    cannot be written; the messages are the command line's.
    """
    params = _params(
        threads=threads,
        ms_levels=ms_levels,
        signal=signal,
        on_bad_spectrum=on_bad_spectrum,
        batch_size=batch_size,
        min_snr=min_snr,
        min_intensity=min_intensity,
        noise_window=noise_window,
        spacing_difference_gap=spacing_difference_gap,
        spacing_difference=spacing_difference,
        max_missing=max_missing,
        deconvolve=deconvolve,
        charge_range=charge_range,
        isotope_model=isotope_model,
        tolerance_ppm=tolerance_ppm,
        min_fit=min_fit,
    )
    native = _mzforge.process(
        os.fspath(path), params, None if out is None else os.fspath(out)
    )
    return RunResult(native)
