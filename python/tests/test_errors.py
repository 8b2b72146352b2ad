"""Bad input and bad parameters raise the documented exceptions with the command line's
messages, and never crash the interpreter."""

from __future__ import annotations

import numpy as np
import pytest

import mzforge

from mzftest import FIXTURES, SHARED, crafted_mzml, cv, run_cli, shared

BROKEN = [
    "edge/1min.mzML",  # pre-1.0 mzML
    "edge/MzMLFile_6_uncompresscor.MzML.gz",  # corrupt gzip
    "edge/IndexedmzMLFile_2_broken.mzML",
    "edge/MzMLFile_3_invalid.mzML",
]


def cli_error(*args) -> str:
    done = run_cli(*args)
    assert done.returncode == 1, done.stderr
    lines = [l for l in done.stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0].removeprefix("error: ")


@pytest.mark.parametrize("rel", BROKEN)
def test_broken_files_raise_invalid_input_with_the_cli_message(tmp_path, rel):
    path = shared(rel)
    with pytest.raises(mzforge.InvalidInputError) as info:
        mzforge.process(path)
    assert isinstance(info.value, ValueError)
    assert path.name in str(info.value)
    assert str(info.value) == cli_error("run", path, "--out", tmp_path, "--quiet")
    # The reader fails the same way, at open or while iterating.
    with pytest.raises(mzforge.InvalidInputError) as info:
        for _ in mzforge.open(path):
            pass
    assert path.name in str(info.value)
    # Nothing was written for the broken file.
    with pytest.raises(mzforge.InvalidInputError):
        mzforge.process(path, out=tmp_path / "py")
    assert not (tmp_path / "py").exists() or not any((tmp_path / "py").iterdir())


def test_missing_file_raises_input_read_error(tmp_path):
    missing = tmp_path / "missing.mzML"
    with pytest.raises(mzforge.InputReadError) as info:
        mzforge.process(missing)
    assert isinstance(info.value, OSError)
    assert str(info.value) == cli_error("run", missing, "--out", tmp_path, "--quiet")
    with pytest.raises(mzforge.InputReadError, match="missing.mzML"):
        mzforge.open(missing)


def test_a_directory_raises_input_read_error_in_words(tmp_path):
    # `mzforge run` expands a directory into its files; `open` and `process` take one file.
    for call in (mzforge.open, mzforge.process):
        with pytest.raises(mzforge.InputReadError, match="a directory, not a file") as info:
            call(tmp_path)
        assert "os error" not in str(info.value)


def test_not_a_mass_spectrometry_file(tmp_path):
    picture = tmp_path / "picture.mzML"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(mzforge.InvalidInputError, match="not an mzML or MGF file") as info:
        mzforge.open(picture)
    assert str(info.value) == cli_error("run", picture, "--out", tmp_path / "o", "--quiet")


@pytest.mark.parametrize(("rel", "reason"), [
    ("edge/FileFilter_39_input_corrupt.mzML", "Numpress"),  # corrupt arrays
    ("edge/empty_XML.mzML", "ms level: the value is empty"),  # cannot be read at all
])
def test_corrupt_spectrum_is_skipped_or_fails_as_asked(tmp_path, rel, reason):
    # The file's only spectrum is corrupt: the reader skips it with a warning; a run has
    # nothing left and fails, naming it, under either policy.
    path = shared(rel)
    reader = mzforge.open(path)
    assert list(reader) == []
    assert len(reader) == 1
    assert len(reader.warnings) == 1
    assert reader.warnings[0].startswith("skipped: ") and reason in reader.warnings[0]
    with pytest.raises(mzforge.InvalidInputError, match=r"no spectrum could be used \(1 skipped") as info:
        mzforge.process(path)
    assert "spectrum 0" in str(info.value) and reason in str(info.value)
    assert str(info.value) == cli_error("run", path, "--out", tmp_path, "--quiet")
    with pytest.raises(mzforge.InvalidInputError) as info:
        mzforge.process(path, on_bad_spectrum="fail")
    expected = cli_error("run", path, "--out", tmp_path, "--quiet", "--on-bad-spectrum", "fail")
    assert str(info.value) == expected
    with pytest.raises(mzforge.InvalidInputError, match="spectrum 0"):
        list(mzforge.open(path, on_bad_spectrum="fail"))
    with pytest.raises(mzforge.InvalidInputError, match="spectrum 0"):
        reader[0]


def broken_spectra_mzml(n: int) -> str:
    """A hand-made mzML of ``n`` MS1 spectra whose arrays are not base64."""

    def array(kind: tuple[str, str], dtype: tuple[str, str]) -> str:
        params = cv(*dtype) + cv("MS:1000576", "no compression") + cv(*kind)
        return f'<binaryDataArray encodedLength="4">{params}<binary>@@@@</binary></binaryDataArray>'

    arrays = array(("MS:1000514", "m/z array"), ("MS:1000523", "64-bit float")) + array(
        ("MS:1000515", "intensity array"), ("MS:1000521", "32-bit float")
    )
    return crafted_mzml([
        f'<spectrum index="{i}" id="scan={i + 1}" defaultArrayLength="3">'
        '<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>'
        f'{cv("MS:1000127", "centroid spectrum")}'
        f'<binaryDataArrayList count="2">{arrays}</binaryDataArrayList></spectrum>'
        for i in range(n)
    ])


def test_a_file_of_bad_spectra_only_raises_instead_of_an_empty_result(tmp_path):
    path = tmp_path / "broken.mzML"
    path.write_text(broken_spectra_mzml(3))
    with pytest.raises(mzforge.InvalidInputError, match=r"no spectrum could be used \(3 skipped") as info:
        mzforge.process(path)
    assert "spectrum 0 (scan=1)" in str(info.value)
    assert str(info.value) == cli_error("run", path, "--out", tmp_path / "o", "--quiet")
    # The reader still reads what it can, skipping each bad spectrum with a warning.
    reader = mzforge.open(path)
    assert list(reader) == []
    assert len(reader.warnings) == 3


@pytest.mark.parametrize(
    ("kwargs", "flags"),
    [
        ({"min_snr": -1.0}, ["--min-snr=-1"]),
        ({"noise_window": 0.0}, ["--noise-window", "0"]),
        ({"ms_levels": [0]}, ["--ms-levels", "0"]),
        ({"threads": 5000}, ["--threads", "5000"]),
    ],
)
def test_bad_parameters_raise_with_the_cli_message(tmp_path, kwargs, flags):
    """The command line's reason, under the name each side was given: the keyword here,
    the flag there (both used to say the engine's own name, `noise.window_mz`)."""
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.process(FIXTURES / "sim_profile.mzML", **kwargs)
    cli = cli_error("run", FIXTURES / "sim_profile.mzML", "--out", tmp_path, *flags)
    (keyword,) = kwargs
    flag = flags[0].split("=")[0]
    assert cli.startswith(f"invalid {flag}: "), cli
    assert str(info.value) == f"invalid parameter `{keyword}`: " + cli.removeprefix(f"invalid {flag}: ")


def test_unknown_policy_names_the_parameter():
    with pytest.raises(mzforge.InvalidParameterError, match="`signal`"):
        mzforge.process(FIXTURES / "sim_profile.mzML", signal="guess")
    with pytest.raises(mzforge.InvalidParameterError, match="`on_bad_spectrum`"):
        mzforge.open(FIXTURES / "sim_profile.mzML", on_bad_spectrum="ignore")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ms_levels": 1}, "invalid parameter `ms_levels`: must be a sequence of MS levels"),
        ({"ms_levels": "12"}, "invalid parameter `ms_levels`: must be a sequence of MS levels"),
        ({"charge_range": 8}, "invalid parameter `charge_range`: must be a (min, max) pair"),
        # These said only "'float' object cannot be interpreted as an integer", "must be real
        # number, not str" and "'int' object cannot be converted to 'PyBool'".
        ({"threads": 1.5}, "invalid parameter `threads`: must be an integer, not float"),
        ({"threads": True}, "invalid parameter `threads`: must be an integer, not bool"),
        ({"min_snr": "3"}, "invalid parameter `min_snr`: must be a number, not str"),
        ({"deconvolve": 1}, "invalid parameter `deconvolve`: must be True or False, not int"),
        ({"signal": 3}, "invalid parameter `signal`: must be a string, not int"),
        ({"charge_range": (1, 8.5)}, "invalid parameter `charge_range`: must be an integer"),
        # These raised a bare ValueError("expected tuple of length 2, but got tuple of
        # length 1") that named no parameter.
        ({"charge_range": (8,)}, "invalid parameter `charge_range`: must be a (min, max) pair of charges, not 1 value"),
        ({"charge_range": [1, 4, 8]}, "invalid parameter `charge_range`: must be a (min, max) pair of charges, not 3 values"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_named(kwargs, message):
    with pytest.raises(TypeError) as info:
        mzforge.process(FIXTURES / "sim_profile.mzML", **kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # The engine names its own parameters (`centroid.noise.window_mz`,
        # `deconvolve.charge_min`); these are named by the keyword that set them.
        ({"noise_window": 0}, "invalid parameter `noise_window`: must be a positive number of m/z units"),
        ({"tolerance_ppm": 0}, "invalid parameter `tolerance_ppm`: must be in (0, 1000]"),
        ({"charge_range": (9, 3)}, "invalid parameter `charge_range`: charges must satisfy 1 <= charge_min <= charge_max"),
        ({"min_fit": 2}, "invalid parameter `min_fit`: must be between 0 and 1"),
    ],
)
def test_an_out_of_range_value_is_named_by_its_keyword(kwargs, message):
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.process(FIXTURES / "sim_profile.mzML", **kwargs)
    assert str(info.value) == message


def test_deconvolve_names_a_charge_range_that_is_not_a_pair():
    with pytest.raises(TypeError, match=r"`charge_range`: must be a \(min, max\) pair of charges, not 1 value"):
        mzforge.deconvolve([500.0, 500.5], [1.0, 1.0], charge_range=(4,))


def test_a_charge_too_large_for_32_bits_gets_the_engines_limit_not_a_sign_error():
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.process(FIXTURES / "sim_profile.mzML", charge_range=(1, 2**40))
    assert str(info.value) == "invalid parameter `charge_range`: charges above 200 are not supported"
    with pytest.raises(mzforge.InvalidParameterError, match="`charge_range`: charges must be >= 0"):
        mzforge.process(FIXTURES / "sim_profile.mzML", charge_range=(-(2**40), 4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threads": 2**64}, "invalid parameter `threads`: must be at most 4096"),
        ({"batch_size": 2**70}, "invalid parameter `batch_size`: must be between 1 and"),
        ({"ms_levels": [2**70]}, "invalid parameter `ms_levels`: MS levels run from 1 to 255"),
        ({"threads": -(2**64)}, "invalid parameter `threads`: must be >= 0"),
    ],
)
def test_an_integer_beyond_64_bits_gets_the_engines_limit_not_an_overflow_error(kwargs, message):
    # These raised OverflowError("Python int too large to convert to C long").
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.process(FIXTURES / "sim_profile.mzML", **kwargs)
    assert str(info.value).startswith(message)


def test_numpy_numbers_are_taken_as_keywords():
    result = mzforge.process(
        FIXTURES / "sim_profile.mzML", threads=np.int64(1), min_snr=np.float32(2),
        deconvolve=np.bool_(False), ms_levels=np.array([1]),
    )
    assert result.params["threads"] == 1 and result.params["centroid"]["min_snr"] == 2.0
    assert result.params["deconvolve"]["enabled"] is False


@pytest.mark.parametrize(
    ("kwargs", "flags"),
    [
        ({"tolerance_ppm": 5.0}, ["--tolerance-ppm", "5"]),
        ({"charge_range": (1, 8)}, ["--charge-range", "1-8"]),
        ({"isotope_model": "glycan"}, ["--isotope-model", "glycan"]),
        ({"min_fit": 0.5}, ["--min-fit", "0.5"]),
    ],
)
def test_a_deconvolution_setting_without_deconvolution_is_refused(tmp_path, kwargs, flags):
    # It was ignored without a word, where the command line refuses the same flags.
    name = next(iter(kwargs))
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.process(FIXTURES / "sim_profile.mzML", deconvolve=False, **kwargs)
    assert str(info.value).startswith(f"invalid parameter `{name}`: has no effect with deconvolve=False")
    done = run_cli("run", FIXTURES / "sim_profile.mzML", "--out", tmp_path, "--no-deconvolve", *flags)
    assert done.returncode == 2 and "cannot be used with" in done.stderr
    # charge_range=None is the default, not a setting.
    assert mzforge.process(FIXTURES / "sim_profile.mzML", deconvolve=False, charge_range=None)


# One 744k-point spectrum; processing it is slow in the debug build CI tests, and the engine's
# own tests process it.
READ_ONLY = {"5B8egg_500ng_30V450ms18msReal_Ramp3_01.mzML_one_scan.gz"}


def test_every_edge_file_gives_a_result_or_a_documented_error():
    shared("edge")
    for path in sorted((SHARED / "edge").iterdir()):
        try:
            reader = mzforge.open(path)
            for _ in reader:
                pass
            len(reader)
            if len(reader):
                reader[len(reader) - 1]
        except mzforge.MzforgeError:
            pass
        if path.name in READ_ONLY:
            continue
        try:
            mzforge.process(path)
        except mzforge.MzforgeError:
            pass


def with_unreadable_spectra(text: str, places: list[int]) -> str:
    """``text`` (an mzML document) with the start tag of the ``<scan>`` of each spectrum at
    ``places`` broken (an attribute without a value), so that the spectrum cannot be read."""
    starts = [i for i in range(len(text)) if text.startswith("<spectrum ", i)]
    for place in sorted(places, reverse=True):
        scan = text.index("<scan ", starts[place]) + len("<scan ")
        text = text[:scan] + "broken " + text[scan:]
    return text


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_spectrum_that_cannot_be_read_is_skipped_and_the_others_read(tmp_path, gzipped):
    # It stopped the whole file; now, as a spectrum with corrupt arrays, it is skipped (or
    # raises) alone, by random access (the offset index, or the scan of a gzip file) too.
    import gzip

    original = shared("profile/small.mzML")
    text = original.read_text()
    expected = list(mzforge.open(original))
    broken = with_unreadable_spectra(text, [2, 40])
    path = tmp_path / ("small.mzML.gz" if gzipped else "small.mzML")
    path.write_bytes(gzip.compress(broken.encode()) if gzipped else broken.encode())
    reader = mzforge.open(path)
    assert reader.indexed is not gzipped
    got = list(reader)
    kept = [s for s in expected if s.index not in (2, 40)]
    assert [s.native_id for s in got] == [s.native_id for s in kept]
    assert all(np.array_equal(a.mz, b.mz) and np.array_equal(a.intensity, b.intensity)
               for a, b in zip(got, kept))
    # (The file's offset index, now off by the bytes put in, is found wrong and rebuilt.)
    skipped = [w for w in reader.warnings if w.startswith("skipped: ")]
    assert len(skipped) == 2
    start = [i for i in range(len(broken)) if broken.startswith("<spectrum ", i)][2]
    assert f"spectrum 2 ({expected[2].native_id}): cannot be read, from byte {start}" in skipped[0]
    # Random access, in either direction.
    with pytest.raises(mzforge.InvalidInputError) as info:
        reader[2]
    assert f"spectrum 2 ({expected[2].native_id}): cannot be read, from byte {start}" in str(info.value)
    assert reader[3].native_id == expected[3].native_id
    with pytest.raises(mzforge.InvalidInputError, match="spectrum 40"):
        reader[40]
    assert reader[1].native_id == expected[1].native_id
    assert len(reader) == len(expected)
    assert reader.native_ids == [s.native_id for s in expected]
    # Under the `fail` policy iteration raises at it.
    with pytest.raises(mzforge.InvalidInputError, match="spectrum 2"):
        list(mzforge.open(path, on_bad_spectrum="fail"))
    result = mzforge.process(path)
    assert result.summary["spectra_skipped"] == 2
    assert result.summary["spectra_written"] == len(expected) - 2


def test_an_mgf_entry_that_cannot_be_read_is_skipped_and_the_others_read(tmp_path):
    original = shared("mgf/SmallCalibratibleYeast.mgf")
    expected = list(mzforge.open(original))
    lines, entry, begin_line = [], 0, None
    for line in original.read_text().splitlines():
        if entry == 1 and line.startswith("PEPMASS="):
            line = "PEPMASS=abc"
        if entry == 1 and line == "BEGIN IONS":
            begin_line = len(lines) + 1
        lines.append(line)
        entry += line == "END IONS"
    path = tmp_path / "yeast.mgf"
    path.write_text("\n".join(lines) + "\n")
    reader = mzforge.open(path)
    got = list(reader)
    assert [s.native_id for s in got] == [s.native_id for s in expected[:1] + expected[2:]]
    assert len(reader.warnings) == 1
    # Named by the line of its BEGIN IONS.
    assert f"spectrum 1 (the MGF entry at line {begin_line}): cannot be read: " in reader.warnings[0]
    with pytest.raises(mzforge.InvalidInputError, match="spectrum 1 "):
        reader[1]
    assert reader[2].native_id == expected[2].native_id
    assert reader.native_ids[:3] == [expected[0].native_id, "", expected[2].native_id]

