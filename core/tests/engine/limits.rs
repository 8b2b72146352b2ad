//! Crafted hostile files (made here, in a temporary directory). Resource bounds stop with
//! [`Error::LimitExceeded`] naming the file, the spectrum and the setting that raises the
//! limit; raising it reads the same file. Corrupt encodings found by fuzzing skip their
//! spectrum with a warning.

use std::io::Write;
use std::path::{Path, PathBuf};

use mzforge::{Error, Pipeline, PipelineParams, ReadLimits, RunSummary, SpectrumReader};
use mzforge_fixtures::handmade::{
    array, mzml, spectrum, F32, F64, INTENSITY_ARRAY, LINEAR, MZ_ARRAY, NONE, PIC_ZLIB, SLOF, ZLIB,
};

fn plain_arrays(n: usize) -> String {
    let mz: Vec<u8> = (0..n)
        .flat_map(|i| (100.0 + i as f64 * 0.01).to_le_bytes())
        .collect();
    let intensity: Vec<u8> = (0..n)
        .flat_map(|i| ((i % 7) as f32 * 10.0).to_le_bytes())
        .collect();
    array(MZ_ARRAY, F64, NONE, &mz) + &array(INTENSITY_ARRAY, F32, NONE, &intensity)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// zlib of `n` zero bytes, made in chunks (the bomb itself is never in memory).
fn zlib_zeros(n: usize) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        encoder.write_all(&chunk[..k]).unwrap();
        left -= k;
    }
    encoder.finish().unwrap()
}

fn run(path: &Path, limits: ReadLimits) -> mzforge::Result<RunSummary> {
    let params = PipelineParams {
        threads: 1,
        limits,
        ..PipelineParams::default()
    };
    Pipeline::new(params)
        .unwrap()
        .run_path(path, &mut |_| Ok(()))
}

/// The error is `LimitExceeded` for `setting`, and its message names the file, the given
/// location fragment and the setting.
fn expect_limit(result: mzforge::Result<RunSummary>, path: &Path, setting: &str, at: &str) {
    let err = result.expect_err("the limit must stop the run");
    let text = err.to_string();
    assert!(
        matches!(&err, Error::LimitExceeded { setting: s, .. } if *s == setting),
        "{text}"
    );
    let name = path.file_name().unwrap().to_string_lossy();
    for fragment in [name.as_ref(), at, setting] {
        assert!(text.contains(fragment), "{text:?} lacks {fragment:?}");
    }
}

#[test]
fn too_many_points_is_refused_before_decoding_and_the_setting_raises_it() {
    let dir = tempfile::tempdir().unwrap();
    let spectra = [
        spectrum(0, 10, &plain_arrays(10), ""),
        spectrum(1, 1000, &plain_arrays(1000), ""),
    ];
    let path = write(dir.path(), "points.mzML", &mzml(&spectra));
    let low = ReadLimits {
        max_points_per_spectrum: 999,
        ..ReadLimits::default()
    };
    // The default policy skips broken spectra; a limit stops the run all the same.
    expect_limit(
        run(&path, low),
        &path,
        "limits.max_points_per_spectrum",
        "spectrum 1 (scan=2)",
    );
    let enough = ReadLimits {
        max_points_per_spectrum: 1000,
        ..ReadLimits::default()
    };
    let summary = run(&path, enough).expect("raised limit reads the file");
    assert_eq!(summary.spectra_read, 2);
    assert_eq!(summary.spectra_skipped, 0);
}

#[test]
fn too_many_points_after_zlib_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200_000;
    let mz: Vec<u8> = (0..n)
        .flat_map(|i| (100.0 + i as f64 * 1e-3).to_le_bytes())
        .collect();
    let intensity: Vec<u8> = (0..n).flat_map(|_| 5.0f32.to_le_bytes()).collect();
    let arrays = array(MZ_ARRAY, F64, ZLIB, &zlib(&mz))
        + &array(INTENSITY_ARRAY, F32, ZLIB, &zlib(&intensity));
    let path = write(
        dir.path(),
        "zlib-points.mzML",
        &mzml(&[spectrum(0, n, &arrays, "")]),
    );
    let limits = ReadLimits {
        max_points_per_spectrum: 100_000,
        ..ReadLimits::default()
    };
    expect_limit(
        run(&path, limits),
        &path,
        "limits.max_points_per_spectrum",
        "spectrum 0 (scan=1)",
    );
    // Within the defaults the same file decodes (read directly: processing 200 000 flat
    // points is not what this test is about).
    let mut reader = SpectrumReader::open(&path).unwrap();
    let raw = reader.next_raw().unwrap().expect("one spectrum");
    let (decoded, _) = raw
        .decode(&path)
        .expect("200 000 points are within the defaults");
    assert_eq!(decoded.mz.len(), n);
}

#[test]
fn zlib_bomb_stops_at_the_decompressed_size_limit_by_default() {
    let dir = tempfile::tempdir().unwrap();
    // 300 MiB of zeros in about 300 KB: past the 256 MiB default.
    let bomb = zlib_zeros(300 << 20);
    assert!(bomb.len() < 1 << 20, "the bomb is small: {}", bomb.len());
    let arrays = array(MZ_ARRAY, F64, ZLIB, &bomb)
        + &array(INTENSITY_ARRAY, F32, NONE, &1.0f32.to_le_bytes());
    let path = write(
        dir.path(),
        "bomb.mzML",
        &mzml(&[spectrum(0, 1, &arrays, "")]),
    );
    expect_limit(
        run(&path, ReadLimits::default()),
        &path,
        "limits.max_array_bytes",
        "spectrum 0 (scan=1)",
    );
    // A lower setting stops it sooner, with the same error.
    let low = ReadLimits {
        max_array_bytes: 1 << 20,
        ..ReadLimits::default()
    };
    expect_limit(run(&path, low), &path, "limits.max_array_bytes", "scan=1");
}

#[test]
fn numpress_bombs_are_counted_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    // PIC + zlib: 0x88 is two zero values per byte, so 32 MiB inflate to 64 M values.
    let pic = {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![0x88u8; 1 << 20];
        for _ in 0..32 {
            encoder.write_all(&chunk).unwrap();
        }
        encoder.finish().unwrap()
    };
    // Linear (no zlib): a fixed point, two values, then residues of one half-byte each:
    // 6 MB of base64 text for 9 M values.
    let mut linear = 1000.0f64.to_be_bytes().to_vec();
    linear.extend_from_slice(&[0; 8]);
    linear.extend(std::iter::repeat_n(0x88u8, 9_000_000 / 2));
    let pic_arrays = array(MZ_ARRAY, F64, NONE, &100.0f64.to_le_bytes())
        + &array(INTENSITY_ARRAY, F32, PIC_ZLIB, &pic);
    let pic_file = write(
        dir.path(),
        "pic-bomb.mzML",
        &mzml(&[spectrum(0, 1, &pic_arrays, "")]),
    );
    let linear_file = write(
        dir.path(),
        "linear-bomb.mzML",
        &mzml(&[spectrum(
            0,
            1,
            &(array(MZ_ARRAY, F64, LINEAR, &linear)
                + &array(INTENSITY_ARRAY, F32, NONE, &1.0f32.to_le_bytes())),
            "",
        )]),
    );
    expect_limit(
        run(&pic_file, ReadLimits::default()),
        &pic_file,
        "limits.max_points_per_spectrum",
        "intensity array",
    );
    let low = ReadLimits {
        max_points_per_spectrum: 1_000_000,
        ..ReadLimits::default()
    };
    expect_limit(
        run(&linear_file, low),
        &linear_file,
        "limits.max_points_per_spectrum",
        "m/z array",
    );
}

#[test]
fn spectrum_count_limit_names_the_first_spectrum_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let spectra: Vec<String> = (0..5)
        .map(|i| spectrum(i, 3, &plain_arrays(3), ""))
        .collect();
    let path = write(dir.path(), "count.mzML", &mzml(&spectra));
    let limits = ReadLimits {
        max_spectra: 3,
        ..ReadLimits::default()
    };
    expect_limit(
        run(&path, limits),
        &path,
        "limits.max_spectra",
        "spectrum 3 (scan=4)",
    );
    let mut reader = SpectrumReader::open(&path).unwrap().with_limits(limits);
    for _ in 0..3 {
        assert!(reader.next_raw().unwrap().is_some());
    }
    assert!(matches!(
        reader.next_raw(),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(
        reader.next_raw().unwrap().is_none(),
        "the reader is finished after the error"
    );
    assert_eq!(run(&path, ReadLimits::default()).unwrap().spectra_read, 5);

    // MGF too, where the fourth entry is read or is one that cannot be read.
    let entry = |i: usize, pepmass: &str| {
        format!("BEGIN IONS\nTITLE=entry {i}\nPEPMASS={pepmass}\n100 1\nEND IONS\n")
    };
    for (fourth, at) in [
        ("500", "spectrum 3 (entry 3)"),
        ("abc", "spectrum 3, before byte"),
    ] {
        let text: String = (0..5)
            .map(|i| entry(i, if i == 3 { fourth } else { "500" }))
            .collect();
        let path = write(dir.path(), "count.mgf", &text);
        expect_limit(run(&path, limits), &path, "limits.max_spectra", at);
        assert_eq!(run(&path, ReadLimits::default()).unwrap().spectra_read, 5);
    }
}

#[test]
fn huge_element_inside_a_gzip_bomb_stops_at_the_spectrum_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of attribute text in the second spectrum, gzip-compressed to almost nothing.
    let filler = format!(
        r#"<userParam name="note" value="{}"/>"#,
        "A".repeat(64 << 20)
    );
    let spectra = [
        spectrum(0, 3, &plain_arrays(3), ""),
        spectrum(1, 3, &plain_arrays(3), &filler),
    ];
    let text = mzml(&spectra);
    let path = dir.path().join("element.mzML.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
    drop(text);
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    let limits = ReadLimits {
        max_spectrum_bytes: 8 << 20,
        ..ReadLimits::default()
    };
    expect_limit(
        run(&path, limits),
        &path,
        "limits.max_spectrum_bytes",
        "spectrum 1 (the one after scan=1)",
    );
    // Set on an open reader, the budget applies from there on.
    let tiny = ReadLimits {
        max_spectrum_bytes: 16,
        ..ReadLimits::default()
    };
    let mut reader = SpectrumReader::open(&path).unwrap().with_limits(tiny);
    let outcome = loop {
        match reader.next_raw() {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(outcome, Err(Error::LimitExceeded { .. })),
        "{outcome:?}"
    );
    assert!(
        reader.next_raw().unwrap().is_none(),
        "the reader is finished after the error"
    );
    let summary = run(&path, ReadLimits::default()).expect("64 MiB is within the default");
    assert_eq!(summary.spectra_read, 2);
}

#[test]
fn deep_xml_nesting_is_an_error_or_ignored_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let depth = 200_000;
    let nested = "<userParam name=\"x\">".repeat(depth) + &"</userParam>".repeat(depth);
    let spectra = [
        spectrum(0, 3, &plain_arrays(3), &nested),
        spectrum(1, 3, &plain_arrays(3), ""),
    ];
    let path = write(dir.path(), "deep.mzML", &mzml(&spectra));
    match run(&path, ReadLimits::default()) {
        Ok(summary) => assert_eq!(summary.spectra_read, 2),
        Err(e) => assert!(matches!(e, Error::Malformed { .. }), "unexpected error {e}"),
    }
}

/// Found by the `read` fuzz target: a corrupt Numpress linear or SLOF array handed to
/// `mzdata` made `numpress-rs` format its error, whose `Display` calls itself (stack overflow,
/// the process aborts). Every Numpress array is now decoded by mzforge.
#[test]
fn corrupt_numpress_linear_and_slof_arrays_skip_their_spectrum_not_crash() {
    let dir = tempfile::tempdir().unwrap();
    let intensities = |n: usize| array(INTENSITY_ARRAY, F32, NONE, &vec![0u8; 4 * n]);
    // A fixed point, two values, then a residue head asking for 8 half-bytes with 1 left.
    let mut cut_linear = 1000.0f64.to_be_bytes().to_vec();
    cut_linear.extend_from_slice(&[0, 0, 1, 0, 0, 0, 2, 0]);
    cut_linear.push(0x00);
    // SLOF with an odd byte after the fixed point.
    let mut odd_slof = 1000.0f64.to_be_bytes().to_vec();
    odd_slof.extend_from_slice(&[1, 0, 2]);
    // A linear array shorter than its fixed point.
    let short_linear = vec![0x40u8; 5];
    let good = plain_arrays(3);
    let file = write(
        dir.path(),
        "corrupt-numpress.mzML",
        &mzml(&[
            spectrum(
                0,
                3,
                &(array(MZ_ARRAY, F64, LINEAR, &cut_linear) + &intensities(3)),
                "",
            ),
            spectrum(1, 3, &good, ""),
            spectrum(
                2,
                2,
                &(array(MZ_ARRAY, F64, NONE, &[0u8; 16])
                    + &array(INTENSITY_ARRAY, F32, SLOF, &odd_slof)),
                "",
            ),
            spectrum(
                3,
                1,
                &(array(MZ_ARRAY, F64, LINEAR, &short_linear) + &intensities(1)),
                "",
            ),
        ]),
    );
    let summary = run(&file, ReadLimits::default()).unwrap();
    assert_eq!(summary.spectra_read, 4);
    assert_eq!(summary.spectra_skipped, 3, "{:?}", summary.warnings);
    for index in [0, 2, 3] {
        assert!(
            summary
                .warnings
                .iter()
                .any(|w| w.contains(&format!("spectrum {index}")) && w.contains("Numpress")),
            "spectrum {index}: {:?}",
            summary.warnings
        );
    }
}

/// When every spectrum is bad, the skip policy has nothing to give: the file fails, with how
/// many were skipped and the first one's error, rather than giving an empty result that looks
/// like success. One good spectrum among them makes a result again.
#[test]
fn a_file_whose_every_spectrum_is_bad_fails_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    // SLOF with an odd byte after the fixed point.
    let mut odd_slof = 1000.0f64.to_be_bytes().to_vec();
    odd_slof.extend_from_slice(&[1, 0, 2]);
    let bad = |index| {
        spectrum(
            index,
            2,
            &(array(MZ_ARRAY, F64, NONE, &[0u8; 16])
                + &array(INTENSITY_ARRAY, F32, SLOF, &odd_slof)),
            "",
        )
    };
    let all_bad = write(dir.path(), "all-bad.mzML", &mzml(&[bad(0), bad(1), bad(2)]));
    match run(&all_bad, ReadLimits::default()) {
        Err(Error::NoUsableSpectrum {
            path,
            skipped,
            first,
        }) => {
            assert_eq!(path, all_bad);
            assert_eq!(skipped, 3);
            assert!(
                matches!(*first, Error::BadSpectrum { index: 0, .. }),
                "{first}"
            );
        }
        other => panic!("expected NoUsableSpectrum, got {other:?}"),
    }
    let one_good = write(
        dir.path(),
        "one-good.mzML",
        &mzml(&[bad(0), spectrum(1, 3, &plain_arrays(3), ""), bad(2)]),
    );
    let summary = run(&one_good, ReadLimits::default()).unwrap();
    assert_eq!(
        (summary.spectra_written, summary.spectra_skipped),
        (1, 2),
        "{:?}",
        summary.warnings
    );
}

/// Repairs (m/z sorted, points with NaN or infinite values dropped) are counted in the
/// summary, with one warning per kind naming the first spectrum: a run of thousands of
/// unsorted spectra does not bury its other warnings.
#[test]
fn repairs_are_counted_with_one_warning_each() {
    let dir = tempfile::tempdir().unwrap();
    let arrays = |mz: &[f64], intensity: &[f32]| {
        let mz: Vec<u8> = mz.iter().flat_map(|v| v.to_le_bytes()).collect();
        let intensity: Vec<u8> = intensity.iter().flat_map(|v| v.to_le_bytes()).collect();
        array(MZ_ARRAY, F64, NONE, &mz) + &array(INTENSITY_ARRAY, F32, NONE, &intensity)
    };
    let file = write(
        dir.path(),
        "repairs.mzML",
        &mzml(&[
            spectrum(0, 3, &arrays(&[100.0, 101.0, 102.0], &[1.0, 2.0, 3.0]), ""),
            spectrum(1, 3, &arrays(&[101.0, 100.0, 102.0], &[1.0, 2.0, 3.0]), ""),
            spectrum(
                2,
                4,
                &arrays(
                    &[100.0, f64::NAN, 102.0, 103.0],
                    &[1.0, 2.0, f32::INFINITY, 4.0],
                ),
                "",
            ),
            spectrum(
                3,
                3,
                &arrays(&[102.0, 101.0, f64::INFINITY], &[1.0, 2.0, 3.0]),
                "",
            ),
        ]),
    );
    let summary = run(&file, ReadLimits::default()).unwrap();
    assert_eq!(summary.spectra_written, 4);
    assert_eq!(summary.spectra_sorted, 2, "{:?}", summary.warnings);
    assert_eq!(summary.spectra_with_non_finite, 2);
    assert_eq!(summary.points_dropped_non_finite, 3);
    assert_eq!(
        summary.warnings,
        [
            "2 spectra had m/z values out of order and were sorted (the first: spectrum 1 (scan=2))",
            "3 points with NaN or infinite values were dropped from 2 spectra (the first: spectrum 2 (scan=3))",
            // Not a repair, said all the same: these hand-made scans give no start time.
            "4 spectra give no retention time (the first: spectrum 0 (scan=1)): rt_seconds is null there",
        ]
    );
}

/// With one spectrum or one point, the warnings say so in the singular.
#[test]
fn a_single_repair_is_worded_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    let mz: Vec<u8> = [101.0f64, 100.0, f64::NAN]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let intensity: Vec<u8> = [1.0f32, 2.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let arrays = array(MZ_ARRAY, F64, NONE, &mz) + &array(INTENSITY_ARRAY, F32, NONE, &intensity);
    let file = write(
        dir.path(),
        "one.mzML",
        &mzml(&[spectrum(0, 3, &arrays, "")]),
    );
    let summary = run(&file, ReadLimits::default()).unwrap();
    assert_eq!(
        summary.warnings,
        [
            "1 spectrum had m/z values out of order and was sorted (the first: spectrum 0 (scan=1))",
            "1 point with NaN or infinite values was dropped from 1 spectrum (the first: spectrum 0 (scan=1))",
            "1 spectrum gives no retention time (the first: spectrum 0 (scan=1)): rt_seconds is null there",
        ]
    );
}

#[test]
fn zero_limits_are_invalid_parameters() {
    for limits in [
        ReadLimits {
            max_points_per_spectrum: 0,
            ..ReadLimits::default()
        },
        ReadLimits {
            max_array_bytes: 0,
            ..ReadLimits::default()
        },
        ReadLimits {
            max_spectra: 0,
            ..ReadLimits::default()
        },
        ReadLimits {
            max_spectra: u64::from(u32::MAX) + 1,
            ..ReadLimits::default()
        },
        ReadLimits {
            max_spectrum_bytes: 0,
            ..ReadLimits::default()
        },
    ] {
        let params = PipelineParams {
            limits,
            ..PipelineParams::default()
        };
        let err = Pipeline::new(params).expect_err("zero limit");
        assert!(
            matches!(err, Error::InvalidParameter { name, .. } if name.starts_with("limits.")),
            "{err}"
        );
    }
}
