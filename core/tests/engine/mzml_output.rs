//! Writing the centroided mzML ([`CentroidMzMLWriter`]): the same bytes for the same input,
//! and an error, not a panic, when the disk fails under it.

use std::path::Path;

use mzforge::{CentroidMzMLWriter, MzmlPeaks, Pipeline, PipelineParams, SpectrumReader};

use crate::common::{fixture, shared};

/// Runs `input` through the pipeline and writes its centroids as mzML to `out`.
fn write_centroided_mzml(input: &Path, out: &Path) -> mzforge::Result<()> {
    let reader = SpectrumReader::open(input)?;
    let mut writer = CentroidMzMLWriter::for_reader(out, &reader, MzmlPeaks::Centroids, &[])?;
    let pipeline = Pipeline::new(PipelineParams::default())?.keep_source_descriptions(true);
    pipeline.run(reader, &mut |batch| {
        for spectrum in batch {
            if let Some(source) = &spectrum.source {
                writer.write(source, &spectrum.peaks, spectrum.deconvolution.as_ref())?;
            }
        }
        Ok(())
    })?;
    writer.finish()
}

/// mzdata's writer closes its document when dropped and panics if that fails; after a full
/// disk it did, and took the process down instead of reporting the error.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_a_write_error_naming_the_file_not_a_panic() {
    // `/dev/full` opens as a file does and fails every write with "no space left on device".
    let full = Path::new("/dev/full");
    let outcome =
        std::panic::catch_unwind(|| write_centroided_mzml(&fixture("sim_profile.mzML"), full));
    let error = outcome.expect("no panic").expect_err("a write error");
    assert!(
        matches!(&error, mzforge::Error::Write { path, .. } if path == full),
        "{error}"
    );
    assert!(error.to_string().contains("/dev/full"), "{error}");
}

/// mzdata's writer gathers parameters the instrument configurations share into a
/// `referenceableParamGroup` and listed them in a hash map's order, which changes from run to
/// run (`emptyScan.mzML`: "LTQ Orbitrap" and "instrument serial number" either way round).
#[test]
fn the_same_input_gives_the_same_bytes() {
    let Some(input) = shared("edge/emptyScan.mzML") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let written: Vec<Vec<u8>> = (0..8)
        .map(|round| {
            let out = dir.path().join(format!("{round}.mzML"));
            write_centroided_mzml(&input, &out).unwrap();
            std::fs::read(&out).unwrap()
        })
        .collect();
    assert!(String::from_utf8_lossy(&written[0]).contains("<referenceableParamGroup "));
    for (round, bytes) in written.iter().enumerate().skip(1) {
        assert!(bytes == &written[0], "round {round} wrote other bytes");
    }
}

/// The centroided copy of a spectrum without a scan start time states none (mzdata's writer
/// would state 0); the others keep theirs, and reading the copy gives the same times.
#[test]
fn no_scan_start_time_is_invented() {
    let Some(input) = shared("edge/tiny.pwiz.1.1.mzML") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.centroided.mzML");
    write_centroided_mzml(&input, &out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let spectra: Vec<&str> = text.split("<spectrum ").skip(1).collect();
    assert_eq!(spectra.len(), 4);
    for (i, element) in spectra.iter().enumerate() {
        let element = element.split("</spectrum>").next().unwrap();
        assert_eq!(
            element.contains("scan start time"),
            i != 2,
            "spectrum {i}: {element}"
        );
        assert!(!element.contains("NaN"), "spectrum {i}: {element}");
    }
    let times = |path: &Path| -> Vec<Option<f64>> {
        let reader = SpectrumReader::open(path).unwrap();
        reader.map(|raw| raw.unwrap().meta().rt_seconds).collect()
    };
    let (before, after) = (times(&input), times(&out));
    assert_eq!(after[2], None);
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.is_some(), b.is_some());
        if let (Some(a), Some(b)) = (a, b) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
