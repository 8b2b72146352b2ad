"""Spectrum data for interactive plots and static SVG/PNG figures (matplotlib, Agg): the
profile trace, the centroids as sticks, coloured by the charge of their isotopic envelope."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

import mzforge


def spectrum_data(spectra_row: dict[str, Any], peaks: Any, features: Any,
                  profile: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    def col(t: Any, name: str) -> list:
        return t[name].to_pylist() if name in t.column_names else [None] * t.num_rows

    return {
        "index": spectra_row["spectrum_index"],
        "native_id": spectra_row["native_id"],
        "ms_level": spectra_row["ms_level"],
        "rt_seconds": spectra_row["rt_seconds"],
        "signal": spectra_row["signal"],
        "profile": None if profile is None else {
            "mz": profile[0].tolist(), "intensity": profile[1].astype(float).tolist()},
        "centroids": {
            "mz": col(peaks, "mz"), "intensity": col(peaks, "intensity"),
            "charge": col(peaks, "charge"), "envelope_id": col(peaks, "envelope_id"),
        },
        "features": [
            {k: r[k] for k in ("envelope_id", "neutral_mass", "mz", "charge", "intensity", "score")}
            for r in features.to_pylist()
        ],
    }


def read_profile(path: Any, index: int, native_id: str) -> tuple[np.ndarray, np.ndarray]:
    with mzforge.open(path) as reader:
        try:
            s = reader[index]
            if s.native_id != native_id:
                s = reader[native_id]
        except (IndexError, KeyError):
            s = reader[native_id]
        return np.asarray(s.mz), np.asarray(s.intensity)


def render(data: dict[str, Any], fmt: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    top = 1.0
    if data["profile"] is not None and data["profile"]["mz"]:
        mz = np.asarray(data["profile"]["mz"])
        inten = np.asarray(data["profile"]["intensity"])
        ax.plot(mz, inten, color="0.45", linewidth=0.7, label="profile")
        top = max(top, float(inten.max()))
    c = data["centroids"]
    mz = np.asarray(c["mz"], dtype=float)
    inten = np.asarray(c["intensity"], dtype=float)
    charge = np.asarray([0 if z is None else z for z in c["charge"]], dtype=int)
    if len(mz):
        top = max(top, float(inten.max()))
        none = charge == 0
        if none.any():
            ax.vlines(mz[none], 0, inten[none], color="0.2", linewidth=0.8,
                      label=f"centroids, no envelope ({int(none.sum())})")
        cmap = matplotlib.colormaps["tab10"]
        for i, z in enumerate(sorted(set(charge[~none].tolist()))):
            sel = charge == z
            ax.vlines(mz[sel], 0, inten[sel], color=cmap(i % 10), linewidth=1.2,
                      label=f"z={z} ({int(sel.sum())} peaks)")
    ax.set_ylim(0, top * 1.08)
    ax.set_xlabel("m/z")
    ax.set_ylabel("intensity")
    rt = data["rt_seconds"]
    rt_text = "no RT" if rt is None else f"RT {rt:.1f} s"
    ax.set_title(f"{data['native_id']} · MS{data['ms_level']} · {rt_text}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", frameon=False, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no points", transform=ax.transAxes, ha="center", va="center", color="0.4")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100)
    return buf.getvalue()
