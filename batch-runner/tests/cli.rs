//! The `mzforge` binary end to end: real files in, Parquet out, read back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, Float64Array, StringArray, UInt32Array, UInt8Array};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn mzforge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mzforge"))
        .args(args)
        .output()
        .expect("run mzforge")
}

/// `mzforge run INPUT --out OUT FLAGS...`.
fn mzforge_run(input: &Path, out: &Path, flags: &[&str]) -> Output {
    let mut args = vec![
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    mzforge(&args)
}

fn shared(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: tests need ../shared/data in CI",
            path.display()
        );
    }
    eprintln!("skipping: {} not found", path.display());
    None
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/data")
        .join(name)
}

fn read_parquet(path: &Path) -> (Vec<RecordBatch>, std::collections::HashMap<String, String>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    (
        builder.build().unwrap().map(|b| b.unwrap()).collect(),
        metadata,
    )
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The names in a directory, sorted (hidden ones too).
fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn runs_the_bundled_fixture_and_writes_readable_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = fixture("sim_profile.mzML");
    let result = mzforge_run(&input, &out, &["--min-snr", "3"]);
    assert!(result.status.success(), "{}", text(&result));
    let target = out.join("sim_profile");
    let (spectra, metadata) = read_parquet(&target.join("spectra.parquet"));
    assert!(
        metadata["mzforge.params"].contains("\"min_snr\":3.0"),
        "{metadata:?}"
    );
    assert_eq!(metadata["mzforge.version"], env!("CARGO_PKG_VERSION"));
    let rows: usize = spectra.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 20);
    let signal = column::<StringArray>(&spectra[0], "signal");
    assert!((0..signal.len()).all(|i| signal.value(i) == "profile"));
    let (peaks, _) = read_parquet(&target.join("peaks.parquet"));
    let n_peaks: usize = peaks.iter().map(|b| b.num_rows()).sum();
    let declared: u64 = spectra
        .iter()
        .flat_map(|b| {
            column::<UInt32Array>(b, "n_peaks")
                .values()
                .iter()
                .map(|&v| v as u64)
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(n_peaks as u64, declared);
    assert!(n_peaks > 1000, "{n_peaks}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["summary"]["spectra_written"], 20);
    assert_eq!(run["input"]["sha256"].as_str().unwrap().len(), 64);
    // Nothing but the result directory is left in the output folder.
    assert_eq!(entry_names(&out), ["sim_profile"]);
}

#[test]
fn cli_output_equals_the_library_pipeline() {
    let Some(input) = shared("profile/three_test_scans.mzML") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let result = mzforge_run(&input, dir.path(), &["-j", "2"]);
    assert!(result.status.success(), "{}", text(&result));
    let (peaks, _) = read_parquet(&dir.path().join("three_test_scans/peaks.parquet"));
    let mz: Vec<f64> = peaks
        .iter()
        .flat_map(|b| column::<Float64Array>(b, "mz").values().to_vec())
        .collect();
    let mut expected = Vec::new();
    let pipeline = mzforge::Pipeline::new(mzforge::PipelineParams::default()).unwrap();
    pipeline
        .run_path(&input, &mut |batch| {
            expected.extend(batch.iter().flat_map(|s| s.peaks.mz.clone()));
            Ok(())
        })
        .unwrap();
    assert_eq!(mz, expected);
}

#[test]
fn many_inputs_by_glob_with_json_summaries_and_mzml() {
    let Some(one) = shared("profile/small.mzML") else {
        return;
    };
    let pattern = one
        .parent()
        .unwrap()
        .join("FeatureFinderMultiplex_*_input.mzML");
    let dir = tempfile::tempdir().unwrap();
    let result = mzforge(&[
        "run",
        one.to_str().unwrap(),
        pattern.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
        "--mzml",
        "--ms-levels",
        "1",
    ]);
    assert!(result.status.success(), "{}", text(&result));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&result.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(line["status"], "ok");
        let levels = line["summary"]["spectra_per_level"].as_array().unwrap();
        assert!(levels.iter().all(|l| l[0] == 1), "{levels:?}");
    }
    for stem in [
        "small",
        "FeatureFinderMultiplex_1_input",
        "FeatureFinderMultiplex_4_input",
    ] {
        let mzml = dir.path().join(stem).join("centroided.mzML");
        let mut reader = mzforge::SpectrumReader::open(&mzml).unwrap();
        let mut n = 0;
        while let Some(raw) = reader.next_raw().unwrap() {
            assert_eq!(
                raw.meta().declared_signal,
                Some(mzforge::SignalKind::Centroid)
            );
            n += 1;
        }
        assert!(n > 0, "{stem}");
    }
}

/// The result directories a `mzforge run --json` printed, in its order.
fn result_dirs(result: &Output) -> Vec<String> {
    String::from_utf8_lossy(&result.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|line| line["output"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_directory_input_runs_every_mzml_or_mgf_file_under_it() {
    let inputs = tempfile::tempdir().unwrap();
    std::fs::create_dir(inputs.path().join("day2")).unwrap();
    std::fs::copy(
        fixture("sim_profile.mzML"),
        inputs.path().join("first.mzML"),
    )
    .unwrap();
    std::fs::copy(
        fixture("sim_envelopes.mzML"),
        inputs.path().join("day2").join("second.MZML"),
    )
    .unwrap();
    std::fs::write(inputs.path().join("notes.txt"), "not an input\n").unwrap();
    // A link to an ancestor directory is not followed (it would never end).
    std::os::unix::fs::symlink(inputs.path(), inputs.path().join("day2").join("loop")).unwrap();
    std::fs::copy(
        fixture("sim_profile.truth.tsv"),
        inputs.path().join("truth.tsv"),
    )
    .unwrap();

    let out = tempfile::tempdir().unwrap();
    let result = mzforge_run(inputs.path(), out.path(), &["--json", "--no-deconvolve"]);
    assert!(result.status.success(), "{}", text(&result));
    let written = result_dirs(&result);
    // In input path order (day2/second.MZML before first.mzML), each under its stem.
    let expected: Vec<String> = ["second", "first"]
        .map(|stem| out.path().join(stem).display().to_string())
        .into();
    assert_eq!(written, expected);
    for stem in ["first", "second"] {
        assert!(
            out.path().join(stem).join("peaks.parquet").is_file(),
            "{stem}"
        );
    }

    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "not an input\n").unwrap();
    let none = mzforge_run(empty.path(), &out.path().join("none"), &[]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none).contains("no mzML, mzMLb or MGF file in this directory"),
        "{}",
        text(&none)
    );
    assert!(!out.path().join("none").exists());
}

/// A bzip2-compressed mzML reads as its gzip-compressed and plain twins do (it was "not an
/// mzML or MGF file"), a directory input lists it, and a cut one fails naming its stream.
#[test]
fn bzip2_inputs_read_like_their_gzip_and_plain_twins() {
    let (Some(bz2), Some(gz), Some(plain)) = (
        shared("encodings/MzMLFile_6_uncompressed.mzML.bz2"),
        shared("encodings/MzMLFile_6_uncompressed.mzML.gz"),
        shared("encodings/MzMLFile_6_uncompressed.mzML"),
    ) else {
        return;
    };
    let tables_of = |input: &Path| {
        let out = tempfile::tempdir().unwrap();
        let run = mzforge_run(input, out.path(), &["-q", "--no-deconvolve"]);
        assert!(run.status.success(), "{}", text(&run));
        let result = out.path().join("MzMLFile_6_uncompressed");
        let spectra = read_parquet(&result.join("spectra.parquet")).0;
        (spectra, read_parquet(&result.join("peaks.parquet")).0)
    };
    let from_bz2 = tables_of(&bz2);
    assert_eq!(from_bz2.0.iter().map(|b| b.num_rows()).sum::<usize>(), 4);
    assert_eq!(from_bz2, tables_of(&gz));
    assert_eq!(from_bz2, tables_of(&plain));
    let inspected = mzforge(&["inspect", bz2.to_str().unwrap()]);
    assert!(
        text(&inspected).contains("MzML (bzip2)"),
        "{}",
        text(&inspected)
    );

    let data = tempfile::tempdir().unwrap();
    std::fs::copy(&bz2, data.path().join("run.mzML.bz2")).unwrap();
    let bytes = std::fs::read(&bz2).unwrap();
    std::fs::write(data.path().join("cut.mzML.bz2"), &bytes[..bytes.len() / 2]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let listed = mzforge_run(data.path(), out.path(), &["-q", "--no-deconvolve"]);
    assert_eq!(listed.status.code(), Some(1), "{}", text(&listed));
    assert!(out.path().join("run/peaks.parquet").is_file());
    assert!(!out.path().join("cut").exists());
    assert!(
        text(&listed).contains("cut.mzML.bz2") && text(&listed).contains("bzip2 stream"),
        "{}",
        text(&listed)
    );
}

/// Files of one name in several folders (a plate per folder, a well per file) run together
/// with --keep-folders, each result in its folder; without it they are refused before any
/// work, and the message says how.
#[test]
fn keep_folders_runs_same_named_files_of_several_folders() {
    let data = tempfile::tempdir().unwrap();
    for (rel, fixture_name) in [
        ("plate1/A1.mzML", "sim_profile.mzML"),
        ("plate2/A1.mzML", "sim_profile.mzML"),
        ("plate2/B1.mzML", "sim_envelopes.mzML"),
        ("loose.mzML", "sim_profile.mzML"),
    ] {
        let path = data.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(fixture(fixture_name), &path).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let refused = mzforge_run(data.path(), out.path(), &["-q", "--no-deconvolve"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("--keep-folders"),
        "{}",
        text(&refused)
    );
    assert!(entry_names(out.path()).is_empty());

    let kept = mzforge_run(
        data.path(),
        out.path(),
        &["--keep-folders", "--json", "--no-deconvolve"],
    );
    assert!(kept.status.success(), "{}", text(&kept));
    for rel in ["plate1/A1", "plate2/A1", "plate2/B1", "loose"] {
        assert!(out.path().join(rel).join("run.json").is_file(), "{rel}");
    }
    assert_eq!(entry_names(out.path()), ["loose", "plate1", "plate2"]);
    let outputs: Vec<String> = String::from_utf8_lossy(&kept.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["output"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        outputs.iter().any(|o| o.ends_with("plate2/A1")),
        "{outputs:?}"
    );
    // Run again: the earlier results are replaced, the folders holding them are not in the way.
    let again = mzforge_run(
        data.path(),
        out.path(),
        &["--keep-folders", "-q", "--no-deconvolve"],
    );
    assert!(again.status.success(), "{}", text(&again));
}

#[test]
fn results_kept_beside_their_inputs_are_not_run_again() {
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("sim_profile.mzML"), data.path().join("first.mzML")).unwrap();
    let results = data.path().join("results");
    // A hidden directory (as a crashed run's staging is) holding an mzML is left out too.
    std::fs::create_dir(data.path().join(".staging")).unwrap();
    std::fs::copy(
        fixture("sim_envelopes.mzML"),
        data.path().join(".staging").join("partial.mzML"),
    )
    .unwrap();
    for round in 0..2 {
        let result = mzforge_run(
            data.path(),
            &results,
            &["--mzml", "--json", "--no-deconvolve"],
        );
        assert!(result.status.success(), "round {round}: {}", text(&result));
        let outputs = result_dirs(&result);
        // The second round does not take results/first/centroided.mzML for an input.
        assert_eq!(
            outputs,
            [results.join("first").display().to_string()],
            "round {round}"
        );
    }
    assert!(results.join("first").join("centroided.mzML").is_file());
}

/// One spectrum of a written mzML: m/z, intensity and the charge array if there is one.
type MzmlPeakList = (Vec<f64>, Vec<f32>, Option<Vec<i32>>);

fn read_mzml_peak_lists(path: &Path) -> (Vec<MzmlPeakList>, Vec<String>) {
    use mzdata::prelude::*;
    use mzdata::spectrum::ArrayType;
    let mut reader = mzdata::io::MzMLReader::open_path(path).unwrap();
    let processing = reader
        .data_processings()
        .iter()
        .flat_map(|dp| dp.methods.iter().flat_map(|m| m.params.iter()))
        .map(|p| p.name.clone())
        .collect();
    let spectra = reader
        .iter()
        .map(|s| {
            let arrays = s.arrays.as_ref().expect("arrays");
            let mz = arrays.mzs().unwrap().to_vec();
            let intensity = arrays.intensities().unwrap().to_vec();
            let charge = arrays
                .get(&ArrayType::ChargeArray)
                .map(|a| a.to_i32().unwrap().to_vec());
            (mz, intensity, charge)
        })
        .collect();
    (spectra, processing)
}

/// Per spectrum, a column of one of the result tables (`u32`, `i32` or `f64`).
fn by_spectrum<T: Clone + Default>(
    path: &Path,
    value: impl Fn(&RecordBatch, usize) -> Option<T>,
) -> Vec<Vec<Option<T>>> {
    let mut out: Vec<Vec<Option<T>>> = Vec::new();
    for batch in read_parquet(path).0 {
        let index = column::<UInt32Array>(&batch, "spectrum_index");
        for row in 0..batch.num_rows() {
            let i = index.value(row) as usize;
            if out.len() <= i {
                out.resize(i + 1, Vec::new());
            }
            out[i].push(value(&batch, row));
        }
    }
    out
}

#[test]
fn mzml_output_carries_peak_charges_or_the_deconvolved_peak_list() {
    let Some(input) = shared("deconvolution/slicedTDYeast.mzML") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec![
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let result = mzforge(&args);
        assert!(result.status.success(), "{}", text(&result));
        out.join("slicedTDYeast")
    };
    let charge_of = |b: &RecordBatch, row: usize| {
        let charge = column::<arrow::array::Int32Array>(b, "charge");
        Some(if charge.is_null(row) {
            0
        } else {
            charge.value(row)
        })
    };

    // Centroids: every centroid of peaks.parquet, with its envelope's charge (0 for none).
    let centroids = run("centroids", &["--mzml", "--tolerance-ppm", "5"]);
    let (spectra, processing) = read_mzml_peak_lists(&centroids.join("centroided.mzML"));
    let peak_mz = by_spectrum(&centroids.join("peaks.parquet"), |b, row| {
        Some(column::<Float64Array>(b, "mz").value(row))
    });
    let peak_charge = by_spectrum(&centroids.join("peaks.parquet"), charge_of);
    assert_eq!(spectra.len(), peak_mz.len());
    let mut charged = 0;
    for (i, (mz, _, charge)) in spectra.iter().enumerate() {
        let expected_mz: Vec<f64> = peak_mz[i].iter().flatten().copied().collect();
        assert_eq!(mz, &expected_mz, "spectrum {i}");
        let expected_charge: Vec<i32> = peak_charge[i].iter().flatten().copied().collect();
        assert_eq!(charge.as_ref(), Some(&expected_charge), "spectrum {i}");
        charged += expected_charge.iter().filter(|&&z| z != 0).count();
    }
    assert!(charged > 100, "{charged} charged centroids");
    assert!(
        processing.iter().any(|p| p == "peak picking"),
        "{processing:?}"
    );
    assert!(!processing.iter().any(|p| p == "charge deconvolution"));

    // Deconvolved: one peak per envelope of features.parquet, in m/z order, with its charge.
    let deconvolved = run(
        "deconvolved",
        &["--mzml-peaks", "deconvolved", "--tolerance-ppm", "5"],
    );
    let (spectra, processing) = read_mzml_peak_lists(&deconvolved.join("centroided.mzML"));
    let features = deconvolved.join("features.parquet");
    let feature_mz = by_spectrum(&features, |b, row| {
        Some(column::<Float64Array>(b, "mz").value(row))
    });
    let feature_charge = by_spectrum(&features, charge_of);
    let mut envelopes = 0;
    for (i, (mz, intensity, charge)) in spectra.iter().enumerate() {
        let mut expected: Vec<(f64, i32)> = feature_mz
            .get(i)
            .into_iter()
            .flatten()
            .zip(feature_charge.get(i).into_iter().flatten())
            .map(|(m, z)| (m.unwrap(), z.unwrap()))
            .collect();
        expected.sort_by(|a, b| a.0.total_cmp(&b.0));
        let got: Vec<(f64, i32)> = mz
            .iter()
            .copied()
            .zip(charge.clone().expect("charge array"))
            .collect();
        assert_eq!(got, expected, "spectrum {i}");
        assert!(intensity.iter().all(|&x| x > 0.0));
        envelopes += got.len();
    }
    assert!(envelopes > 10, "{envelopes} envelopes");
    for term in ["peak picking", "deisotoping", "charge deconvolution"] {
        assert!(
            processing.iter().any(|p| p == term),
            "{term}: {processing:?}"
        );
    }

    // Without deconvolution there are no charges to give.
    let plain = run("plain", &["--mzml", "--no-deconvolve"]);
    let (spectra, _) = read_mzml_peak_lists(&plain.join("centroided.mzML"));
    assert!(!spectra.is_empty());
    assert!(spectra.iter().all(|(_, _, charge)| charge.is_none()));

    let bad = mzforge(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        "/tmp/never",
        "--mzml-peaks",
        "masses",
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("deconvolved"), "{}", text(&bad));
}

#[test]
fn config_file_sets_parameters_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("params.toml");
    std::fs::write(
        &config,
        "ms_levels = [1]\n[centroid]\nmin_snr = 5.0\n[centroid.noise]\nwindow_mz = 100.0\n",
    )
    .unwrap();
    let input = fixture("sim_profile.mzML");
    let out = dir.path().join("out");
    let result = mzforge_run(
        &input,
        &out,
        &["--config", config.to_str().unwrap(), "--min-snr", "7"],
    );
    assert!(result.status.success(), "{}", text(&result));
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sim_profile/run.json")).unwrap()).unwrap();
    assert_eq!(run["params"]["centroid"]["min_snr"], 7.0);
    assert_eq!(run["params"]["centroid"]["noise"]["window_mz"], 100.0);
    assert_eq!(run["params"]["ms_levels"], serde_json::json!([1]));

    std::fs::write(&config, "[centroid]\nmin_snr = -1\n").unwrap();
    let bad = mzforge_run(&input, &out, &["--config", config.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("min_snr"), "{}", text(&bad));
    std::fs::write(&config, "[centroid]\nmin_sn = 1\n").unwrap();
    let unknown = mzforge_run(&input, &out, &["--config", config.to_str().unwrap()]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown).contains("min_sn"), "{}", text(&unknown));
}

/// A config file that turns deconvolution off refuses the deconvolution flags, as
/// `--no-deconvolve` does: they used to be accepted, ignored and recorded in run.json as if
/// they had been used.
#[test]
fn deconvolution_flags_are_refused_when_the_config_turns_deconvolution_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("params.toml");
    std::fs::write(&config, "[deconvolve]\nenabled = false\n").unwrap();
    let input = fixture("sim_profile.mzML");
    let out = dir.path().join("out");
    let config_flag = ["--config", config.to_str().unwrap()];
    for flags in [
        &["--charge-range", "1-60"][..],
        &["--isotope-model", "glycan"],
        &["--tolerance-ppm", "5"],
        &["--min-fit", "0.5"],
    ] {
        let result = mzforge_run(&input, &out, &[&config_flag[..], flags].concat());
        assert_eq!(
            result.status.code(),
            Some(1),
            "{flags:?}: {}",
            text(&result)
        );
        let message = text(&result);
        assert!(message.contains(flags[0]), "{flags:?}: {message}");
        assert!(
            message.contains("`deconvolve.enabled = false`"),
            "{flags:?}: {message}"
        );
        assert!(!out.exists(), "{flags:?}: a result was written");
    }
    // Without them the config runs, with no envelopes.
    let result = mzforge_run(&input, &out, &config_flag);
    assert!(result.status.success(), "{}", text(&result));
}

/// An out-of-range value is named as it was given: by its flag, or by its path in the config
/// file; it used to be the engine's name either way (`noise.window_mz` for `--noise-window`).
#[test]
fn an_invalid_value_is_named_by_its_flag_or_its_place_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("sim_profile.mzML");
    let out = dir.path().join("out");
    for (flags, expected) in [
        (
            &["--noise-window", "0"][..],
            "error: invalid --noise-window: must be a positive number of m/z units",
        ),
        (
            &["--tolerance-ppm", "5000"],
            "error: invalid --tolerance-ppm: must be in (0, 1000]",
        ),
        (
            &["--charge-range", "9-3"],
            "error: invalid --charge-range: charges must satisfy",
        ),
        (
            &["--max-spectra", "0"],
            "error: invalid --max-spectra: must be between 1 and",
        ),
    ] {
        let result = mzforge_run(&input, &out, flags);
        assert_eq!(
            result.status.code(),
            Some(1),
            "{flags:?}: {}",
            text(&result)
        );
        assert!(
            text(&result).contains(expected),
            "{flags:?}: {}",
            text(&result)
        );
        assert!(!out.exists(), "{flags:?}: a result was written");
    }
    let config = dir.path().join("params.toml");
    std::fs::write(&config, "[centroid.noise]\nwindow_mz = 0\n").unwrap();
    let config_flag = ["--config", config.to_str().unwrap()];
    let result = mzforge_run(&input, &out, &config_flag);
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    let expected = format!(
        "error: invalid parameter `centroid.noise.window_mz` in {}: must be a positive",
        config.display()
    );
    assert!(text(&result).contains(&expected), "{}", text(&result));
    // A flag overrides the config's value, which is then no error.
    let result = mzforge_run(
        &input,
        &out,
        &[&config_flag[..], &["--noise-window", "50"]].concat(),
    );
    assert!(result.status.success(), "{}", text(&result));
}

/// `--out` naming a file is refused once, naming the flag, before anything runs; every input
/// used to fail on its own with "cannot write OUT/<stem>: File exists".
#[test]
fn an_out_that_is_a_file_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    std::fs::write(&out, "notes").unwrap();
    let result = mzforge_run(&fixture("sim_profile.mzML"), &out, &[]);
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    let message = text(&result);
    assert!(
        message.contains(&format!(
            "--out {} is a file, not a directory",
            out.display()
        )),
        "{message}"
    );
    assert_eq!(message.matches("error:").count(), 1, "{message}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "notes");
}

/// A mislabelled file is reported, which way and with its first spectrum, whatever `--signal`
/// says: `--signal declared` on `centroided1.mzML` (profile declared, peak lists inside) used to
/// be silent. A forced kind on a well-labelled file is no disagreement (it used to be reported
/// as "their data are the other; processed as their data look", both false), and spectra that
/// declare nothing are a warning too (they were only a count in run.json).
#[test]
fn mislabelled_and_undeclared_spectra_are_reported_whatever_signal_says() {
    let (Some(mislabelled), Some(labelled), Some(undeclared)) = (
        shared("edge/centroided1.mzML"),
        shared("centroid-reference/openms-3.6/three_test_scans.sn0.mzML"),
        shared("encodings/FileFilter_49_input.mzML"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |input: &Path, flags: &[&str]| -> (String, serde_json::Value) {
        let out = dir.path().join("out");
        let result = mzforge_run(input, &out, &[flags, &["--no-deconvolve"]].concat());
        assert!(result.status.success(), "{}", text(&result));
        let stem = mzforge::output::input_stem_of_path(input);
        let record = std::fs::read(out.join(stem).join("run.json")).unwrap();
        (
            String::from_utf8_lossy(&result.stderr).into_owned(),
            serde_json::from_slice(&record).unwrap(),
        )
    };
    let mislabel = "warning: 100 spectra are declared profile but their data are a peak list \
                    (the first: spectrum 0 (scan=1)); ";
    for (flags, done) in [
        (&[][..], "processed as their data look"),
        (
            &["--signal", "declared"],
            "processed as declared (`signal = declared`)",
        ),
        (
            &["--signal", "profile"],
            "processed as profile (`signal = profile`)",
        ),
    ] {
        let (stderr, record) = run(&mislabelled, flags);
        assert!(
            stderr.contains(&format!("{mislabel}{done}")),
            "{flags:?}: {stderr}"
        );
        assert_eq!(record["summary"]["signal_disagreements"], 100, "{flags:?}");
    }

    let (stderr, record) = run(&labelled, &["--signal", "profile"]);
    assert!(!stderr.contains("declared"), "{stderr}");
    assert_eq!(record["summary"]["signal_disagreements"], 0);
    assert_eq!(record["summary"]["profile_spectra"], 3);

    let (stderr, record) = run(&undeclared, &[]);
    assert!(
        stderr.contains(
            "warning: 100 spectra declare neither profile nor centroid (the first: spectrum 0 \
             (spectrum=0)); processed as their data look: 50 as profile, 49 as centroid; 1 \
             with too few points to judge (under 16 non-zero), taken as centroid"
        ),
        "{stderr}"
    );
    assert_eq!(record["summary"]["signal_undeclared"], 100);
    assert_eq!(record["summary"]["warnings_total"], 1);
}

/// Every broken file in ../shared/data/edge: non-zero exit, a message naming the file, and no
/// result directory.
#[test]
fn broken_files_fail_cleanly_without_output() {
    for rel in [
        "edge/1min.mzML",
        "edge/IndexedmzMLFile_2_broken.mzML",
        "edge/MzMLFile_3_invalid.mzML",
        "edge/MzMLFile_6_uncompresscor.MzML.gz",
        "edge/empty_XML.mzML",
    ] {
        let Some(input) = shared(rel) else { return };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let result = mzforge_run(&input, &out, &[]);
        assert_eq!(result.status.code(), Some(1), "{rel}: {}", text(&result));
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        assert!(text(&result).contains(&name), "{rel}: {}", text(&result));
        assert!(
            !text(&result).contains("panicked"),
            "{rel}: {}",
            text(&result)
        );
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{rel}: left {leftovers:?}");
    }
}

/// A file whose every spectrum is bad fails like a broken file (exit 1, the file and its
/// first bad spectrum named, nothing left in the output directory) instead of giving an empty
/// result; the other inputs of the run still get theirs.
#[test]
fn a_file_of_bad_spectra_only_fails_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.mzML");
    std::fs::write(&broken, mzml_of_broken_spectra(3)).unwrap();
    let good = fixture("sim_profile.mzML");
    let out = dir.path().join("out");
    let result = mzforge(&[
        "run",
        broken.to_str().unwrap(),
        good.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    let message = text(&result);
    assert!(
        message.contains("broken.mzML: no spectrum could be used (3 skipped as bad)")
            && message.contains("spectrum 0 (scan=1)"),
        "{message}"
    );
    // The file is named once (it was named again before the first spectrum's error).
    let line = message
        .lines()
        .find(|l| l.contains("no spectrum could be used"))
        .unwrap();
    assert_eq!(line.matches("broken.mzML").count(), 1, "{line}");
    assert!(line.contains("the first: spectrum 0 (scan=1): "), "{line}");
    assert_eq!(entry_names(&out), ["sim_profile"]);
}

/// `inspect` on the same file summarises it (its bad spectra listed) and fails as `run` does,
/// in the same words; `--json` gives the summary with status "error". A file with one good
/// spectrum among bad ones is summarised and succeeds.
#[test]
fn inspect_fails_on_a_file_of_bad_spectra_only() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.mzML");
    std::fs::write(&broken, mzml_of_broken_spectra(3)).unwrap();
    let result = mzforge(&["inspect", broken.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(stdout.matches("bad spectrum").count(), 3, "{stdout}");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("broken.mzML: no spectrum could be used (3 skipped as bad), the first: spectrum 0 (scan=1)"),
        "{stderr}"
    );

    let json = mzforge(&["inspect", broken.to_str().unwrap(), "--json"]);
    assert_eq!(json.status.code(), Some(1), "{}", text(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["status"], "error");
    assert_eq!(report["spectra"], 3);
    assert_eq!(report["bad_spectra"].as_array().unwrap().len(), 3);
    assert!(report["error"]
        .as_str()
        .unwrap()
        .contains("no spectrum could be used"));

    let one_good = dir.path().join("one-good.mzML");
    let mzml = mzml_of_broken_spectra(3)
        .replacen("@@@@", "AAAAAAAAWUAAAAAAACBZQAAAAAAAQFlA", 1)
        .replacen("@@@@", "AAAgQQAASEIAACBB", 1);
    std::fs::write(&one_good, mzml).unwrap();
    let report = inspect_json(&one_good);
    assert_eq!(report["status"], "ok");
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["bad_spectra"].as_array().unwrap().len(), 2);
}

/// Past the summary's hundred warnings the command line says how many more there were and
/// where they are counted; the file's one good spectrum is written.
#[test]
fn warnings_past_the_hundredth_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    // 105 bad spectra, the first made good: m/z 100, 100.5, 101 (f64), intensities 10, 50, 10.
    let mzml = mzml_of_broken_spectra(106)
        .replacen("@@@@", "AAAAAAAAWUAAAAAAACBZQAAAAAAAQFlA", 1)
        .replacen("@@@@", "AAAgQQAASEIAACBB", 1);
    let input = dir.path().join("mostly-bad.mzML");
    std::fs::write(&input, mzml).unwrap();
    let out = dir.path().join("out");
    let result = mzforge_run(&input, &out, &[]);
    assert!(result.status.success(), "{}", text(&result));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(
        stderr.matches("warning: skipped: ").count(),
        100,
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: ... and 6 more, counted in run.json (`warnings_total`)"),
        "{stderr}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("mostly-bad/run.json")).unwrap()).unwrap();
    assert_eq!(record["summary"]["spectra_written"], 1);
    assert_eq!(record["summary"]["spectra_skipped"], 105);
    // The 105 skipped, and the good spectrum's missing retention time.
    assert_eq!(record["summary"]["spectra_without_rt"], 1);
    assert_eq!(record["summary"]["warnings_total"], 106);
}

/// `--max-points-per-spectrum` below the input's spectra stops that input with an error naming
/// the file, the spectrum and the setting, and leaves no output; raised, the same input runs.
#[test]
fn limit_flags_stop_a_run_cleanly_and_raise_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("sim_profile.mzML");
    let out = dir.path().join("out");
    let run = |flags: &[&str]| mzforge_run(&input, &out, flags);
    let refused = run(&["--max-points-per-spectrum", "100"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    for fragment in [
        "sim_profile.mzML",
        "spectrum 0 (scan=1)",
        "points",
        "limits.max_points_per_spectrum",
        "`--max-points-per-spectrum` on the command line",
    ] {
        assert!(text(&refused).contains(fragment), "{}", text(&refused));
    }
    assert!(!out.join("sim_profile").exists());
    let refused = run(&["--max-spectra", "3"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused)
            .contains("limits.max_spectra` raises it; `--max-spectra` on the command line"),
        "{}",
        text(&refused)
    );
    assert!(!out.join("sim_profile").exists());
    let zero = run(&["--max-array-bytes", "0"]);
    assert_eq!(zero.status.code(), Some(1), "{}", text(&zero));
    assert!(
        text(&zero).contains("invalid --max-array-bytes: must be between 1 and"),
        "{}",
        text(&zero)
    );
    let raised = run(&[
        "--max-points-per-spectrum",
        "100000",
        "--max-spectrum-bytes",
        "1000000",
    ]);
    assert!(raised.status.success(), "{}", text(&raised));
    assert!(out.join("sim_profile/peaks.parquet").exists());
}

/// A batch goes on past a broken input, reports it, and exits non-zero.
#[test]
fn one_bad_input_does_not_stop_the_others() {
    let (Some(bad), Some(good)) = (
        shared("edge/MzMLFile_3_invalid.mzML"),
        shared("profile/three_test_scans.mzML"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let result = mzforge(&[
        "run",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert!(dir.path().join("three_test_scans/peaks.parquet").exists());
    assert!(!dir.path().join("MzMLFile_3_invalid").exists());
}

/// `--inputs-at-once`: the same tables as one input at a time, byte for byte, the reports in
/// input order although the first, longest input finishes last, and a bad input still fails
/// alone.
#[test]
fn inputs_at_once_give_the_same_results_reported_in_input_order() {
    let (Some(long), Some(bad), Some(short), Some(mgf)) = (
        shared("runs/BSA1.mzML"),
        shared("edge/MzMLFile_3_invalid.mzML"),
        shared("profile/three_test_scans.mzML"),
        shared("mgf/small.mgf"),
    ) else {
        return;
    };
    let inputs = [long, bad, short, fixture("sim_profile.mzML"), mgf];
    let run = |out: &Path, flags: &[&str]| {
        let mut args = vec!["run", "--out", out.to_str().unwrap(), "--json"];
        args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
        args.extend_from_slice(flags);
        mzforge(&args)
    };
    let (one, three) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one_by_one = run(one.path(), &[]);
    let at_once = run(three.path(), &["--inputs-at-once", "3"]);
    for result in [&one_by_one, &at_once] {
        assert_eq!(result.status.code(), Some(1), "{}", text(result));
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&result.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let reported: Vec<_> = lines.iter().map(|l| l["input"].as_str().unwrap()).collect();
        let given: Vec<_> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(reported, given);
        let statuses: Vec<_> = lines
            .iter()
            .map(|l| l["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["ok", "error", "ok", "ok", "ok"]);
    }
    assert_eq!(entry_names(one.path()), entry_names(three.path()));
    assert!(!three.path().join("MzMLFile_3_invalid").exists());
    let mut tables = 0;
    for stem in entry_names(one.path()) {
        for table in ["spectra.parquet", "peaks.parquet", "features.parquet"] {
            let read = |dir: &Path| std::fs::read(dir.join(&stem).join(table)).unwrap();
            assert!(
                read(one.path()) == read(three.path()),
                "{stem}/{table} differs"
            );
            tables += 1;
        }
    }
    assert_eq!(tables, 12);

    let zero = run(three.path(), &["--inputs-at-once", "0"]);
    assert_eq!(zero.status.code(), Some(2), "{}", text(&zero));
    assert!(text(&zero).contains("--inputs-at-once"), "{}", text(&zero));
}

#[test]
fn rerun_replaces_the_previous_result_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("sim_profile.mzML");
    let out = dir.path().to_str().unwrap();
    assert!(mzforge(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out,
        "--min-snr",
        "100"
    ])
    .status
    .success());
    let first = std::fs::metadata(dir.path().join("sim_profile/peaks.parquet"))
        .unwrap()
        .len();
    assert!(mzforge(&["run", input.to_str().unwrap(), "--out", out])
        .status
        .success());
    let second = std::fs::metadata(dir.path().join("sim_profile/peaks.parquet"))
        .unwrap()
        .len();
    assert!(second > first);
    assert_eq!(entry_names(dir.path()), ["sim_profile"]);
}

/// An input kept in a folder named as its stem, with `--out` the folder's parent: the result
/// would take the folder's place. The folder (and the input in it) is the user's, not an
/// earlier result, so the run refuses instead of deleting it.
#[test]
fn a_folder_of_the_users_where_the_result_would_go_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("sim_profile");
    std::fs::create_dir(&folder).unwrap();
    let input = folder.join("sim_profile.mzML");
    std::fs::copy(fixture("sim_profile.mzML"), &input).unwrap();
    std::fs::write(folder.join("notes.txt"), "mine").unwrap();
    let out = dir.path().to_str().unwrap();
    let result = mzforge(&["run", input.to_str().unwrap(), "--out", out, "--json"]);
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    let line: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(line["status"], "error");
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("is not an mzforge result"),
        "{line}"
    );
    assert_eq!(entry_names(&folder), ["notes.txt", "sim_profile.mzML"]);
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(fixture("sim_profile.mzML")).unwrap()
    );
    // Nothing left beside it either.
    assert_eq!(entry_names(dir.path()), ["sim_profile"]);
}

/// A deconvolved peak list without deconvolution would be the centroids under a header that
/// says they were deisotoped: refused before any work, from flags or from the config; and
/// deconvolution settings with --no-deconvolve are a usage error.
#[test]
fn a_deconvolved_mzml_without_deconvolution_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("sim_profile.mzML");
    let config = dir.path().join("params.toml");
    std::fs::write(&config, "[deconvolve]\nenabled = false\n").unwrap();
    let out = dir.path().join("out");
    for extra in [
        &["--no-deconvolve"][..],
        &["--config", config.to_str().unwrap()],
    ] {
        let mut args = vec![
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--mzml-peaks",
            "deconvolved",
        ];
        args.extend_from_slice(extra);
        let result = mzforge(&args);
        assert_eq!(result.status.code(), Some(1), "{}", text(&result));
        assert!(
            text(&result).contains("--mzml-peaks deconvolved needs deconvolution"),
            "{}",
            text(&result)
        );
        assert!(!out.exists());
    }
    // Deconvolution settings beside --no-deconvolve would be ignored without a word: a usage
    // error naming both.
    for (flag, value) in [
        ("--charge-range", "1-60"),
        ("--isotope-model", "glycan"),
        ("--tolerance-ppm", "5"),
        ("--min-fit", "0.5"),
    ] {
        let result = mzforge_run(&input, &out, &["--no-deconvolve", flag, value]);
        assert_eq!(result.status.code(), Some(2), "{}", text(&result));
        assert!(
            text(&result).contains("--no-deconvolve") && text(&result).contains(flag),
            "{}",
            text(&result)
        );
        assert!(!out.exists());
    }
}

/// A named pipe (as `/dev/stdin` or a shell's `<(zcat run.mzML.gz)` are) is read like the file
/// written into it, by `run` and by `inspect`; it used to be refused as "no such file".
#[cfg(unix)]
#[test]
fn a_named_pipe_is_an_input_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("piped.mzML");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let input = fixture("sim_profile.mzML");
    let feed = || {
        let (fifo, input) = (fifo.clone(), input.clone());
        std::thread::spawn(move || std::fs::write(&fifo, std::fs::read(&input).unwrap()))
    };
    let out = dir.path().join("out");
    let writer = feed();
    let result = mzforge_run(&fifo, &out, &["--json"]);
    // Checked first: a run that refused the pipe leaves its writer waiting for a reader.
    assert!(result.status.success(), "{}", text(&result));
    writer.join().unwrap().unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("piped/run.json")).unwrap()).unwrap();
    assert_eq!(record["summary"]["spectra_written"], 20);
    assert_eq!(
        record["input"]["bytes"],
        std::fs::metadata(&input).unwrap().len()
    );

    let writer = feed();
    let inspected = mzforge(&["inspect", fifo.to_str().unwrap(), "--json"]);
    assert!(inspected.status.success(), "{}", text(&inspected));
    writer.join().unwrap().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(summary["spectra"], 20);
}

/// Ctrl-C (SIGINT) mid-run: the run stops, removes its unfinished result directory and exits
/// 130; it used to die at once and leave the hidden staging directory behind. The input is a
/// named pipe fed half a run, so that the signal surely comes while the run is reading (a
/// larger one than the fixtures: the reader takes its first MiB before it starts).
#[cfg(unix)]
#[test]
fn ctrl_c_mid_run_stops_and_leaves_nothing_behind() {
    let Some(input) = shared("runs/BSA1.mzML") else {
        return;
    };
    let (status, stderr, left) = interrupted_mid_run(&input, &["piped"], &[], &[]);
    assert_eq!(status, Some(130), "stderr: {stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// With `--inputs-at-once 2`, Ctrl-C stops both inputs in flight, removes both unfinished
/// results and starts none of the inputs after them.
#[test]
fn ctrl_c_stops_every_input_in_flight_and_starts_no_more() {
    let Some(input) = shared("runs/BSA1.mzML") else {
        return;
    };
    let later = fixture("sim_profile.mzML");
    let flags = ["--inputs-at-once", "2"];
    let (status, stderr, left) =
        interrupted_mid_run(&input, &["first", "second"], &[later.as_path()], &flags);
    assert_eq!(status, Some(130), "stderr: {stderr}");
    for name in ["first", "second"] {
        let stopped = format!("out/{name}: stopped by a signal");
        assert!(stderr.contains(&stopped), "{name}: {stderr}");
    }
    assert!(
        !stderr.contains("sim_profile"),
        "a later input ran: {stderr}"
    );
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Runs `mzforge run` on named pipes (`<name>.mzML`), then `after`, with `flags`; writes the
/// first half of `input` into every pipe, waits until each input's result is being staged,
/// sends SIGINT and, once the run has said it is stopping, the rest of the input. Returns the
/// exit code, standard error, and what is left in the output directory.
fn interrupted_mid_run(
    input: &Path,
    pipes: &[&str],
    after: &[&Path],
    flags: &[&str],
) -> (Option<i32>, String, Vec<String>) {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let fifos: Vec<PathBuf> = pipes
        .iter()
        .map(|name| dir.path().join(format!("{name}.mzML")))
        .collect();
    for fifo in &fifos {
        assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
    }
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mzforge"))
        .arg("run")
        .args(&fifos)
        .args(after)
        .arg("--out")
        .arg(&out)
        .args(flags)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(input).unwrap();
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    let mut writers = Vec::new();
    for (fifo, name) in fifos.iter().zip(pipes) {
        let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
        pipe.write_all(first).unwrap();
        // The run has read the header and made its staging directory: it is mid-run.
        let staging = out.join(format!(".{name}.partial-{}", child.id()));
        let waited = std::time::Instant::now();
        while !staging.is_dir() {
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(120),
                "no staging directory {}",
                staging.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        writers.push(pipe);
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // Only once the run has taken the signal in does the rest of the input come.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.starts_with("stopping") {
            break;
        }
    }
    assert!(seen.contains("stopping"), "stderr: {seen:?}");
    for mut pipe in writers {
        // The run may stop before it has read everything: the pipe may be closed by then.
        let _ = pipe.write_all(rest);
    }
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let status = child.wait().unwrap();
    (status.code(), seen, entry_names(&out))
}

/// `--json` gives JSON on standard output whatever fails, also before any input runs.
#[test]
fn json_output_is_json_also_when_nothing_could_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = fixture("sim_profile.mzML");
    let input = input.to_str().unwrap();
    let no_match = dir.path().join("*.mzML");
    // Another file with the same stem (the same file named twice runs once).
    let copy = dir.path().join("copy").join("sim_profile.mzML");
    std::fs::create_dir(copy.parent().unwrap()).unwrap();
    std::fs::copy(input, &copy).unwrap();
    for args in [
        vec![no_match.to_str().unwrap()],
        vec![input, "--ms-levels", "0"],
        vec![input, copy.to_str().unwrap()],
    ] {
        let mut all = vec!["run", "--out", out.to_str().unwrap(), "--json"];
        all.extend(args);
        let result = mzforge(&all);
        assert_eq!(result.status.code(), Some(1), "{}", text(&result));
        let line: serde_json::Value = serde_json::from_slice(&result.stdout)
            .unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}): {}", text(&result)));
        assert_eq!(line["status"], "error", "{line}");
        assert!(!line["error"].as_str().unwrap().is_empty());
    }
}

#[test]
fn usage_errors_and_missing_inputs() {
    let missing = mzforge(&["run", "/nonexistent/x.mzML", "--out", "/tmp/never"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).contains("/nonexistent/x.mzML"));
    let no_match = mzforge(&["run", "/nonexistent/*.mzML", "--out", "/tmp/never"]);
    assert_eq!(no_match.status.code(), Some(1));
    assert!(text(&no_match).contains("no file matches"));
    let bad_flag = mzforge(&["run", "x.mzML", "--out", "/tmp/never", "--min-snr", "lots"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    let help = mzforge(&["run", "--help"]);
    assert!(help.status.success());
    for option in [
        "--min-snr",
        "--threads",
        "--ms-levels",
        "--config",
        "--signal",
        "--mzml",
        "default",
    ] {
        assert!(text(&help).contains(option), "help lacks {option}");
    }
}

/// `mzforge inspect INPUT --json`, which must succeed, parsed.
fn inspect_json(input: &Path) -> serde_json::Value {
    let result = mzforge(&["inspect", input.to_str().unwrap(), "--json"]);
    assert!(
        result.status.success(),
        "{}: {}",
        input.display(),
        text(&result)
    );
    serde_json::from_slice(&result.stdout).unwrap()
}

#[test]
fn inspect_takes_several_inputs_and_reports_a_bad_one_without_stopping() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("sim_profile.mzML"),
        dir.path().join("b_profile.mzML"),
    )
    .unwrap();
    std::fs::copy(
        fixture("sim_envelopes.mzML"),
        dir.path().join("c_envelopes.mzML"),
    )
    .unwrap();
    std::fs::write(dir.path().join("a_broken.mzML"), "not mzML at all\n").unwrap();

    let json = mzforge(&["inspect", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(json.status.code(), Some(1), "{}", text(&json));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            let path = l["path"].as_str().unwrap();
            let name = path.rsplit('/').next().unwrap();
            (name, l["status"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("a_broken.mzML", "error"),
            ("b_profile.mzML", "ok"),
            ("c_envelopes.mzML", "ok")
        ]
    );
    assert!(lines[0]["error"]
        .as_str()
        .unwrap()
        .contains("not an mzML or MGF file"));
    assert_eq!(lines[1]["spectra"], 20);
    assert!(String::from_utf8_lossy(&json.stderr).contains("a_broken.mzML"));

    // A path that does not exist, or a pattern that matches nothing, among them is reported the
    // same way, and the others are still summarised.
    let missing = dir.path().join("missing.mzML");
    let no_match = dir.path().join("*.mgf");
    let good = dir.path().join("b_profile.mzML");
    let mixed = mzforge(&[
        "inspect",
        missing.to_str().unwrap(),
        no_match.to_str().unwrap(),
        good.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(mixed.status.code(), Some(1), "{}", text(&mixed));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&mixed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<_> = lines.iter().map(|l| l["status"].clone()).collect();
    assert_eq!(statuses, ["error", "error", "ok"], "{}", text(&mixed));
    assert_eq!(lines[0]["path"], missing.to_str().unwrap());
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("no file matches"));
    assert_eq!(lines[2]["spectra"], 20);

    let good = [
        dir.path().join("b_profile.mzML"),
        dir.path().join("c_envelopes.mzML"),
    ];
    let both = mzforge(&[
        "inspect",
        good[0].to_str().unwrap(),
        good[1].to_str().unwrap(),
    ]);
    assert!(both.status.success(), "{}", text(&both));
    let stdout = String::from_utf8_lossy(&both.stdout);
    let blocks: Vec<&str> = stdout.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{stdout}");
    for (block, path) in blocks.iter().zip(&good) {
        assert!(block.starts_with(path.to_str().unwrap()), "{block}");
        assert!(block.contains("spectra      20"), "{block}");
    }
}

/// A file that cannot be read is reported with the reason, not only "cannot read X".
#[cfg(target_os = "linux")]
#[test]
fn inspect_says_why_a_file_cannot_be_read() {
    // Reading /proc/self/mem from its start fails (EIO) for any user, root included.
    let result = mzforge(&["inspect", "/proc/self/mem"]);
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("cannot read /proc/self/mem: ") && stderr.contains("os error"),
        "{stderr}"
    );
}

/// `mzforge inspect data/ | head`: standard output closes early. Not an internal failure.
#[cfg(unix)]
#[test]
fn a_closed_standard_output_is_not_reported_as_a_bug() {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    let (reader, writer) = UnixStream::pair().unwrap();
    drop(reader);
    let result = Command::new(env!("CARGO_BIN_EXE_mzforge"))
        .args(["inspect", fixture("sim_profile.mzML").to_str().unwrap()])
        .stdout(std::process::Stdio::from(OwnedFd::from(writer)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!stderr.contains("internal failure"), "{stderr}");
    assert_eq!(result.status.code(), Some(141), "{stderr}");
}

#[test]
fn inspect_summarises_a_run() {
    let Some(input) = shared("runs/BSA1.mzML") else {
        return;
    };
    let report = inspect_json(&input);
    assert_eq!(report["spectra"], 1684);
    assert_eq!(report["levels"]["1"]["spectra"], 564);
    assert_eq!(report["levels"]["2"]["spectra"], 1120);
    assert_eq!(report["levels"]["2"]["declared_centroid"], 1120);
    assert_eq!(
        report["file"]["instruments"],
        serde_json::json!(["LTQ Orbitrap XL"])
    );
    let text_out = mzforge(&["inspect", input.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text_out.stdout).contains("RT"));
}

/// The instrument is its model, named once: not the serial number listed beside it, not
/// once per instrument configuration, and not OpenMS's bare "instrument model" term.
#[test]
fn inspect_names_each_instrument_model_once() {
    for (file, models) in [
        ("profile/small.mzML", serde_json::json!(["LTQ FT"])),
        ("edge/emptyScan.mzML", serde_json::json!(["LTQ Orbitrap"])),
        (
            "centroid-reference/PeakPickerHiRes_input.mzML",
            serde_json::json!([]),
        ),
    ] {
        let Some(input) = shared(file) else {
            return;
        };
        let report = inspect_json(&input);
        assert_eq!(report["file"]["instruments"], models, "{file}");
        let summary = text(&mzforge(&["inspect", input.to_str().unwrap()]));
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with("instrument"))
            .unwrap_or_else(|| panic!("{file}: no instrument line in {summary}"));
        match models.as_array().unwrap().first() {
            Some(model) => assert!(line.ends_with(model.as_str().unwrap()), "{file}: {line}"),
            None => assert!(line.ends_with("not named in the file"), "{file}: {line}"),
        }
    }
}

/// Spectra without an m/z array (a UV trace) are counted as not MS, as `mzforge run` counts
/// them, not listed as bad.
#[test]
fn inspect_counts_non_ms_traces_apart_from_bad_spectra() {
    let Some(input) = shared("edge/mzML_with_UV.mzML") else {
        return;
    };
    let report = inspect_json(&input);
    assert_eq!(report["spectra"], 128);
    assert_eq!(report["spectra_not_ms"], 101);
    assert_eq!(report["bad_spectra"], serde_json::json!([]));
    let summary = text(&mzforge(&["inspect", input.to_str().unwrap()]));
    assert!(summary.contains("not MS       101 spectra"), "{summary}");
    assert!(!summary.contains("bad spectrum"), "{summary}");
}

/// The RT range is the mass spectra's: the UV traces of `mzML_with_UV.mzML` start at 42 s,
/// its MS1 scans at 1126 s, and inspect used to say "RT 42.00 - 1139.97 s", far from the
/// `rt_seconds` that `mzforge run` writes.
#[test]
fn inspect_rt_range_leaves_non_ms_traces_out() {
    let Some(input) = shared("edge/mzML_with_UV.mzML") else {
        return;
    };
    let report = inspect_json(&input);
    let range = report["rt_seconds"].as_array().unwrap();
    let (first, last) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
    assert!((first - 1126.036).abs() < 1e-3, "{report}");
    assert!((last - 1139.973).abs() < 1e-3, "{report}");
    let summary = text(&mzforge(&["inspect", input.to_str().unwrap()]));
    assert!(
        summary.contains("RT           1126.04 - 1139.97 s"),
        "{summary}"
    );
}

/// A spectrum whose file gives no scan start time (scan 21 of tiny.pwiz) is left out of the
/// RT range and counted, not taken for one at 0 s; `run` writes a null `rt_seconds` for it. A
/// file without any retention time says so.
#[test]
fn inspect_counts_spectra_without_retention_time() {
    let Some(input) = shared("edge/tiny.pwiz.1.1.mzML") else {
        return;
    };
    let report = inspect_json(&input);
    assert_eq!(report["spectra_without_rt"], 1, "{report}");
    let range = report["rt_seconds"].as_array().unwrap();
    let (first, last) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
    assert!((first - 42.05).abs() < 1e-9, "{report}");
    assert!((last - 5.9905 * 60.0).abs() < 1e-9, "{report}");
    let summary = text(&mzforge(&["inspect", input.to_str().unwrap()]));
    assert!(
        summary.contains("RT           42.05 - 359.43 s (1 spectrum has none)"),
        "{summary}"
    );

    let out = tempfile::tempdir().unwrap();
    let result = mzforge_run(&input, out.path(), &[]);
    assert!(result.status.success(), "{}", text(&result));
    let file = File::open(out.path().join("tiny.pwiz.1.1/spectra.parquet")).unwrap();
    let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (mut nulls, mut ids) = (Vec::new(), Vec::new());
    for batch in &batches {
        let rt = batch.column_by_name("rt_seconds").unwrap();
        let rt = rt.as_any().downcast_ref::<Float64Array>().unwrap();
        let id = batch.column_by_name("native_id").unwrap();
        let id = id.as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..batch.num_rows() {
            ids.push(id.value(i).to_owned());
            nulls.push(rt.is_null(i));
        }
    }
    let without: Vec<&String> = ids
        .iter()
        .zip(&nulls)
        .filter(|(_, n)| **n)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(without, ["scan=21"]);

    let mgf = out.path().join("untimed.mgf");
    std::fs::write(
        &mgf,
        "BEGIN IONS\nTITLE=a\nPEPMASS=500.5\n100.0 10.0\nEND IONS\n\
         BEGIN IONS\nTITLE=b\nPEPMASS=500.5\n100.0 10.0\nEND IONS\n",
    )
    .unwrap();
    let report = inspect_json(&mgf);
    assert_eq!(report["rt_seconds"], serde_json::Value::Null, "{report}");
    assert_eq!(report["spectra_without_rt"], 2, "{report}");
    let summary = text(&mzforge(&["inspect", mgf.to_str().unwrap()]));
    assert!(
        summary.contains("RT           none in the file (2 spectra have none)"),
        "{summary}"
    );
}

/// What inspect says `run` takes the spectra for is what `run` does: also where the data's
/// look and the run's decision differ (a declared peak list that looks like profile data but
/// has no zero intensities stays a peak list) and on a mislabelled file.
#[test]
fn inspect_says_what_run_takes_the_spectra_for() {
    let out = tempfile::tempdir().unwrap();
    for file in [
        "deconvolution/Averaged_221110_CytoOnly.mzML",
        "edge/centroided1.mzML",
        "profile/small.mzML",
    ] {
        let Some(input) = shared(file) else {
            return;
        };
        let report = inspect_json(&input);
        let sum = |key: &str| -> u64 {
            report["levels"]
                .as_object()
                .unwrap()
                .values()
                .map(|level| level[key].as_u64().unwrap())
                .sum()
        };
        let target = out.path().join(file.replace('/', "_"));
        let result = mzforge_run(&input, &target, &["--no-deconvolve", "--json"]);
        assert!(result.status.success(), "{file}: {}", text(&result));
        let line: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
        let summary = &line["summary"];
        assert_eq!(
            sum("run_profile"),
            summary["profile_spectra"],
            "{file}: {line}"
        );
        assert_eq!(
            sum("run_centroid"),
            summary["centroid_spectra"],
            "{file}: {line}"
        );
    }
    // The case where look and decision differ is among them.
    let cyto = inspect_json(&shared("deconvolution/Averaged_221110_CytoOnly.mzML").unwrap());
    let level = &cyto["levels"]["1"];
    assert_eq!(level["looks_profile"], 1, "{cyto}");
    assert_eq!(level["run_centroid"], 1, "{cyto}");
}

/// A hand-made mzML of `n` MS1 spectra whose arrays are not base64.
fn mzml_of_broken_spectra(n: usize) -> String {
    use mzforge_fixtures::handmade::{
        array_text, mzml, spectrum, F32, F64, INTENSITY_ARRAY, MZ_ARRAY, NONE,
    };
    let arrays =
        array_text(MZ_ARRAY, F64, NONE, "@@@@") + &array_text(INTENSITY_ARRAY, F32, NONE, "@@@@");
    let spectra: Vec<String> = (0..n).map(|i| spectrum(i, 3, &arrays, "")).collect();
    mzml(&spectra)
}

/// The text summary lists the first ten bad spectra and counts the rest; `--json` has all.
#[test]
fn inspect_lists_ten_bad_spectra_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("broken.mzML");
    // 12 bad spectra after a good one (a file of bad spectra only fails; see above).
    let mzml = mzml_of_broken_spectra(13)
        .replacen("@@@@", "AAAAAAAAWUAAAAAAACBZQAAAAAAAQFlA", 1)
        .replacen("@@@@", "AAAgQQAASEIAACBB", 1);
    std::fs::write(&input, mzml).unwrap();
    let report = inspect_json(&input);
    let bad = report["bad_spectra"].as_array().unwrap();
    assert_eq!(bad.len(), 12, "{bad:?}");
    assert!(bad[11].as_str().unwrap().contains("scan=13"), "{bad:?}");
    let summary = text(&mzforge(&["inspect", input.to_str().unwrap()]));
    assert_eq!(summary.matches("bad spectrum ").count(), 10, "{summary}");
    assert!(summary.contains("bad spectra  2 more"), "{summary}");
}

/// The result files of `<out>/<stem>`, by name (hidden staging directories excluded), or
/// `None` when there is no result.
fn result_files(dir: &Path) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap())
            })
            .collect(),
    )
}

/// The parts of a result that must be identical between runs (run.json holds timings).
fn comparable(
    files: &std::collections::BTreeMap<String, Vec<u8>>,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter(|(name, _)| name.ends_with(".parquet"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// SIGKILL at random moments (seeded) leaves in the output directory either the previous
/// complete result or none, never a mix of two runs or a partial one, and the next run
/// succeeds. Runs alternate between two parameter sets so that "previous" and "new" differ.
#[test]
fn sigkill_at_random_moments_never_leaves_a_partial_or_mixed_result() {
    let Some(input) = shared("runs/BSA1.mzML") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let result = out.join("BSA1");
    let params: [&[&str]; 2] = [&["--min-snr", "0"], &["--min-snr", "5", "--no-deconvolve"]];
    let command = |k: usize| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mzforge"));
        c.args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .args(params[k])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        c
    };
    // Reference results of both parameter sets, and how long a run takes at least.
    let mut reference = Vec::new();
    let mut full_run = std::time::Duration::MAX;
    for k in 0..2 {
        let started = std::time::Instant::now();
        assert!(command(k).status().unwrap().success());
        full_run = full_run.min(started.elapsed());
        reference.push(comparable(&result_files(&result).expect("a result")));
    }
    assert_ne!(
        reference[0], reference[1],
        "the two parameter sets must differ"
    );
    let mut previous = Some(1usize); // the last reference run left set 1 in place
    let mut state = 0x2545_f491_4f6c_dd1du64; // xorshift64, fixed seed
    let (mut interrupted, mut kept, mut replaced, mut emptied) = (0, 0, 0, 0);
    for iteration in 0..20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let k = iteration % 2;
        // Anywhere in a run (the shorter reference run's time): most runs are cut, at any stage.
        let delay = full_run.mul_f64((state % 1000) as f64 / 1000.0);
        let mut child = command(k).spawn().unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap();
        if finished.is_none() {
            interrupted += 1;
        }
        child.kill().ok(); // SIGKILL
        let status = child.wait().unwrap();
        if let Some(done) = finished {
            assert!(done.success(), "iteration {iteration}: the run failed");
        }
        match result_files(&result) {
            None => {
                assert!(finished.is_none(), "a finished run left no result");
                emptied += 1;
                previous = None;
            }
            Some(files) => {
                let files = comparable(&files);
                if files == reference[k] {
                    replaced += usize::from(previous != Some(k));
                    previous = Some(k);
                } else {
                    let before = previous.map(|p| &reference[p]);
                    assert_eq!(
                        Some(&files),
                        before,
                        "iteration {iteration} ({status}): neither the previous nor the new result"
                    );
                    assert!(
                        finished.is_none(),
                        "a finished run left the previous result"
                    );
                    kept += 1;
                }
            }
        }
        let mut visible = entry_names(&out);
        visible.retain(|n| !n.starts_with('.'));
        assert!(
            visible.is_empty() || visible == ["BSA1"],
            "iteration {iteration}: {visible:?}"
        );
    }
    eprintln!(
        "20 runs: {interrupted} killed while running; previous result kept {kept}, \
         replaced {replaced}, none left {emptied}"
    );
    assert!(
        interrupted > 0,
        "no run was interrupted: the test tested nothing"
    );
    // The next run succeeds and gives the reference result.
    assert!(command(0).status().unwrap().success());
    assert_eq!(
        comparable(&result_files(&result).expect("a result")),
        reference[0]
    );
    // ...and clears what the killed runs left (their staging directories).
    let entries = entry_names(&out);
    assert_eq!(entries, ["BSA1"], "left behind: {entries:?}");
}

/// `peaks.parquet` has an `ion_mobility` column: each peak's 1/K0 for the timsTOF run (whose
/// centroids pass through, every one with its mobility), null for a file without mobility;
/// `spectra.parquet` names the array's kind and unit and gives each MS2 scan's 1/K0. The
/// tables are the same bytes from run to run.
#[test]
fn peaks_carry_ion_mobility_for_the_timstof_run_and_nulls_for_bsa1() {
    let Some(tims) =
        shared("runs/20200204_BU_8B8egg_1ug_uL_7charges_60_min_Slot2-11_1_244.mzML.gz")
    else {
        return;
    };
    let Some(bsa) = shared("runs/BSA1.mzML") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let again = tempfile::tempdir().unwrap();
    for out in [dir.path(), again.path()] {
        let result = mzforge_run(&tims, out, &["--no-deconvolve", "--ms-levels", "2"]);
        assert!(result.status.success(), "{}", text(&result));
    }
    let stem = "20200204_BU_8B8egg_1ug_uL_7charges_60_min_Slot2-11_1_244";
    for table in ["peaks.parquet", "spectra.parquet"] {
        let bytes = |root: &Path| std::fs::read(root.join(stem).join(table)).unwrap();
        assert!(bytes(dir.path()) == bytes(again.path()), "{table} differs");
    }
    let (peaks, _) = read_parquet(&dir.path().join(stem).join("peaks.parquet"));
    let mut n = 0;
    for batch in &peaks {
        let mobility = column::<Float64Array>(batch, "ion_mobility");
        assert_eq!(mobility.null_count(), 0);
        assert!(mobility.values().iter().all(|v| (0.5..2.0).contains(v)));
        n += mobility.len();
    }
    assert!(n > 10_000, "{n}");
    let (spectra, _) = read_parquet(&dir.path().join(stem).join("spectra.parquet"));
    for batch in &spectra {
        let kind = column::<StringArray>(batch, "ion_mobility_kind");
        let unit = column::<StringArray>(batch, "ion_mobility_unit");
        let scan = column::<Float64Array>(batch, "scan_ion_mobility");
        let scan_kind = column::<StringArray>(batch, "scan_ion_mobility_kind");
        for i in 0..batch.num_rows() {
            assert_eq!(kind.value(i), "mean inverse reduced ion mobility array");
            assert_eq!(unit.value(i), "volt-second per square centimeter");
            assert!(scan.is_valid(i) && (0.5..2.0).contains(&scan.value(i)));
            assert_eq!(scan_kind.value(i), "inverse reduced ion mobility");
        }
    }

    let result = mzforge_run(&bsa, dir.path(), &["--no-deconvolve"]);
    assert!(result.status.success(), "{}", text(&result));
    let (peaks, _) = read_parquet(&dir.path().join("BSA1/peaks.parquet"));
    let rows: usize = peaks.iter().map(|b| b.num_rows()).sum();
    assert!(rows > 100_000);
    for batch in &peaks {
        let mobility = column::<Float64Array>(batch, "ion_mobility");
        assert_eq!(mobility.null_count(), mobility.len());
    }
    let (spectra, _) = read_parquet(&dir.path().join("BSA1/spectra.parquet"));
    for batch in &spectra {
        for name in ["ion_mobility_kind", "scan_ion_mobility"] {
            let c = batch.column_by_name(name).unwrap();
            assert_eq!(c.null_count(), c.len(), "{name}");
        }
    }
}

/// `spectra.parquet`'s `precursor_spectrum_ref` is each precursor's `spectrumRef` as the file
/// gives it (every MS2 scan of the QC run names its MS1 scan), null for MS1 scans.
#[test]
fn spectra_name_the_scan_each_precursor_was_selected_from() {
    let Some(input) = shared("runs/171103_PMA_TK_QC_04-4to5min.mzML") else {
        return;
    };
    let text_of_input = std::fs::read_to_string(&input).unwrap();
    let expected: Vec<&str> = text_of_input
        .split("<precursor spectrumRef=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert_eq!(expected.len(), 381);
    let dir = tempfile::tempdir().unwrap();
    let result = mzforge_run(&input, dir.path(), &["--no-deconvolve"]);
    assert!(result.status.success(), "{}", text(&result));
    let (spectra, _) = read_parquet(
        &dir.path()
            .join("171103_PMA_TK_QC_04-4to5min/spectra.parquet"),
    );
    let mut written = Vec::new();
    for batch in &spectra {
        let refs = column::<StringArray>(batch, "precursor_spectrum_ref");
        let level = column::<UInt8Array>(batch, "ms_level");
        for i in 0..batch.num_rows() {
            assert_eq!(refs.is_valid(i), level.value(i) > 1, "row {i}");
            if refs.is_valid(i) {
                written.push(refs.value(i).to_owned());
            }
        }
    }
    assert_eq!(written, expected);
}

/// A run and an inspection of a file of one spectrum say "1 spectrum", not "1 spectra".
#[test]
fn counts_of_one_are_worded_in_the_singular() {
    let Some(input) = shared("edge/5B8egg_500ng_30V450ms18msReal_Ramp3_01.mzML_one_scan.gz") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let run = mzforge_run(&input, out.path(), &["--no-deconvolve"]);
    assert!(run.status.success(), "{}", text(&run));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains(": 1 spectrum (0 profile, 1 centroid), "),
        "{said}"
    );
    assert!(
        said.contains("warning: 1 spectrum is declared profile but its data are a peak list"),
        "{said}"
    );
    assert!(said.contains("processed as its data look"), "{said}");
    let summary = text(&mzforge(&["inspect", input.to_str().unwrap()]));
    assert!(
        summary.contains("MS2          1 spectrum: declared 1 profile"),
        "{summary}"
    );
}

/// An MGF entry that cannot be read is skipped and reported (exit 0, the warning in
/// `run.json`); `inspect` lists it; `--on-bad-spectrum fail` stops at it, leaving no result.
#[test]
fn an_unreadable_mgf_entry_is_skipped_or_stops_the_run_as_asked() {
    let Some(input) = shared("mgf/small.mgf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mgf = std::fs::read_to_string(&input).unwrap();
    let pepmass = mgf.find("PEPMASS=").unwrap();
    let line_end = pepmass + mgf[pepmass..].find('\n').unwrap();
    let broken = dir.path().join("small.mgf");
    std::fs::write(
        &broken,
        format!("{}PEPMASS=abc{}", &mgf[..pepmass], &mgf[line_end..]),
    )
    .unwrap();
    let out = dir.path().join("out");
    // Named by the line of its `BEGIN IONS`.
    let begin_line = 1 + mgf[..pepmass]
        .rfind("BEGIN IONS")
        .map_or(0, |at| mgf[..at].matches('\n').count());
    let entry = format!("spectrum 0 (the MGF entry at line {begin_line})");
    let run = mzforge_run(&broken, &out, &["--no-deconvolve"]);
    assert!(run.status.success(), "{}", text(&run));
    let said = text(&run);
    assert!(
        said.contains("warning: skipped: ")
            && said.contains(&format!("small.mgf: {entry}: cannot be read: ")),
        "{said}"
    );
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("small/run.json")).unwrap()).unwrap();
    assert_eq!(run_json["summary"]["spectra_skipped"], 1, "{run_json}");

    let inspected = text(&mzforge(&["inspect", broken.to_str().unwrap()]));
    assert!(
        inspected.contains("bad spectrum ") && inspected.contains(&entry),
        "{inspected}"
    );

    let strict = dir.path().join("strict");
    let run = mzforge_run(&broken, &strict, &["--on-bad-spectrum", "fail"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(text(&run).contains(&entry), "{}", text(&run));
    assert!(entry_names(&strict).is_empty());
}
