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
