//! Reading: formats, encodings, compression, metadata.

use mzforge::{InputFormat, Polarity, SignalKind, SpectrumReader};

use crate::common::{assert_same_spectra, read_all, shared};

#[test]
fn decodes_test_mzml_exactly_like_its_numpy_arrays() {
    let Some(path) = shared("encodings/test.mzML") else {
        return;
    };
    let Some(mz_npy) = shared("encodings/test_mzml_mz.npy") else {
        return;
    };
    let Some(int_npy) = shared("encodings/test_mzml_intensity.npy") else {
        return;
    };
    // The arrays are those of the file's first spectrum.
    let spectra = read_all(&path);
    let mz: Vec<f64> = spectra[0].mz.clone();
    let intensity: Vec<f64> = spectra[0].intensity.iter().map(|&v| v as f64).collect();
    let expected_mz = read_npy_f64(&std::fs::read(mz_npy).unwrap());
    let expected_int = read_npy_f64(&std::fs::read(int_npy).unwrap());
    assert_eq!(mz.len(), expected_mz.len());
    for (a, b) in mz.iter().zip(&expected_mz) {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    }
    assert_eq!(intensity.len(), expected_int.len());
    for (a, b) in intensity.iter().zip(&expected_int) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}

/// Minimal reader for a 1-D little-endian `.npy` of float32 or float64.
fn read_npy_f64(bytes: &[u8]) -> Vec<f64> {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let data = &bytes[10 + header_len..];
    if header.contains("<f8") {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    } else if header.contains("<f4") {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect()
    } else {
        panic!("unsupported npy header {header}")
    }
}

/// Numpress (linear, pic, slof) + zlib against the same data stored as zlib floats: equal
/// within Numpress's documented precision.
#[test]
fn numpress_encoded_file_matches_its_zlib_original() {
    let Some(plain) = shared("encodings/FileFilter_49_input.mzML") else {
        return;
    };
    let Some(numpress) = shared("encodings/FileFilter_49_output.mzML") else {
        return;
    };
    let a = read_all(&plain);
    let b = read_all(&numpress);
    assert_eq!(a.len(), b.len());
    let mut compared = 0;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.meta.native_id, y.meta.native_id);
        assert_eq!(x.mz.len(), y.mz.len(), "{}", x.meta.native_id);
        for (p, q) in x.mz.iter().zip(&y.mz) {
            assert!((p - q).abs() / p.abs().max(1.0) < 1e-5, "m/z {p} vs {q}");
        }
        for (p, q) in x.intensity.iter().zip(&y.intensity) {
            let (p, q) = (*p as f64, *q as f64);
            // PIC rounds to integers; SLOF keeps about four significant digits.
            assert!(
                (p - q).abs() <= 0.5 + 2e-3 * p.abs(),
                "intensity {p} vs {q}"
            );
        }
        compared += x.mz.len();
    }
    assert!(compared > 1000);
}

/// msdk's (MZmine's) writer lists "zlib compression" and "MS-Numpress linear prediction
/// compression" as two parameters of each m/z array: Numpress followed by zlib, as OpenMS
/// reads it. Every spectrum decodes, through the lean parser and through mzdata's, to what
/// an independent decoder (flate2, then numpress-rs) gives the file's m/z arrays.
#[test]
fn numpress_with_zlib_as_a_second_parameter_decodes() {
    use base64::Engine as _;
    use std::io::Read as _;
    let Some(path) = shared("encodings/MzValues_Zlib+Numpress.mzML") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let expected: Vec<Vec<f64>> = text
        .split("<binaryDataArray ")
        .filter(|array| array.contains("MS:1002312") && array.contains("MS:1000574"))
        .map(|array| {
            let start = array.find("<binary>").unwrap() + "<binary>".len();
            let end = array.find("</binary>").unwrap();
            let packed = base64::engine::general_purpose::STANDARD
                .decode(&array[start..end])
                .unwrap();
            let mut numpress = Vec::new();
            flate2::read::ZlibDecoder::new(packed.as_slice())
                .read_to_end(&mut numpress)
                .unwrap();
            numpress_rs::numpress_decompress(&numpress).unwrap()
        })
        .collect();
    assert_eq!(expected.len(), 6);
    let lean = read_all(&path);
    let mut reader = SpectrumReader::open(&path).unwrap();
    reader.set_lean_parsing(false);
    let mut by_mzdata = Vec::new();
    while let Some(raw) = reader.next_raw().unwrap() {
        by_mzdata.push(raw.decode(&path).unwrap().0);
    }
    assert_eq!(lean, by_mzdata);
    assert_eq!(lean.len(), expected.len());
    for (spectrum, mz) in lean.iter().zip(&expected) {
        assert_eq!(&spectrum.mz, mz, "{}", spectrum.meta.native_id);
        assert_eq!(spectrum.intensity.len(), mz.len());
        assert!(mz.windows(2).all(|w| w[0] < w[1]) && mz[0] >= 100.0 && mz[mz.len() - 1] <= 1000.0);
    }
}

#[test]
fn compressed_uncompressed_and_gzip_files_decode_identically() {
    let (Some(a), Some(b), Some(c)) = (
        shared("encodings/MzMLFile_6_uncompressed.mzML"),
        shared("encodings/MzMLFile_6_compressed.mzML"),
        shared("encodings/MzMLFile_6_uncompressed.mzML.gz"),
    ) else {
        return;
    };
    let (a, b, c) = (read_all(&a), read_all(&b), read_all(&c));
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert!(
        SpectrumReader::open(shared("encodings/MzMLFile_6_uncompressed.mzML.gz").unwrap())
            .unwrap()
            .info()
            .gzip
    );
}

#[test]
fn gzip_run_without_index_streams_every_spectrum() {
    let Some(path) = shared("runs/MapAlignmentAlgorithmPoseClustering_in1.mzML.gz") else {
        return;
    };
    let spectra = read_all(&path);
    assert_eq!(spectra.len(), 2035);
    assert!(spectra.iter().all(|s| s.meta.ms_level == 1));
    let rts: Vec<f64> = spectra.iter().map(|s| s.meta.rt_seconds.unwrap()).collect();
    assert!(rts.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn thirty_two_bit_and_mixed_precision_files_read() {
    let Some(gnps) = shared("runs/GNPSExport_mzml1.mzML") else {
        return;
    };
    let Some(mixed) = shared("encodings/SmallCalibratibleYeast_mixed_bits.mzml") else {
        return;
    };
    for path in [gnps, mixed] {
        let spectra = read_all(&path);
        assert!(!spectra.is_empty());
        for s in &spectra {
            assert_eq!(s.mz.len(), s.intensity.len());
            assert!(s.mz.windows(2).all(|w| w[0] <= w[1]));
            assert!(s.mz.iter().all(|m| m.is_finite() && *m > 0.0));
        }
    }
}

#[test]
fn dda_run_metadata_precursors_and_levels() {
    let Some(path) = shared("runs/BSA1.mzML") else {
        return;
    };
    let mut reader = SpectrumReader::open(&path).unwrap();
    assert_eq!(reader.info().format, Some(InputFormat::MzML));
    assert_eq!(reader.info().declared_spectrum_count, Some(1684));
    let mut levels = [0usize; 3];
    let mut charged = 0;
    let mut indices = Vec::new();
    while let Some(raw) = reader.next_raw().unwrap() {
        let meta = raw.meta();
        indices.push(meta.index);
        levels[meta.ms_level as usize] += 1;
        assert_eq!(meta.polarity, Polarity::Positive);
        assert_eq!(meta.declared_signal, Some(SignalKind::Centroid));
        if meta.ms_level == 2 {
            let p = meta.precursor.expect("MS2 has a precursor");
            assert!(p.mz > 100.0 && p.mz < 2000.0);
            assert!(
                p.isolation_lower_mz.is_some()
                    || p.isolation_target_mz.is_some()
                    || p.charge.is_some()
            );
            charged += p.charge.is_some() as usize;
        } else {
            assert!(meta.precursor.is_none());
            assert!(meta.scan_window.is_some());
        }
    }
    assert_eq!(levels[1], 564);
    assert_eq!(levels[2], 1120);
    assert_eq!(charged, 1120);
    assert!(indices.iter().enumerate().all(|(i, &x)| i as u32 == x));
}

#[test]
fn three_ms_levels_and_ion_mobility_files_read() {
    let Some(ms3) = shared("runs/MS3_nonHierarchical.mzML") else {
        return;
    };
    let spectra = read_all(&ms3);
    for level in 1..=3 {
        assert!(
            spectra.iter().any(|s| s.meta.ms_level == level),
            "no MS{level}"
        );
    }
    let Some(tims) =
        shared("runs/20200204_BU_8B8egg_1ug_uL_7charges_60_min_Slot2-11_1_244.mzML.gz")
    else {
        return;
    };
    let spectra = read_all(&tims);
    assert!(spectra.len() > 100);
    assert!(spectra.iter().map(|s| s.mz.len()).max().unwrap() > 100_000);
}

#[test]
fn mgf_files_read_with_retention_times_and_peaks() {
    let Some(path) = shared("mgf/small.mgf") else {
        return;
    };
    let reader = SpectrumReader::open(&path).unwrap();
    assert_eq!(reader.info().format, Some(InputFormat::Mgf));
    let spectra = read_all(&path);
    assert!(spectra.len() > 10);
    let rts: Vec<f64> = spectra.iter().map(|s| s.meta.rt_seconds.unwrap()).collect();
    assert!(rts.windows(2).all(|w| w[0] < w[1]));
    assert!((rts[0] - 0.6731).abs() < 1e-3, "{}", rts[0]);
    assert!(spectra
        .iter()
        .all(|s| !s.mz.is_empty() && s.mz.len() == s.intensity.len()));
}

/// MGF comment lines (`#`, `;`, `!`, `/` first) are skipped wherever they are; a file-header
/// line that is neither a parameter nor a comment is an error, not the end of the file.
#[test]
fn mgf_comments_are_skipped_and_an_unreadable_header_line_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let block = |title: &str, extra: &str| {
        format!(
            "BEGIN IONS\nTITLE={title}\n{extra}PEPMASS=500.5\n100.0 10.0\n200.0 20.0\nEND IONS\n"
        )
    };
    // One comment longer than any read buffer, so that it spans several reads.
    let long = format!("# {}\n", "x".repeat(100_000));
    let commented = dir.path().join("commented.mgf");
    let text = format!(
        "# written by a tool\n; its settings\nMASS=Monoisotopic\n{}! between\n{long}/ more\n{}",
        block("a", ""),
        block("b", "# inside\n")
    );
    std::fs::write(&commented, text).unwrap();
    let spectra = read_all(&commented);
    assert_eq!(spectra.len(), 2);
    for s in &spectra {
        assert_eq!(s.mz, [100.0, 200.0]);
        assert_eq!(s.intensity, [10.0, 20.0]);
    }
    assert_eq!(spectra[1].meta.native_id, "b");

    // Named by its line, counting the comment lines left out.
    let junk = dir.path().join("junk.mgf");
    std::fs::write(
        &junk,
        format!("# c\nMASS=Monoisotopic\n; c\njunk\n{}", block("a", "")),
    )
    .unwrap();
    let mut reader = SpectrumReader::open(&junk).unwrap();
    let err = reader.next_raw().unwrap_err();
    assert!(matches!(err, mzforge::Error::Malformed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("junk.mgf: malformed input at line 4, before the first spectrum: ")
            && err.to_string().contains("BEGIN IONS"),
        "{err}"
    );
}

/// An msalign file (deconvolved neutral masses in MGF-like blocks) is refused in words, not
/// read as MGF with its masses taken for m/z values: FLASHDeconv's (a comment says so) and
/// TopFD's (keys MGF has not), while an MGF with a `PEPMASS` is still MGF.
#[test]
fn msalign_files_are_refused_not_read_as_mgf() {
    let Some(flashdeconv) = shared("deconvolution/reference_aqpz/toppic_ms2.msalign") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let topfd = dir.path().join("run_ms2.msalign");
    std::fs::write(
        &topfd,
        "BEGIN IONS\nID=0\nFRACTION_ID=0\nSCANS=12\nRETENTION_TIME=4.2\nACTIVATION=HCD\n\
         MS_ONE_ID=0\nPRECURSOR_MZ=500.25\nPRECURSOR_CHARGE=2\nPRECURSOR_MASS=998.48\n\
         301.1532 1200.5 1\n402.2011 800.25 1\nEND IONS\n",
    )
    .unwrap();
    for path in [&flashdeconv, &topfd] {
        let err = SpectrumReader::open(path).map(|_| ()).unwrap_err();
        assert!(matches!(err, mzforge::Error::UnknownFormat { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("msalign") && text.contains(&path.display().to_string()),
            "{text}"
        );
    }
    let mgf = dir.path().join("with_pepmass.mgf");
    std::fs::write(
        &mgf,
        "BEGIN IONS\nTITLE=a\nPEPMASS=500.25\nPRECURSOR_MASS=998.48\n100.0 10.0\nEND IONS\n",
    )
    .unwrap();
    assert_eq!(read_all(&mgf).len(), 1);
}

#[test]
fn mislabelled_centroid_data_is_detected() {
    let Some(path) = shared("edge/centroided1.mzML") else {
        return;
    };
    let mut scratch = Vec::new();
    for s in read_all(&path) {
        assert_eq!(s.meta.declared_signal, Some(SignalKind::Profile));
        let seen = mzforge::signal::detect_signal_kind(&s.mz, &s.intensity, &mut scratch);
        assert_eq!(seen, Some(SignalKind::Centroid), "{}", s.meta.native_id);
    }
}

#[test]
fn profile_files_are_recognised_as_profile() {
    let mut scratch = Vec::new();
    for rel in [
        "profile/small.mzML",
        "profile/three_test_scans.mzML",
        "profile/gc_orbi_profile_21scans.mzML",
    ] {
        let Some(path) = shared(rel) else { return };
        for s in read_all(&path) {
            if s.meta.declared_signal == Some(SignalKind::Profile) {
                let seen = mzforge::signal::detect_signal_kind(&s.mz, &s.intensity, &mut scratch);
                assert_ne!(
                    seen,
                    Some(SignalKind::Centroid),
                    "{rel} {}",
                    s.meta.native_id
                );
            }
        }
    }
}

/// mzMLb (an early file without the `version` attribute `mzdata`'s own reader requires, one
/// spectrum's m/z stored as float32) against the same two spectra as plain mzML.
#[cfg(feature = "mzmlb")]
#[test]
fn mzmlb_spectra_equal_their_mzml_twin() {
    let Some(mzmlb) = shared("encodings/test_old.mzMLb") else {
        return;
    };
    let Some(mzml) = shared("encodings/test.mzML") else {
        return;
    };
    let reader = SpectrumReader::open(&mzmlb).unwrap();
    assert_eq!(reader.info().format, Some(InputFormat::MzMLb));
    let (a, b) = (read_all(&mzmlb), read_all(&mzml));
    assert_eq!(a.len(), 2);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.meta.native_id, y.meta.native_id);
        assert_eq!(x.meta.declared_signal, y.meta.declared_signal);
        assert_eq!(x.meta.scan_window, y.meta.scan_window);
        assert!((x.meta.rt_seconds.unwrap() - y.meta.rt_seconds.unwrap()).abs() < 1e-9);
        assert_eq!(x.mz.len(), y.mz.len());
        for (p, q) in x.mz.iter().zip(&y.mz) {
            // float32 storage: 2^-24 relative.
            assert!((p - q).abs() / q <= 1e-7, "m/z {p} vs {q}");
        }
        assert_eq!(x.intensity, y.intensity);
    }
}

/// An mzMLb whose array reference is broken skips that spectrum, by policy, naming it; a
/// file that is HDF5 but not mzMLb is refused naming the file.
#[cfg(feature = "mzmlb")]
#[test]
fn broken_mzmlb_references_and_non_mzmlb_hdf5_are_clear_errors() {
    use mzforge::{Error, Pipeline, PipelineParams};
    let Some(original) = shared("encodings/test_old.mzMLb") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The same container with the float64 m/z dataset renamed in the HDF5 metadata (same
    // length); the deflated document still names the old one, for spectrum 0.
    let mut bytes = std::fs::read(&original).unwrap();
    let name = b"spectrum_MS_1000514_float64";
    let renamed = b"spectrum_MS_1000514_floatXX";
    let mut replaced = 0;
    for at in 0..bytes.len().saturating_sub(name.len()) {
        if &bytes[at..at + name.len()] == name {
            bytes[at..at + name.len()].copy_from_slice(renamed);
            replaced += 1;
        }
    }
    assert!(replaced > 0, "the dataset name is in the HDF5 metadata");
    let broken = dir.path().join("broken.mzMLb");
    std::fs::write(&broken, &bytes).unwrap();
    let summary = Pipeline::new(PipelineParams::default())
        .unwrap()
        .run_path(&broken, &mut |_| Ok(()))
        .unwrap();
    assert_eq!(summary.spectra_skipped, 1, "{:?}", summary.warnings);
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.contains("spectrum 0") && w.contains("spectrum_MS_1000514_float64")),
        "{:?}",
        summary.warnings
    );
    // HDF5 without an `mzML` dataset.
    let hdf5_only = dir.path().join("other.h5");
    let mut head = b"\x89HDF\r\n\x1a\n".to_vec();
    head.extend_from_slice(&[0; 64]);
    std::fs::write(&hdf5_only, &head).unwrap();
    let err = SpectrumReader::open(&hdf5_only).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("other.h5"), "{err}");
}

#[cfg(not(feature = "mzmlb"))]
#[test]
fn mzmlb_without_the_feature_is_a_clear_error() {
    let Some(mzmlb) = shared("encodings/test_old.mzMLb") else {
        return;
    };
    let err = SpectrumReader::open(&mzmlb).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("test_old.mzMLb") && text.contains("mzmlb"),
        "{text}"
    );
}

/// A named pipe is read like the file written into it (the format check peeks at its first
/// bytes without seeking, which a pipe cannot do).
/// A named pipe in a new temporary directory, and a thread writing `file` into it.
#[cfg(unix)]
fn pipe_fed_from(
    file: &std::path::Path,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::thread::JoinHandle<std::io::Result<()>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stream.mzML");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let writer = {
        let (fifo, file) = (fifo.clone(), file.to_owned());
        std::thread::spawn(move || std::fs::write(&fifo, std::fs::read(&file).unwrap()))
    };
    (dir, fifo, writer)
}

#[cfg(unix)]
#[test]
fn a_named_pipe_reads_like_the_file_written_into_it() {
    let file = crate::common::fixture("sim_profile.mzML");
    let (_dir, fifo, writer) = pipe_fed_from(&file);
    let from_pipe = read_all(&fifo);
    writer.join().unwrap().unwrap();
    let from_file = read_all(&file);
    assert!(!from_file.is_empty());
    assert_eq!(from_pipe.len(), from_file.len());
    for (a, b) in from_pipe.iter().zip(&from_file) {
        assert_eq!(a.meta.native_id, b.meta.native_id);
        assert_eq!(a.mz, b.mz);
        assert_eq!(a.intensity, b.intensity);
    }
}

/// The digest taken while a whole run reads the file equals the digest of a separate pass,
/// for plain, gzip-compressed and MGF inputs, and for a pipe, which cannot be read twice.
#[test]
fn a_run_hashes_its_input_as_it_reads_it() {
    use mzforge::output::file_digest;
    use mzforge::{Pipeline, PipelineParams};

    let pipeline = Pipeline::new(PipelineParams::default()).unwrap();
    let run_digested = |path: &std::path::Path| {
        let (reader, digest) = SpectrumReader::open_digested(path).unwrap();
        let mut spectra = 0;
        pipeline
            .run(reader, &mut |batch| {
                spectra += batch.len();
                Ok(())
            })
            .unwrap();
        assert!(spectra > 0, "{}", path.display());
        digest.finish()
    };
    let mut inputs = vec![crate::common::fixture("sim_profile.mzML")];
    for rel in ["runs/QualityControl_1_in1.mzML.gz", "mgf/small.mgf"] {
        inputs.extend(shared(rel));
    }
    for path in &inputs {
        let digest = run_digested(path);
        assert_eq!(
            digest,
            Some(file_digest(path).unwrap()),
            "{}",
            path.display()
        );
    }

    #[cfg(unix)]
    {
        let file = crate::common::fixture("sim_profile.mzML");
        let (_dir, fifo, writer) = pipe_fed_from(&file);
        let digest = run_digested(&fifo);
        writer.join().unwrap().unwrap();
        assert_eq!(digest, Some(file_digest(&file).unwrap()));
    }
}

/// One pipeline reads input after input into the chunks the inputs before them were read
/// into: each run's spectra and peaks equal those of a pipeline of its own.
#[test]
fn one_pipeline_reads_inputs_in_turn_as_new_pipelines_would() {
    use mzforge::{Pipeline, PipelineParams, ProcessedSpectrum};

    let paths: Vec<_> = [
        "profile/small.mzML",
        "runs/171103_PMA_TK_QC_04-4to5min.mzML",
    ]
    .into_iter()
    .filter_map(shared)
    .collect();
    if paths.len() < 2 {
        return;
    }
    let params = PipelineParams {
        threads: 2,
        ..Default::default()
    };
    let run = |pipeline: &Pipeline, path: &std::path::Path| {
        let mut spectra: Vec<ProcessedSpectrum> = Vec::new();
        pipeline
            .run_path(path, &mut |batch| {
                spectra.extend_from_slice(batch);
                Ok(())
            })
            .unwrap();
        spectra
    };
    let alone: Vec<_> = paths
        .iter()
        .map(|path| run(&Pipeline::new(params.clone()).unwrap(), path))
        .collect();
    let shared_pipeline = Pipeline::new(params).unwrap();
    for k in [0, 1, 0, 1] {
        let spectra = run(&shared_pipeline, &paths[k]);
        assert!(spectra.len() > 40, "{}", paths[k].display());
        assert_eq!(spectra.len(), alone[k].len(), "{}", paths[k].display());
        for (got, expected) in spectra.iter().zip(&alone[k]) {
            assert_eq!(got.meta, expected.meta, "{}", paths[k].display());
            // Debug forms: exact for every float, and NaN (a centroid's width) equals itself.
            assert!(
                format!("{:?}", got.peaks) == format!("{:?}", expected.peaks),
                "{}: the peaks of {} differ",
                paths[k].display(),
                got.meta.native_id
            );
        }
    }
}

#[test]
fn ms_levels_the_file_lacks_give_an_empty_result_with_a_warning_naming_its_levels() {
    let Some(path) = shared("runs/MS3_nonHierarchical.mzML") else {
        return;
    };
    let run = |ms_levels: Vec<u8>| {
        let params = mzforge::PipelineParams {
            ms_levels,
            ..Default::default()
        };
        mzforge::Pipeline::new(params)
            .unwrap()
            .run_path(&path, &mut |_| Ok(()))
            .unwrap()
    };
    let all = run(vec![]);
    let count = |level| {
        all.spectra_per_level
            .iter()
            .find(|(l, _)| *l == level)
            .map_or(0, |(_, n)| *n)
    };
    let none = run(vec![4, 5]);
    assert_eq!(none.spectra_written, 0);
    assert_eq!(none.spectra_read, all.spectra_read);
    let expected = format!(
        "no spectrum is of the MS levels asked for (ms_levels [4, 5]); the file holds MS1: {}, MS2: {}, MS3: {}",
        count(1),
        count(2),
        count(3)
    );
    assert!(none.warnings.contains(&expected), "{:?}", none.warnings);
    // A level the file has: no such warning.
    let ms3 = run(vec![3]);
    assert_eq!(ms3.spectra_written, count(3));
    assert!(ms3
        .warnings
        .iter()
        .all(|w| !w.contains("MS levels asked for")));
}

/// Numpress and "zlib compression" as two parameters of an array, in either order, are
/// Numpress followed by zlib (the combined terms' meaning): the bytes are inflated, then
/// decoded as Numpress. mzdata keeps the last term alone, so with zlib last it read Numpress
/// bytes as values; the lean parser and mzdata's reading (used when the full description is
/// kept, for `--mzml`) now both give the values.
#[test]
fn numpress_and_zlib_as_two_parameters_decode_in_either_order() {
    use mzforge_fixtures::handmade::{
        cv, mzml, spectrum, F32, F64, INTENSITY_ARRAY, LINEAR, MZ_ARRAY, SLOF, ZLIB,
    };
    use std::io::Write as _;

    let mz = [100.25, 150.5, 250.125, 999.0];
    let intensity = [10.0f64, 2500.0, 7.5, 1e6];
    let zlib = |bytes: &[u8]| {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let linear = numpress_rs::numpress_compress(&mz, 1e5).unwrap();
    let mut slof = Vec::new();
    let fixed_point = numpress_rs::optimal_slof_fixed_point(&intensity);
    numpress_rs::encode_slof(&intensity, &mut slof, fixed_point).unwrap();
    let expected_mz = numpress_rs::numpress_decompress(&linear).unwrap();
    let mut expected_intensity = Vec::new();
    numpress_rs::decode_slof(&slof, &mut expected_intensity).unwrap();

    let array = |kind, dtype, terms: &[_], bytes: &[u8]| {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let terms: String = terms.iter().map(|&t| cv(t)).collect();
        format!(
            "<binaryDataArray encodedLength=\"{}\">{}{terms}{}<binary>{text}</binary></binaryDataArray>",
            text.len(),
            cv(dtype),
            cv(kind)
        )
    };
    let zlib_last = array(MZ_ARRAY, F64, &[LINEAR, ZLIB], &zlib(&linear))
        + &array(INTENSITY_ARRAY, F32, &[SLOF, ZLIB], &zlib(&slof));
    let zlib_first = array(MZ_ARRAY, F64, &[ZLIB, LINEAR], &zlib(&linear))
        + &array(INTENSITY_ARRAY, F32, &[ZLIB, SLOF], &zlib(&slof));
    let document = mzml(&[
        spectrum(0, mz.len(), &zlib_last, ""),
        spectrum(1, mz.len(), &zlib_first, ""),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numpress_zlib.mzML");
    std::fs::write(&path, document).unwrap();

    for lean in [true, false] {
        let mut reader = SpectrumReader::open(&path).unwrap();
        reader.set_lean_parsing(lean);
        let mut read = 0;
        while let Some(raw) = reader.next_raw().unwrap() {
            let (spectrum, _) = raw.decode(&path).unwrap();
            assert_eq!(spectrum.mz, expected_mz, "lean parsing {lean}");
            let intensity: Vec<f32> = expected_intensity.iter().map(|&v| v as f32).collect();
            assert_eq!(spectrum.intensity, intensity, "lean parsing {lean}");
            read += 1;
        }
        assert_eq!(read, 2);
    }
}

/// A spectrum whose file gives no scan start time has no retention time, not one of 0 s:
/// scan 21 of tiny.pwiz (an empty `<scan>`), whichever parser reads it, and a null in
/// `spectra.parquet`; the other spectra keep theirs (in minutes and in seconds).
#[test]
fn a_scan_without_start_time_has_no_retention_time() {
    use arrow::array::Array;
    let Some(path) = shared("edge/tiny.pwiz.1.1.mzML") else {
        return;
    };
    for lean in [true, false] {
        let mut reader = SpectrumReader::open(&path).unwrap();
        reader.set_lean_parsing(lean);
        let mut metas = Vec::new();
        while let Some(raw) = reader.next_raw().unwrap() {
            metas.push(raw.meta());
        }
        assert_eq!(metas.len(), 4, "lean parsing {lean}");
        assert_eq!(metas[2].native_id, "scan=21");
        assert_eq!(metas[2].rt_seconds, None, "lean parsing {lean}");
        let rt = |i: usize| metas[i].rt_seconds.unwrap();
        assert!((rt(0) - 5.8905 * 60.0).abs() < 1e-9, "{}", rt(0));
        assert!((rt(1) - 5.9905 * 60.0).abs() < 1e-9, "{}", rt(1));
        assert!((rt(3) - 42.05).abs() < 1e-9, "{}", rt(3));
    }

    let mut processed = Vec::new();
    let summary = mzforge::Pipeline::new(mzforge::PipelineParams::default())
        .unwrap()
        .run_path(&path, &mut |batch| {
            processed.extend_from_slice(batch);
            Ok(())
        })
        .unwrap();
    // Said, not only left null: counted and warned about once, naming the first.
    assert_eq!(summary.spectra_without_rt, 1);
    let warned: Vec<_> = (summary.warnings.iter())
        .filter(|w| w.contains("no retention time"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", summary.warnings);
    assert!(warned[0].contains("spectrum 2 (scan=21)"), "{}", warned[0]);
    let batch = mzforge::output::spectra_batch(&processed).unwrap();
    let schema = batch.schema();
    let field = schema.field_with_name("rt_seconds").unwrap();
    assert!(field.is_nullable());
    let column = batch
        .column_by_name("rt_seconds")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap();
    let ids = batch
        .column_by_name("native_id")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    let at = (0..ids.len()).find(|&i| ids.value(i) == "scan=21").unwrap();
    assert!(column.is_null(at), "{column:?}");
    assert_eq!(column.null_count(), 1, "{column:?}");
}

/// A scan start time of 0 is a time; no scan, or a scan without one, is none: in both parsers.
#[test]
fn a_start_time_of_zero_is_kept_and_a_missing_one_is_none() {
    use mzforge_fixtures::handmade::{
        array, mzml, spectrum, F32, F64, INTENSITY_ARRAY, MZ_ARRAY, NONE,
    };
    let mz: Vec<u8> = [100.0f64, 100.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let intensity: Vec<u8> = [10.0f32, 20.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let arrays = array(MZ_ARRAY, F64, NONE, &mz) + &array(INTENSITY_ARRAY, F32, NONE, &intensity);
    let time = |value: &str| {
        format!(
            r#"<scanList count="1"><scan><cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="{value}" unitCvRef="UO" unitAccession="UO:0000010" unitName="second"/></scan></scanList>"#
        )
    };
    let document = mzml(&[
        spectrum(0, 2, &arrays, &time("0")),
        spectrum(
            1,
            2,
            &arrays,
            r#"<scanList count="1"><scan></scan></scanList>"#,
        ),
        spectrum(2, 2, &arrays, ""),
        spectrum(3, 2, &arrays, &time("7.5")),
        // A second scan's time is not the first scan's.
        spectrum(
            4,
            2,
            &arrays,
            r#"<scanList count="2"><scan></scan><scan><cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="9" unitCvRef="UO" unitAccession="UO:0000010" unitName="second"/></scan></scanList>"#,
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("times.mzML");
    std::fs::write(&path, document).unwrap();
    for lean in [true, false] {
        let mut reader = SpectrumReader::open(&path).unwrap();
        reader.set_lean_parsing(lean);
        let mut rts = Vec::new();
        while let Some(raw) = reader.next_raw().unwrap() {
            rts.push(raw.meta().rt_seconds);
        }
        assert_eq!(
            rts,
            [Some(0.0), None, None, Some(7.5), None],
            "lean parsing {lean}"
        );
    }
}

/// An MGF entry without `RTINSECONDS` has no retention time (not 0 s), wherever its
/// `BEGIN IONS` falls in the reads; `RTINSECONDS=0` is a time.
#[test]
fn mgf_entries_without_rtinseconds_have_no_retention_time() {
    let mut text = String::from("# a comment\nMASS=Monoisotopic\n");
    let mut expected = Vec::new();
    // Entries of varied lengths, so that `BEGIN IONS` lines straddle the reads' buffers.
    for i in 0..600 {
        let rt = match i % 3 {
            0 => None,
            1 => Some(i as f64 * 1.5),
            _ => Some(0.0),
        };
        let begin = if i % 5 == 0 {
            "  BEGIN IONS \r\n"
        } else {
            "BEGIN IONS\n"
        };
        text.push_str(begin);
        text.push_str(&format!("TITLE=entry {i}{}\n", "x".repeat(i % 37)));
        if i % 7 == 0 {
            text.push_str("# a comment inside\n");
        }
        if let Some(rt) = rt {
            text.push_str(&format!("RTINSECONDS={rt}\n"));
        }
        text.push_str("PEPMASS=500.5\n100.0 10.0\n200.0 20.0\nEND IONS\n");
        expected.push(rt);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("times.mgf");
    std::fs::write(&path, text).unwrap();
    let spectra = read_all(&path);
    assert_eq!(spectra.len(), expected.len());
    for (i, (s, rt)) in spectra.iter().zip(&expected).enumerate() {
        match (s.meta.rt_seconds, rt) {
            (None, None) => {}
            (Some(got), Some(rt)) => assert!((got - rt).abs() < 1e-9, "entry {i}: {got}"),
            (got, _) => panic!("entry {i}: {got:?}, expected {rt:?}"),
        }
    }
    assert_eq!(
        spectra[5].meta.native_id,
        format!("entry 5{}", "x".repeat(5))
    );
    assert!(spectra.iter().all(|s| s.mz == [100.0, 200.0]));
}

/// `xml` with every self-closed parameter element (`<cvParam .../>`, `<userParam .../>`,
/// `<referenceableParamGroupRef .../>`) written with an end tag instead, which XML reads as
/// the same element: `<cvParam ...></cvParam>`.
fn params_with_end_tags(xml: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(xml.len() + xml.len() / 8);
    let mut rest = xml;
    while let Some(at) = rest.iter().position(|&b| b == b'<') {
        out.extend_from_slice(&rest[..at]);
        rest = &rest[at..];
        let name = [&b"cvParam"[..], b"userParam", b"referenceableParamGroupRef"]
            .into_iter()
            .find(|name| {
                rest[1..].starts_with(name)
                    && rest
                        .get(1 + name.len())
                        .is_some_and(|b| b.is_ascii_whitespace())
            });
        let tag_end = rest.iter().position(|&b| b == b'>').expect("a closed tag");
        match name {
            Some(name) if rest[tag_end - 1] == b'/' => {
                let open = rest[..tag_end - 1].trim_ascii_end();
                out.extend_from_slice(open);
                out.extend_from_slice(b"></");
                out.extend_from_slice(name);
                out.push(b'>');
            }
            _ => out.extend_from_slice(&rest[..=tag_end]),
        }
        rest = &rest[tag_end + 1..];
    }
    out.extend_from_slice(rest);
    out
}

/// Writes `bytes` (a rewritten form of `expected`'s file) into `dir` under that file's name
/// and checks that they read to exactly the `expected` spectra; the copy's path.
fn assert_copy_reads_the_same(
    rel: &str,
    expected: &[mzforge::Spectrum],
    bytes: &[u8],
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let copy = dir.join(std::path::Path::new(rel).file_name().unwrap());
    std::fs::write(&copy, bytes).unwrap();
    assert_same_spectra(&read_all(&copy), expected, rel);
    copy
}

#[test]
fn parameters_written_with_end_tags_read_like_self_closed_ones() {
    let files = [
        "profile/small.mzML",
        "runs/171103_PMA_TK_QC_04-4to5min.mzML",
        "encodings/FileFilter_49_output.mzML",
        "edge/tiny.pwiz.1.1.mzML",
        "deconvolution/slicedTDYeast.mzML",
    ];
    let dir = tempfile::tempdir().unwrap();
    for rel in files {
        let Some(path) = shared(rel) else {
            return;
        };
        let original = std::fs::read(&path).unwrap();
        let rewritten = params_with_end_tags(&original);
        let self_closed = original.windows(2).filter(|w| w == b"/>").count();
        let end_tags = rewritten.windows(10).filter(|w| w == b"></cvParam").count();
        assert!(
            end_tags > 10 && end_tags < self_closed,
            "{rel}: {end_tags} rewritten"
        );
        let expected = read_all(&path);
        assert!(!expected.is_empty(), "{rel}");
        assert!(expected.iter().all(|s| s.meta.ms_level > 0), "{rel}");
        let copy = assert_copy_reads_the_same(rel, &expected, &rewritten, dir.path());
        let (reader, copied) = (
            SpectrumReader::open(&path).unwrap(),
            SpectrumReader::open(&copy).unwrap(),
        );
        assert_eq!(
            copied.info().instruments,
            reader.info().instruments,
            "{rel}"
        );
        assert_eq!(
            copied.info().declared_spectrum_count,
            reader.info().declared_spectrum_count
        );
    }
}

/// `xml` with the text of every `<binary>` element broken into lines of 76 characters, each
/// line ended by `line_end` (XML Schema's base64Binary allows white space anywhere in it).
fn base64_in_lines(xml: &[u8], line_end: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(xml.len() + xml.len() / 16);
    let mut rest = xml;
    while let Some(at) = rest.windows(8).position(|w| w == b"<binary>") {
        out.extend_from_slice(&rest[..at + 8]);
        rest = &rest[at + 8..];
        let end = rest.iter().position(|&b| b == b'<').expect("</binary>");
        for (i, line) in rest[..end].chunks(76).enumerate() {
            if i > 0 {
                out.extend_from_slice(line_end);
            }
            out.extend_from_slice(line);
        }
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    out
}

#[test]
fn base64_broken_into_lines_decodes_like_one_line() {
    let files = [
        "profile/small.mzML",
        "runs/171103_PMA_TK_QC_04-4to5min.mzML",
        "encodings/MzMLFile_6_compressed.mzML",
        "encodings/FileFilter_49_output.mzML",
    ];
    let dir = tempfile::tempdir().unwrap();
    for rel in files {
        let Some(path) = shared(rel) else {
            return;
        };
        let expected = read_all(&path);
        assert!(!expected.is_empty(), "{rel}");
        assert!(expected.iter().any(|s| s.mz.len() > 20), "{rel}");
        let original = std::fs::read(&path).unwrap();
        for line_end in [&b"\n"[..], b"\r\n        "] {
            let wrapped = base64_in_lines(&original, line_end);
            assert!(wrapped.len() > original.len(), "{rel}: nothing wrapped");
            assert_copy_reads_the_same(rel, &expected, &wrapped, dir.path());
        }
    }
    // Text broken for another reason as well is still an error, and names that reason.
    let Some(path) = shared("profile/small.mzML") else {
        return;
    };
    let wrapped = base64_in_lines(&std::fs::read(&path).unwrap(), b"\n");
    let at = wrapped.windows(8).position(|w| w == b"<binary>").unwrap() + 8;
    let mut broken = wrapped.clone();
    broken[at + 3] = b'!';
    let copy = dir.path().join("broken.mzML");
    std::fs::write(&copy, &broken).unwrap();
    let mut reader = SpectrumReader::open(&copy).unwrap();
    let first = reader.next_raw().unwrap().unwrap();
    let error = first.decode(&copy).unwrap_err().to_string();
    assert!(
        error.contains("invalid base64") && error.contains("33"),
        "{error}"
    );
}

/// `path` (an MGF file) written into `dir` with every line that starts with `key` replaced by
/// `rewrite(the rest of that line, how many such lines came before it)`: the copy, and how
/// many lines were rewritten.
fn mgf_with_lines_rewritten(
    path: &std::path::Path,
    dir: &std::path::Path,
    key: &str,
    mut rewrite: impl FnMut(&str, usize) -> String,
) -> (std::path::PathBuf, usize) {
    let mut rewritten = 0;
    let text: String = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| match line.strip_prefix(key) {
            Some(rest) => {
                rewritten += 1;
                format!("{}\n", rewrite(rest, rewritten - 1))
            }
            None => format!("{line}\n"),
        })
        .collect();
    let copy = dir.join(path.file_name().unwrap());
    std::fs::write(&copy, text).unwrap();
    (copy, rewritten)
}

/// A whole pipeline run over `path` (default parameters), and what its reader mended.
fn run_with_notes(path: &std::path::Path) -> (mzforge::RunSummary, mzforge::ReaderNotes) {
    let reader = SpectrumReader::open(path).unwrap();
    let notes = reader.notes();
    let pipeline = mzforge::Pipeline::new(mzforge::PipelineParams::default()).unwrap();
    (pipeline.run(reader, &mut |_| Ok(())).unwrap(), notes)
}

/// Mascot's format lets an MGF entry list several charges (`CHARGE=2+ and 3+`); mzdata stops
/// the whole file at such a line. The entries are read with an unknown precursor charge and
/// one warning, and entries with one charge keep theirs.
#[test]
fn mgf_entries_listing_several_charges_read_with_an_unknown_charge() {
    let Some(path) = shared("mgf/SmallCalibratibleYeast.mgf") else {
        return;
    };
    let expected = read_all(&path);
    let dir = tempfile::tempdir().unwrap();
    // Two in three list several charges, in either spelling.
    let (copy, charge_lines) =
        mgf_with_lines_rewritten(&path, dir.path(), "CHARGE=", |charge, k| match k % 3 {
            0 => format!("CHARGE={charge},3+"),
            1 => format!("CHARGE={charge}"),
            _ => format!("CHARGE={charge} and 4+"),
        });
    // One charge line an entry: the k-th is entry k's.
    assert_eq!(charge_lines, expected.len());

    let mut unknown = expected.clone();
    for (k, spectrum) in unknown.iter_mut().enumerate() {
        let precursor = spectrum.meta.precursor.as_mut().unwrap();
        assert!(precursor.charge.is_some());
        if k % 3 != 1 {
            precursor.charge = None;
        }
    }
    assert_same_spectra(&read_all(&copy), &unknown, "several charges");
    let dropped = (0..charge_lines).filter(|k| k % 3 != 1).count();

    let (summary, notes) = run_with_notes(&copy);
    assert_eq!(summary.spectra_written, expected.len() as u64);
    assert_eq!(notes.mgf().charge_lines_dropped, dropped as u64);
    let warning = format!(
        "{dropped} MGF entries give no single precursor charge (the first: `CHARGE=2+,3+`)"
    );
    assert!(
        summary.warnings.iter().any(|w| w.starts_with(&warning)),
        "{:?}",
        summary.warnings
    );
}

/// Mascot's format lets an entry summed over several scans give a retention time range
/// (`RTINSECONDS=1443.66-1450.2`); mzdata stops the whole file at it. Such an entry reads at the
/// range's start, with one warning.
#[test]
fn mgf_retention_time_ranges_read_as_their_start() {
    let Some(path) = shared("mgf/SmallCalibratibleYeast.mgf") else {
        return;
    };
    let expected = read_all(&path);
    let dir = tempfile::tempdir().unwrap();
    let (copy, ranges) = mgf_with_lines_rewritten(&path, dir.path(), "RTINSECONDS=", |rt, _| {
        format!("RTINSECONDS={rt}-{}", rt.parse::<f64>().unwrap() + 6.5)
    });
    assert_eq!(ranges, expected.len());
    assert!(expected.iter().all(|s| s.meta.rt_seconds.is_some()));
    assert_same_spectra(&read_all(&copy), &expected, "retention time ranges");
    let (summary, notes) = run_with_notes(&copy);
    assert_eq!(notes.mgf().rt_ranges, ranges as u64);
    let warning = format!("{ranges} MGF entries give a retention time range");
    assert!(
        summary.warnings.iter().any(|w| w.starts_with(&warning)),
        "{:?}",
        summary.warnings
    );
}

/// An MGF entry without its `END IONS` line is read up to the next `BEGIN IONS` (mzdata took
/// that line for a bad peak line and lost the entry, and the next one with it), and a file
/// that ends inside an entry says it may have been cut short.
#[test]
fn mgf_entries_without_end_ions_read_up_to_the_next_entry() {
    let Some(path) = shared("mgf/SmallCalibratibleYeast.mgf") else {
        return;
    };
    let expected = read_all(&path);
    let dir = tempfile::tempdir().unwrap();
    let last = expected.len() - 1;
    let (copy, ends) = mgf_with_lines_rewritten(&path, dir.path(), "END IONS", |rest, k| match k {
        5 | 6 => String::new(),
        k if k == last => String::new(),
        _ => format!("END IONS{rest}"),
    });
    assert_eq!(ends, expected.len());

    assert_same_spectra(&read_all(&copy), &expected, "without END IONS");
    let (summary, notes) = run_with_notes(&copy);
    assert_eq!(summary.spectra_written, expected.len() as u64);
    assert_eq!(notes.mgf().entries_without_end, 2);
    assert!(notes.mgf().ends_inside_an_entry);
    for warning in [
        "2 MGF entries have no END IONS line",
        "the file ends inside its last MGF entry",
    ] {
        assert!(
            summary.warnings.iter().any(|w| w.starts_with(warning)),
            "{warning}: {:?}",
            summary.warnings
        );
    }
}

/// mzdata reads every MGF line trimmed, so indented lines are the lines they would be
/// unindented: an entry without `END IONS` followed by an indented `BEGIN IONS` reads up to
/// it (it was lost, and the entry after it), and an indented comment inside an entry is a
/// comment (it made the entry unreadable).
#[test]
fn indented_mgf_lines_read_as_they_would_unindented() {
    let Some(path) = shared("mgf/SmallCalibratibleYeast.mgf") else {
        return;
    };
    let expected = read_all(&path);
    // Every line of every third entry indented (spaces or a tab), a comment in each, and two
    // entries before indented ones left without their END IONS line.
    let (mut entry, mut text) = (0, String::new());
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        let indent = match entry % 3 {
            0 => "  ",
            1 => "",
            _ => "\t",
        };
        match line {
            "END IONS" if entry == 2 || entry == 5 => {}
            "END IONS" => text.push_str(&format!("{indent}END IONS\n")),
            "BEGIN IONS" => {
                text.push_str(&format!("{indent}BEGIN IONS\n{indent}# entry {entry}\n"))
            }
            line => text.push_str(&format!("{indent}{line}\n")),
        }
        if line == "END IONS" {
            entry += 1;
        }
    }
    assert_eq!(entry, expected.len());
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("indented.mgf");
    std::fs::write(&copy, text).unwrap();

    assert_same_spectra(&read_all(&copy), &expected, "indented");
    let (summary, notes) = run_with_notes(&copy);
    assert_eq!(summary.spectra_written, expected.len() as u64);
    assert_eq!(summary.spectra_skipped, 0);
    assert_eq!(notes.mgf().entries_without_end, 2);
}

/// An MGF file with bytes that are not UTF-8 (titles written in a Windows code page) reads
/// them as Latin-1, with one warning: mzdata stopped the whole file at the first one.
#[test]
fn mgf_bytes_that_are_not_utf8_read_as_latin1() {
    let Some(path) = shared("mgf/SmallCalibratibleYeast.mgf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let utf8_dir = dir.path().join("utf8");
    std::fs::create_dir(&utf8_dir).unwrap();
    // The same titles with "µM" in UTF-8 and in Latin-1.
    let (utf8, titles) = mgf_with_lines_rewritten(&path, &utf8_dir, "TITLE=", |rest, _| {
        format!("TITLE=µM {rest}")
    });
    let latin1 = dir.path().join("latin1.mgf");
    let bytes = std::fs::read(&utf8).unwrap();
    let mut written = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(next) = bytes[at..].windows(2).position(|w| w == "µ".as_bytes()) {
        written.extend_from_slice(&bytes[at..at + next]);
        written.push(0xb5);
        at += next + 2;
    }
    written.extend_from_slice(&bytes[at..]);
    std::fs::write(&latin1, &written).unwrap();

    let (expected, got) = (read_all(&utf8), read_all(&latin1));
    assert_eq!(got.len(), titles);
    assert!(expected.iter().all(|s| s.meta.native_id.starts_with("µM ")));
    assert_same_spectra(&got, &expected, "Latin-1");
    let (summary, notes) = run_with_notes(&latin1);
    assert_eq!(summary.spectra_written, titles as u64);
    assert_eq!(notes.mgf().latin1_bytes, titles as u64);
    let first = written.iter().position(|&b| b == 0xb5).unwrap();
    let warning = format!(
        "{titles} bytes of the file are not UTF-8 (the first at byte {first}): read as Latin-1"
    );
    assert!(
        summary.warnings.contains(&warning),
        "{:?}",
        summary.warnings
    );
}

/// An MGF retention time that is not a number (mzdata panicked on it, and the entry was lost)
/// leaves the entry's retention time unknown, with one warning; the entry reads otherwise.
#[test]
fn mgf_retention_times_that_are_not_numbers_are_unknown() {
    let Some(path) = shared("mgf/SmallCalibratibleYeast.mgf") else {
        return;
    };
    let expected = read_all(&path);
    let dir = tempfile::tempdir().unwrap();
    let (copy, rts) =
        mgf_with_lines_rewritten(&path, dir.path(), "RTINSECONDS=", |rest, k| match k % 4 {
            0 => "RTINSECONDS=abc".to_owned(),
            _ => format!("RTINSECONDS={rest}"),
        });
    assert_eq!(rts, expected.len());
    let mut unknown = expected.clone();
    for spectrum in unknown.iter_mut().step_by(4) {
        spectrum.meta.rt_seconds = None;
    }
    assert_same_spectra(&read_all(&copy), &unknown, "times that are not numbers");
    let (summary, notes) = run_with_notes(&copy);
    let unknown = rts.div_ceil(4);
    assert_eq!(notes.mgf().rt_values_dropped, unknown as u64);
    let warning = format!(
        "{unknown} MGF entries give a retention time that is not a number (the first: \
         `RTINSECONDS=abc`): their rt_seconds is unknown"
    );
    assert!(
        summary.warnings.contains(&warning),
        "{:?}",
        summary.warnings
    );
}
