"""`mzforge.plot.plot_spectrum` draws deconvolved envelopes coloured by charge, with a legend by
charge, from a `deconvolve` result or a `process` result (matplotlib's Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import mzforge  # noqa: E402
from mzforge.plot import plot_spectrum  # noqa: E402

from mzftest import FIXTURES, shared  # noqa: E402

DEISOTOPER = "deconvolution/Deisotoper_test_in.mzML"


def charge_markers(ax):
    """label -> (colour, x data) of the per-charge marker lines."""
    return {
        line.get_label(): (to_hex(line.get_color()), np.asarray(line.get_xdata()))
        for line in ax.get_lines()
        if line.get_label().startswith("z=")
    }


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_envelopes_are_coloured_by_charge_with_a_legend_by_charge():
    run = mzforge.process(shared(DEISOTOPER))
    centroids = run.deconvolution(0)
    d = mzforge.deconvolve(centroids.peak_mz, centroids.peak_intensity)
    charges = sorted(set(d.charge.tolist()))
    assert len(charges) >= 3
    ax = plot_spectrum(deconvolution=d)
    markers = charge_markers(ax)
    # One marker set per charge, each in its own colour.
    assert sorted(int(label.split()[0][2:]) for label in markers) == charges
    colours = [colour for colour, _ in markers.values()]
    assert len(set(colours)) == len(charges)
    # Each set holds exactly the peaks of envelopes of that charge.
    for label, (_, x) in markers.items():
        z = int(label.split()[0][2:])
        np.testing.assert_array_equal(np.sort(x), np.sort(d.peak_mz[d.peak_charge == z]))
        assert f"({int((d.charge == z).sum())} envelope" in label
    # The legend lists the charges with the markers' colours.
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert [t for t in texts if t.startswith("z=")] == list(markers)
    handles = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}
    for label, (colour, _) in markers.items():
        assert to_hex(handles[label].get_color()) == colour
    # Peaks outside every envelope are drawn too, in grey.
    assert "points" in texts


def test_a_process_result_draws_the_envelopes_of_the_given_spectrum():
    path = shared(DEISOTOPER)
    run = mzforge.process(path)
    with mzforge.open(path) as reader:
        spectrum = reader[0]
    ax = plot_spectrum(spectrum, deconvolution=run, mz_range=(300, 700))
    markers = charge_markers(ax)
    d = run.deconvolution(0)
    visible = (d.peak_mz >= 300) & (d.peak_mz <= 700) & (d.peak_charge != 0)
    assert sorted(int(label.split()[0][2:]) for label in markers) == sorted(
        set(d.peak_charge[visible].tolist())
    )
    assert sum(len(x) for _, x in markers.values()) == int(visible.sum())
    assert len({colour for colour, _ in markers.values()}) == len(markers)
    with pytest.raises(TypeError, match="needs the spectrum"):
        plot_spectrum(deconvolution=run)


def test_a_process_result_refuses_a_spectrum_of_another_file():
    # Envelopes are looked up by the spectrum's index alone: another file's spectrum 0 got
    # this result's spectrum-0 envelopes drawn over it, without a word.
    run = mzforge.process(shared(DEISOTOPER))
    with mzforge.open(FIXTURES / "sim_envelopes.mzML") as reader:
        stranger = reader[0]
    with pytest.raises(ValueError, match="is not the result's spectrum 0") as info:
        plot_spectrum(stranger, deconvolution=run)
    assert stranger.native_id in str(info.value)


def test_many_charges_get_distinct_colours():
    run = mzforge.process(shared("deconvolution/Averaged_221110_UbiqOnly.mzML"))
    d = run.deconvolution(0)
    ax = plot_spectrum(deconvolution=d)
    markers = charge_markers(ax)
    assert len(markers) == len(set(d.charge.tolist())) > 10
    assert len({colour for colour, _ in markers.values()}) == len(markers)


def test_profile_and_centroids_still_draw_without_deconvolution():
    with mzforge.open(FIXTURES / "sim_profile.mzML") as reader:
        spectrum = reader[0]
    peaks = mzforge.centroid(spectrum.mz, spectrum.intensity)
    ax = plot_spectrum(spectrum, peaks)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "profile" in labels and f"centroids ({len(peaks)})" in labels
    assert not charge_markers(ax)


def test_a_spectrum_without_retention_time_is_titled_without_one():
    path = shared("edge/tiny.pwiz.1.1.mzML")
    run = mzforge.process(path)
    with mzforge.open(path) as reader:
        spectrum = reader[2]
    assert spectrum.rt_seconds is None
    ax = plot_spectrum(spectrum, deconvolution=run)
    assert ax.get_title() == "scan=21 · MS1 · no RT"
    with mzforge.open(FIXTURES / "sim_envelopes.mzML") as reader:
        stranger = reader[2]
    with pytest.raises(ValueError, match="no RT"):
        plot_spectrum(stranger, deconvolution=run)
