//! Bad input: a clear error naming the file (and where possible the spectrum or byte), or a
//! documented behaviour. Never a panic.

use std::path::Path;

use mzforge::{Error, Pipeline, PipelineParams, RunSummary, SpectrumReader};

use crate::common::shared;

fn run(path: &Path) -> mzforge::Result<RunSummary> {
    let pipeline = Pipeline::new(PipelineParams::default()).unwrap();
    pipeline.run_path(path, &mut |_| Ok(()))
}

fn expect_error(rel: &str, fragments: &[&str]) {
    let Some(path) = shared(rel) else { return };
    let err = run(&path).expect_err(rel);
    let text = err.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        text.contains(name.as_ref()),
        "{text:?} does not name the file"
    );
    for f in fragments {
        assert!(text.contains(f), "{text:?} lacks {f:?}");
    }
}

fn expect_ok(rel: &str) -> Option<RunSummary> {
    let path = shared(rel)?;
    Some(run(&path).unwrap_or_else(|e| panic!("{rel}: {e}")))
}

#[test]
fn pre_release_mzml_is_refused_with_advice() {
    expect_error("edge/1min.mzML", &["0.99.1", "pre-1.0"]);
}

#[test]
fn corrupt_gzip_is_an_error() {
    expect_error(
        "edge/MzMLFile_6_uncompresscor.MzML.gz",
        &["gzip stream is corrupt"],
    );
}

#[test]
fn broken_index_file_is_an_error() {
    expect_error("edge/IndexedmzMLFile_2_broken.mzML", &["malformed"]);
}

#[test]
fn schema_invalid_file_is_an_error() {
    expect_error(
        "edge/MzMLFile_3_invalid.mzML",
        &["malformed", "order", "the number is too large"],
    );
}

/// The file's one spectrum gives an empty MS level: that spectrum cannot be read and is
/// skipped, which leaves nothing, so the file fails naming it.
#[test]
fn empty_attributes_are_an_error_not_a_panic() {
    expect_error(
        "edge/empty_XML.mzML",
        &[
            "no spectrum could be used (1 skipped as bad)",
            "spectrum 0 (index=0): cannot be read, from byte 3150",
            "ms level: the value is empty",
        ],
    );
}

/// The file's one spectrum has a corrupt Numpress array: skipped, it leaves nothing, so the
/// file fails, naming that spectrum (as it does under the `fail` policy).
#[test]
fn corrupt_numpress_spectrum_alone_in_its_file_fails_the_file() {
    let Some(path) = shared("edge/FileFilter_39_input_corrupt.mzML") else {
        return;
    };
    match run(&path) {
        Err(Error::NoUsableSpectrum { skipped, first, .. }) => {
            assert_eq!(skipped, 1);
            assert!(
                matches!(*first, Error::BadSpectrum { index: 0, ref message, .. } if message.contains("Numpress")),
                "{first}"
            );
        }
        other => panic!("expected NoUsableSpectrum, got {other:?}"),
    }
    let strict = PipelineParams {
        on_bad_spectrum: mzforge::pipeline::BadSpectrumPolicy::Fail,
        ..Default::default()
    };
    let err = Pipeline::new(strict)
        .unwrap()
        .run_path(&path, &mut |_| Ok(()))
        .unwrap_err();
    assert!(matches!(err, Error::BadSpectrum { index: 0, .. }), "{err}");
}

/// With batches in flight, the first error in file order is still the one reported: a bad
/// spectrum (under `Fail`) before the point where the file is cut off.
#[test]
fn the_first_error_in_the_file_is_reported() {
    let text = std::fs::read_to_string(crate::common::fixture("sim_profile.mzML")).unwrap();
    let first_array = text.find("<binary>").unwrap() + "<binary>".len();
    let mut broken = text.clone();
    broken.replace_range(first_array..first_array + 4, "!!!!");
    let tenth_spectrum = broken.match_indices("<spectrum ").nth(10).unwrap().0;
    broken.truncate(tenth_spectrum + 200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad_then_cut.mzML");
    std::fs::write(&path, broken).unwrap();

    let with = |on_bad_spectrum| PipelineParams {
        on_bad_spectrum,
        batch_size: 1,
        threads: 2,
        ..Default::default()
    };
    let strict = Pipeline::new(with(mzforge::pipeline::BadSpectrumPolicy::Fail)).unwrap();
    let err = strict.run_path(&path, &mut |_| Ok(())).unwrap_err();
    assert!(matches!(err, Error::BadSpectrum { index: 0, .. }), "{err}");
    // Skipping it, the cut is what stops the run, after the spectra before it.
    let lenient = Pipeline::new(with(mzforge::pipeline::BadSpectrumPolicy::Skip)).unwrap();
    let mut written = 0;
    let err = lenient
        .run_path(&path, &mut |done| {
            written += done.len();
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    assert_eq!(written, 9, "the spectra between the bad one and the cut");
}

#[test]
fn file_without_spectra_gives_an_empty_result() {
    let Some(s) = expect_ok("edge/MzMLFile_2_minimal.mzML") else {
        return;
    };
    assert_eq!(s.spectra_read, 0);
    assert_eq!(s.spectra_written, 0);
}

/// A test file of OpenMS's whose spectra list their peaks in no order: every spectrum is
/// sorted, counted, and named in one warning.
#[test]
fn unsorted_spectra_are_sorted_with_one_warning() {
    let Some(s) = expect_ok("runs/MapAlignmentAlgorithmPoseClustering_in1.mzML.gz") else {
        return;
    };
    assert_eq!(s.spectra_written, 2035);
    assert!(s.spectra_sorted > 2000, "{}", s.spectra_sorted);
    let sorted: Vec<_> = s
        .warnings
        .iter()
        .filter(|w| w.contains("were sorted"))
        .collect();
    assert_eq!(sorted.len(), 1, "{:?}", s.warnings);
    assert!(
        sorted[0].starts_with(&format!("{} spectra", s.spectra_sorted)),
        "{sorted:?}"
    );
}

#[test]
fn lying_spectrum_count_is_ignored_with_a_warning() {
    let Some(s) = expect_ok("edge/example.mzML") else {
        return;
    };
    assert_eq!(s.file.declared_spectrum_count, Some(2918));
    assert_eq!(s.spectra_read, 11);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("declares 2918 spectra but holds 11")));
}

#[test]
fn mislabelled_profile_declaration_is_reported_and_data_win() {
    let Some(s) = expect_ok("edge/centroided1.mzML") else {
        return;
    };
    assert_eq!(s.signal_disagreements, 100);
    assert_eq!(s.centroid_spectra, 100);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.starts_with("100 spectra are declared profile but their data are a peak list")));
}

#[test]
fn uv_traces_are_left_out_with_one_warning() {
    let Some(s) = expect_ok("edge/mzML_with_UV.mzML") else {
        return;
    };
    assert_eq!(s.spectra_not_ms, 101);
    assert_eq!(s.spectra_written, 27);
    assert_eq!(
        s.warnings
            .iter()
            .filter(|w| w.contains("no m/z array"))
            .count(),
        1
    );
}

#[test]
fn ms_level_in_referenceable_param_group_is_honoured() {
    let Some(path) = shared("edge/RawCentriodCidWithMsLevelInRefParamGroup.mzML") else {
        return;
    };
    let spectra = crate::common::read_all(&path);
    assert_eq!(spectra.len(), 102);
    assert!(spectra.iter().all(|s| s.meta.ms_level >= 1));
}

#[test]
fn unusual_but_valid_files_process() {
    for rel in [
        "edge/emptyScan.mzML",
        "edge/noPrecursorScans.mzML",
        "edge/tiny.pwiz.1.1.mzML",
        "edge/badScan7192.mzML",
        "edge/MzMLFile_6_uncompressedcorrupt.mzML.gz",
    ] {
        let Some(s) = expect_ok(rel) else { return };
        assert!(s.spectra_read > 0, "{rel}");
        assert_eq!(
            s.spectra_read,
            s.spectra_written + s.spectra_skipped + s.spectra_not_ms,
            "{rel}"
        );
    }
}

#[test]
fn invalid_utf8_and_huge_spectrum_file_reads() {
    let Some(s) = expect_ok("edge/5B8egg_500ng_30V450ms18msReal_Ramp3_01.mzML_one_scan.gz") else {
        return;
    };
    assert_eq!(s.spectra_written, 1);
    assert!(s.points_read > 700_000);
}

#[test]
fn truncated_xml_is_an_error_at_a_byte_offset() {
    let Some(path) = shared("runs/BSA1.mzML") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("truncated.mzML");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = run(&cut).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("truncated.mzML") && text.contains("after spectrum") && text.contains("byte"),
        "{text}"
    );
}

#[test]
fn invalid_base64_and_unequal_arrays_are_spectrum_errors() {
    let Some(path) = shared("encodings/MzMLFile_6_uncompressed.mzML") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Corrupt the first <binary> payload with characters outside base64.
    let start = text.find("<binary>").unwrap() + "<binary>".len();
    let mut broken = text.clone();
    broken.replace_range(start..start + 8, "!!!!@@@@");
    let file = dir.path().join("bad_base64.mzML");
    std::fs::write(&file, broken).unwrap();
    let s = run(&file).unwrap();
    assert_eq!(s.spectra_skipped, 1, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("bad_base64.mzML") && s.warnings[0].contains("spectrum 0"));
}

#[test]
fn not_mzml_at_all_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("empty.mzML", &b""[..]),
        ("picture.mzML", &b"\x89PNG\r\n\x1a\n...."[..]),
        ("notes.mgf", &b"hello world\n"[..]),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let err = SpectrumReader::open(&file).unwrap_err();
        assert!(matches!(err, Error::UnknownFormat { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name));
    }
    let missing = SpectrumReader::open(dir.path().join("missing.mzML")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
}

/// A directory given where a file is expected: said in words, not as "Is a directory (os
/// error 21)" from the first read.
#[test]
fn a_directory_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    for opened in [
        SpectrumReader::open(dir.path()).map(|_| ()),
        SpectrumReader::open_digested(dir.path()).map(|_| ()),
        run(dir.path()).map(|_| ()),
    ] {
        let err = opened.expect_err("a directory is no input file");
        assert!(
            matches!(err, Error::Io { ref path, .. } if path == dir.path()),
            "{err}"
        );
        let source = std::error::Error::source(&err).map(|s| s.to_string());
        assert!(
            source
                .as_deref()
                .is_some_and(|s| s.contains("a directory, not a file")),
            "{source:?}"
        );
    }
}

/// Every spectrum `SpectrumReader::next_raw` gives, decoded, and the errors of the ones it
/// leaves behind (it reads on after an `Error::BadSpectrum`).
fn read_past_bad_spectra(path: &Path) -> (Vec<mzforge::Spectrum>, Vec<Error>) {
    let mut reader = SpectrumReader::open(path).unwrap();
    let (mut read, mut bad) = (Vec::new(), Vec::new());
    loop {
        match reader.next_raw() {
            Ok(Some(raw)) => read.push(raw.decode(path).unwrap().0),
            Ok(None) => return (read, bad),
            Err(error @ Error::BadSpectrum { .. }) => bad.push(error),
            Err(error) => panic!("{error}"),
        }
    }
}

/// `expected` without the spectra at `left_out`, compared with `got` spectrum by spectrum.
fn assert_same_but(got: &[mzforge::Spectrum], expected: &[mzforge::Spectrum], left_out: &[u32]) {
    let kept: Vec<_> = expected
        .iter()
        .filter(|s| !left_out.contains(&s.meta.index))
        .cloned()
        .collect();
    crate::common::assert_same_spectra(got, &kept, "the spectra left");
}

/// A run that skips bad spectra, and its summary.
fn run_skipping(path: &Path) -> RunSummary {
    run(path).unwrap_or_else(|e| panic!("{e}"))
}

/// The same run under the `fail` policy: its error.
fn run_failing(path: &Path) -> Error {
    let strict = PipelineParams {
        on_bad_spectrum: mzforge::pipeline::BadSpectrumPolicy::Fail,
        ..Default::default()
    };
    Pipeline::new(strict)
        .unwrap()
        .run_path(path, &mut |_| Ok(()))
        .unwrap_err()
}

/// Runs `path` (of `total` spectra, the `bad` ones unreadable) under both policies: skipping,
/// the bad ones are skipped, the first named in a "skipped:" warning, and the others written;
/// failing, the run stops at the first.
fn assert_skipped_or_stopping_at(path: &Path, total: usize, bad: &[u32]) {
    let summary = run_skipping(path);
    assert_eq!(
        summary.spectra_skipped,
        bad.len() as u64,
        "{:?}",
        summary.warnings
    );
    assert_eq!(summary.spectra_read, total as u64);
    assert_eq!(summary.spectra_written, (total - bad.len()) as u64);
    let first = format!("spectrum {} (", bad[0]);
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.starts_with("skipped: ") && w.contains(&first)),
        "{:?}",
        summary.warnings
    );
    let error = run_failing(path);
    assert!(
        matches!(error, Error::BadSpectrum { index, .. } if index == bad[0]),
        "{error}"
    );
}

/// An mzML spectrum whose XML cannot be read (a start time that is not a number; an attribute
/// without its value) is one bad spectrum: skipped and reported, the others read as they
/// are; under the `fail` policy the run stops at it, naming it. (It stopped the whole file.)
#[test]
fn an_mzml_spectrum_that_cannot_be_read_is_skipped_and_the_others_read() {
    let Some(path) = shared("profile/small.mzML") else {
        return;
    };
    let expected = crate::common::read_all(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    let starts: Vec<usize> = text.match_indices("<spectrum ").map(|(at, _)| at).collect();
    let mut broken = text.clone();
    // Back to front, so that the earlier offsets stay right.
    let time = broken[starts[30]..]
        .find("name=\"scan start time\" value=\"")
        .unwrap()
        + starts[30];
    broken.insert(time + "name=\"scan start time\" value=\"".len(), 'x');
    let scan = broken[starts[3]..].find("<scan ").unwrap() + starts[3];
    broken.insert_str(scan + "<scan ".len(), "broken ");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("small.mzML");
    std::fs::write(&copy, broken).unwrap();

    let (got, bad) = read_past_bad_spectra(&copy);
    assert_same_but(&got, &expected, &[3, 30]);
    let bad: Vec<String> = bad.iter().map(Error::to_string).collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    let id = |i: usize| &expected[i].meta.native_id;
    assert!(
        bad[0].contains(&format!(
            "small.mzML: spectrum 3 ({}): cannot be read, from byte {}",
            id(3),
            starts[3]
        )),
        "{}",
        bad[0]
    );
    assert!(
        bad[1].contains(&format!("spectrum 30 ({})", id(30))),
        "{}",
        bad[1]
    );
    assert!(
        bad[1].contains("not a number") || bad[1].contains("float"),
        "{}",
        bad[1]
    );

    assert_skipped_or_stopping_at(&copy, expected.len(), &[3, 30]);
}

/// An MGF entry mzdata cannot read (a precursor m/z that is not a number, a peak line of one
/// column) is one bad spectrum: skipped and reported, named by its place, and reading goes on
/// at the next `BEGIN IONS`. (It stopped the whole file, and in the first entry it was
/// reported as "before the first spectrum".)
#[test]
fn an_mgf_entry_that_cannot_be_read_is_skipped_and_the_others_read() {
    let Some(path) = shared("mgf/SmallCalibratibleYeast.mgf") else {
        return;
    };
    let expected = crate::common::read_all(&path);
    let mut entry = 0;
    let mut begin_lines = Vec::new();
    let text: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(number, line)| {
            if line == "END IONS" {
                entry += 1;
            }
            if line == "BEGIN IONS" {
                begin_lines.push(number + 1);
            }
            match (entry, line) {
                (0, l) if l.starts_with("PEPMASS=") => "PEPMASS=abc\n".to_owned(),
                (7, l) if l.starts_with("PEPMASS=") => "PEPMASS=\n".to_owned(),
                (50, l) if l.starts_with(|c: char| c.is_ascii_digit()) => "101.07\n".to_owned(),
                (_, l) => format!("{l}\n"),
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("yeast.mgf");
    std::fs::write(&copy, text).unwrap();

    let (got, bad) = read_past_bad_spectra(&copy);
    assert_same_but(&got, &expected, &[0, 7, 50]);
    let bad: Vec<String> = bad.iter().map(Error::to_string).collect();
    assert_eq!(bad.len(), 3, "{bad:?}");
    // Each named by the line of its `BEGIN IONS` (mzdata reads ahead, so the bytes read
    // said only roughly where).
    let named = |index: usize| {
        format!(
            "yeast.mgf: spectrum {index} (the MGF entry at line {}): cannot be read: ",
            begin_lines[index]
        )
    };
    for (message, index) in bad.iter().zip([0, 7, 50]) {
        assert!(message.contains(&named(index)), "{message}");
    }
    assert!(bad[0].contains("PEPMASS"), "{}", bad[0]);

    assert_skipped_or_stopping_at(&copy, expected.len(), &[0, 7, 50]);
}

/// An mzMLb spectrum whose XML cannot be read is one bad spectrum, as in mzML: the run skips
/// and reports it and writes the other (it stopped the whole file: mzMLb spectra are read with
/// their arrays on the reader's thread, where the error ended the reading).
#[cfg(feature = "mzmlb")]
#[test]
fn an_mzmlb_spectrum_that_cannot_be_read_is_skipped_and_the_other_read() {
    let Some(path) = shared("encodings/test_old.mzMLb") else {
        return;
    };
    let expected = crate::common::read_all(&path);
    assert_eq!(expected.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("test_old.mzMLb");
    std::fs::copy(&path, &copy).unwrap();
    // The first spectrum's start time made not a number, in place (the same length, so the
    // document's index stays right).
    {
        let file = hdf5::File::open_rw(&copy).unwrap();
        let document = file.dataset("mzML").unwrap();
        let mut bytes: Vec<u8> = document.read_raw().unwrap();
        let key = b"name=\"scan start time\" value=\"";
        let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
        assert!(bytes[at].is_ascii_digit());
        bytes[at] = b'x';
        document.write_raw(&bytes).unwrap();
    }

    let (got, bad) = read_past_bad_spectra(&copy);
    assert_same_but(&got, &expected, &[0]);
    assert_eq!(bad.len(), 1);
    let message = bad[0].to_string();
    assert!(
        message.contains(&format!(
            "test_old.mzMLb: spectrum 0 ({}): cannot be read",
            expected[0].meta.native_id
        )),
        "{message}"
    );

    assert_skipped_or_stopping_at(&copy, expected.len(), &[0]);
}
