//! Ion mobility: per-point mobility arrays decoded as mzdata decodes them, the scan's
//! mobility in the metadata, the mobility of centroids passed through, and its way back into
//! a written mzML.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use mzdata::io::mzml::MzMLReader;
use mzdata::prelude::*;
use mzdata::spectrum::{ArrayType, MultiLayerSpectrum};
use mzforge::{
    CentroidMzMLWriter, CentroidParams, IonMobilityKind, MzmlPeaks, Pipeline, PipelineParams,
    ProcessedSpectrum, ScanMobilityKind, Spectrum, SpectrumReader,
};
use mzforge_fixtures::handmade::{
    array, mzml, spectrum, Term, F32, F64, INTENSITY_ARRAY, MZ_ARRAY, NONE, ZLIB,
};

use crate::common::shared;

const TIMS: &str = "runs/20200204_BU_8B8egg_1ug_uL_7charges_60_min_Slot2-11_1_244.mzML.gz";
const MEAN_1_K0: Term = ("MS:1003006", "mean inverse reduced ion mobility array");

/// Every spectrum as mzdata's own reader gives it.
fn mzdata_spectra(path: &Path) -> Vec<MultiLayerSpectrum> {
    let file = BufReader::new(File::open(path).unwrap());
    let gz = path.extension().is_some_and(|e| e == "gz");
    let stream: Box<dyn std::io::Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    MzMLReader::new(stream).collect()
}

/// Every spectrum decoded by mzforge, through the lean parser or through mzdata's.
fn ours(path: &Path, lean: bool) -> Vec<Spectrum> {
    let mut reader = SpectrumReader::open(path).unwrap();
    reader.set_lean_parsing(lean);
    let mut out = Vec::new();
    while let Some(raw) = reader.next_raw().unwrap() {
        out.push(raw.decode(path).unwrap().0);
    }
    out
}

/// Every spectrum of `path` through the pipeline.
fn processed(path: &Path, params: PipelineParams) -> Vec<ProcessedSpectrum> {
    let pipeline = Pipeline::new(params).unwrap();
    let mut out = Vec::new();
    pipeline
        .run_path(path, &mut |batch| {
            out.extend(batch.iter().cloned());
            Ok(())
        })
        .unwrap();
    out.sort_by_key(|s| s.meta.index);
    out
}

#[test]
fn timstof_mobility_arrays_equal_mzdatas_decoding_spectrum_by_spectrum() {
    let Some(path) = shared(TIMS) else { return };
    let theirs = mzdata_spectra(&path);
    assert_eq!(theirs.len(), 103);
    for lean in [true, false] {
        let spectra = ours(&path, lean);
        assert_eq!(spectra.len(), theirs.len());
        let mut points = 0;
        for (s, t) in spectra.iter().zip(&theirs) {
            let id = &s.meta.native_id;
            assert_eq!(id, t.id());
            let arrays = t.raw_arrays().unwrap();
            let theirs = |which: &ArrayType| arrays.get(which).unwrap().to_f64().unwrap();
            let mz = theirs(&ArrayType::MZArray);
            let expected = theirs(&ArrayType::MeanInverseReducedIonMobilityArray);
            assert_eq!(expected.len(), mz.len(), "{id}");
            // The file orders each spectrum's points by mobility; mzforge sorts them by m/z
            // (stably), and their mobility with them.
            let mut order: Vec<usize> = (0..mz.len()).collect();
            order.sort_by(|&a, &b| mz[a].total_cmp(&mz[b]));
            let expected: Vec<f64> = order.iter().map(|&k| expected[k]).collect();
            let expected_mz: Vec<f64> = order.iter().map(|&k| mz[k]).collect();
            assert_eq!(s.mz, expected_mz, "{id}");
            let mobility = s.ion_mobility.as_ref().expect(id);
            assert_eq!(mobility.len(), s.mz.len(), "{id}");
            assert_eq!(mobility, &expected, "{id}");
            assert!(
                mobility.iter().all(|v| (0.5..2.0).contains(v)),
                "{id}: 1/K0"
            );
            let info = s.meta.ion_mobility_array.as_ref().expect(id);
            assert_eq!(info.kind, IonMobilityKind::MeanInverseReducedIonMobility);
            assert_eq!(
                info.unit.as_deref(),
                Some("volt-second per square centimeter")
            );
            // The scan's 1/K0 (the PASEF precursor's), as mzdata finds it.
            let scan = t.acquisition().first_scan().and_then(|e| e.ion_mobility());
            assert_eq!(s.meta.scan_ion_mobility.map(|m| m.value), scan, "{id}");
            if s.meta.ms_level == 2 {
                let m = s.meta.scan_ion_mobility.expect(id);
                assert_eq!(m.kind, ScanMobilityKind::InverseReducedIonMobility);
                assert!((0.5..2.0).contains(&m.value));
            }
            points += mobility.len();
        }
        assert!(points > 100_000, "{points}");
    }
}

/// OpenMS writes per-point mobility as a non-standard array named "Ion Mobility"; the same
/// data as zlib floats and as Numpress (short logged float) + zlib agree within SLOF's
/// precision.
#[test]
fn openms_ion_mobility_arrays_decode_from_zlib_and_numpress() {
    let Some(plain) = shared("encodings/FileFilter_49_input.mzML") else {
        return;
    };
    let Some(numpress) = shared("encodings/FileFilter_49_output.mzML") else {
        return;
    };
    let (a, b) = (ours(&plain, true), ours(&numpress, true));
    assert_eq!(a.len(), b.len());
    assert_eq!(ours(&numpress, false), b);
    let mut compared = 0;
    for (x, y) in a.iter().zip(&b) {
        let id = &x.meta.native_id;
        assert_eq!(
            x.meta.ion_mobility_array.as_ref().map(|i| i.kind),
            y.meta.ion_mobility_array.as_ref().map(|i| i.kind),
            "{id}"
        );
        let (Some(p), Some(q)) = (&x.ion_mobility, &y.ion_mobility) else {
            assert!(x.ion_mobility.is_none() && y.ion_mobility.is_none(), "{id}");
            continue;
        };
        assert_eq!(
            x.meta.ion_mobility_array.as_ref().unwrap().kind,
            IonMobilityKind::OpenMsIonMobility
        );
        assert_eq!(p.len(), x.mz.len(), "{id}");
        assert_eq!(q.len(), y.mz.len(), "{id}");
        for (u, v) in p.iter().zip(q) {
            assert!((u - v).abs() <= 2e-3 * u.abs() + 1e-9, "{id}: {u} vs {v}");
        }
        compared += p.len();
    }
    assert!(compared > 5000, "{compared}");
}

fn le_bytes_f64(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn le_bytes_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A spectrum of four points whose mobility array is 32-bit zlib, with `mobility` values, and
/// a scan with a PASEF 1/K0.
fn handmade_spectrum(index: usize, mobility: &[f32]) -> String {
    let mz = [100.0, 200.0, 300.0, 400.0];
    let intensity = [10.0f32, 50.0, 5.0, 80.0];
    let arrays = array(MZ_ARRAY, F64, NONE, &le_bytes_f64(&mz))
        + &array(INTENSITY_ARRAY, F32, NONE, &le_bytes_f32(&intensity))
        + &array(MEAN_1_K0, F32, ZLIB, &zlib(&le_bytes_f32(mobility)));
    let scan = r#"<scanList count="1"><scan><cvParam cvRef="MS" accession="MS:1002815" name="inverse reduced ion mobility" value="0.9" unitCvRef="MS" unitAccession="MS:1002814" unitName="volt-second per square centimeter"/></scan></scanList>"#;
    spectrum(index, mz.len(), &arrays, scan)
}

#[test]
fn a_32_bit_zlib_mobility_array_decodes_and_follows_the_kept_peaks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mobility.mzML");
    let mobility = [0.75f32, 0.8, 1.25, 1.5];
    std::fs::write(&path, mzml(&[handmade_spectrum(0, &mobility)])).unwrap();
    for lean in [true, false] {
        let s = &ours(&path, lean)[0];
        let expected: Vec<f64> = mobility.iter().map(|&v| v as f64).collect();
        assert_eq!(s.ion_mobility.as_deref(), Some(expected.as_slice()));
        let info = s.meta.ion_mobility_array.as_ref().unwrap();
        assert_eq!(info.kind, IonMobilityKind::MeanInverseReducedIonMobility);
        assert_eq!(
            info.unit.as_deref(),
            Some("volt-second per square centimeter")
        );
        let scan = s.meta.scan_ion_mobility.unwrap();
        assert_eq!(
            (scan.value, scan.kind),
            (0.9, ScanMobilityKind::InverseReducedIonMobility)
        );
    }
    // An intensity threshold drops points 0 and 2: their mobility goes with them.
    let params = PipelineParams {
        centroid: CentroidParams {
            min_intensity: 20.0,
            ..CentroidParams::default()
        },
        ..PipelineParams::default()
    };
    let processed = processed(&path, params);
    let peaks = &processed[0].peaks;
    assert_eq!(peaks.mz, [200.0, 400.0]);
    assert_eq!(
        peaks.ion_mobility.as_deref(),
        Some(&[0.8f32 as f64, 1.5][..])
    );
}

/// Two spectra with the four points of [`handmade_spectrum`] whose mobility arrays cannot be
/// used: one a value short, one in zstd (which mzforge does not decode), after a good one.
fn unusable_mobility_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("unusable.mzML");
    let good = handmade_spectrum(0, &[0.75, 0.8, 1.25, 1.5]);
    let short = handmade_spectrum(1, &[0.75, 0.8, 1.25]);
    let zstd = handmade_spectrum(2, &[0.75, 0.8, 1.25, 1.5]).replace(
        r#"accession="MS:1000574" name="zlib compression""#,
        r#"accession="MS:1003780" name="zstd""#,
    );
    assert!(zstd.contains("MS:1003780"));
    std::fs::write(&path, mzml(&[good, short, zstd])).unwrap();
    path
}

#[test]
fn an_unusable_mobility_array_is_left_out_and_its_spectrum_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = unusable_mobility_file(dir.path());
    for lean in [true, false] {
        let mut reader = SpectrumReader::open(&path).unwrap();
        reader.set_lean_parsing(lean);
        let mut decoded = Vec::new();
        while let Some(raw) = reader.next_raw().unwrap() {
            decoded.push(raw.decode(&path).expect("m/z and intensity are fine"));
        }
        let [(good, good_repairs), (short, short_repairs), (zstd, zstd_repairs)] =
            decoded.as_slice()
        else {
            panic!("{} spectra", decoded.len())
        };
        assert!(good.ion_mobility.is_some());
        assert_eq!(good_repairs.ion_mobility_dropped, None);
        for (s, repairs, reason) in [
            (short, short_repairs, "has 3 values but the m/z array has 4"),
            (zstd, zstd_repairs, "cannot decode the ion mobility array"),
        ] {
            assert_eq!(s.mz, [100.0, 200.0, 300.0, 400.0], "lean {lean}");
            assert_eq!(s.intensity, [10.0, 50.0, 5.0, 80.0]);
            assert_eq!(s.ion_mobility, None);
            assert_eq!(s.meta.ion_mobility_array, None, "no kind without values");
            let why = repairs.ion_mobility_dropped.as_deref().unwrap_or_default();
            assert!(why.contains(reason), "lean {lean}: {why:?}");
        }
    }
}

#[test]
fn a_run_counts_the_left_out_mobility_arrays_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = unusable_mobility_file(dir.path());
    let pipeline = Pipeline::new(PipelineParams::default()).unwrap();
    let mut peaks = Vec::new();
    let summary = pipeline
        .run_path(&path, &mut |batch| {
            peaks.extend(batch.iter().map(|s| s.peaks.ion_mobility.is_some()));
            Ok(())
        })
        .unwrap();
    assert_eq!(peaks, [true, false, false]);
    assert_eq!(summary.spectra_written, 3);
    assert_eq!(summary.spectra_skipped, 0);
    assert_eq!(summary.spectra_ion_mobility_dropped, 2);
    let warnings: Vec<_> = summary
        .warnings
        .iter()
        .filter(|w| w.contains("ion mobility"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", summary.warnings);
    for fragment in [
        "2 spectra have an ion mobility array that cannot be used",
        "spectrum 1 (scan=2)",
        "has 3 values but the m/z array has 4",
    ] {
        assert!(
            warnings[0].contains(fragment),
            "{:?} lacks {fragment:?}",
            warnings[0]
        );
    }
}

/// The timsTOF run's centroids keep every point's mobility through the pipeline and into a
/// written mzML, which mzdata reads back with the same values.
#[test]
fn mobility_of_passed_through_centroids_round_trips_through_mzml() {
    let Some(input) = shared(TIMS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("centroided.mzML");
    let reader = SpectrumReader::open(&input).unwrap();
    let mut writer =
        CentroidMzMLWriter::for_reader(&out, &reader, MzmlPeaks::Centroids, &[]).unwrap();
    let pipeline = Pipeline::new(PipelineParams::default())
        .unwrap()
        .keep_source_descriptions(true);
    let mut processed = Vec::new();
    pipeline
        .run(reader, &mut |batch| {
            for s in batch {
                writer.write(
                    s.source.as_ref().unwrap(),
                    &s.peaks,
                    s.deconvolution.as_ref(),
                )?;
                processed.push(s.clone());
            }
            Ok(())
        })
        .unwrap();
    writer.finish().unwrap();
    let read_back = mzdata_spectra(&out);
    assert_eq!(read_back.len(), processed.len());
    let mut points = 0;
    for (s, t) in processed.iter().zip(&read_back) {
        let id = &s.meta.native_id;
        let mobility = s.peaks.ion_mobility.as_ref().expect(id);
        assert_eq!(mobility.len(), s.peaks.len());
        let arrays = t.raw_arrays().unwrap();
        let written = arrays
            .get(&ArrayType::MeanInverseReducedIonMobilityArray)
            .expect("mobility array written");
        assert_eq!(
            written.to_f64().unwrap().as_ref(),
            mobility.as_slice(),
            "{id}"
        );
        assert_eq!(
            written.unit,
            mzdata::params::Unit::VoltSecondPerSquareCentimeter
        );
        assert_eq!(
            arrays
                .get(&ArrayType::MZArray)
                .unwrap()
                .to_f64()
                .unwrap()
                .as_ref(),
            s.peaks.mz.as_slice()
        );
        points += mobility.len();
    }
    assert!(points > 100_000, "{points}");
}

/// Files without mobility get none: no array, no kind, no scan value, no peak mobility.
#[test]
fn files_without_mobility_have_none() {
    let Some(path) = shared("runs/BSA1.mzML") else {
        return;
    };
    let params = PipelineParams {
        ms_levels: vec![1],
        ..PipelineParams::default()
    };
    let processed = processed(&path, params);
    assert!(!processed.is_empty());
    for s in &processed {
        assert!(s.meta.ion_mobility_array.is_none() && s.meta.scan_ion_mobility.is_none());
        assert!(s.peaks.ion_mobility.is_none());
    }
}
