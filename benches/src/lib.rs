//! Helpers shared by the mzforge benches and examples: where the real data live, loading
//! profile spectra once (outside any timed region), the plain-`mzdata` baseline reader, and
//! the examples' count options.
//!
//! The data are the read-only files of `../shared/data` beside the repository (never copied
//! into it). When they are missing, [`data_file`] panics if `CI` is set and otherwise prints a
//! note and returns `None`, so a bench skips instead of measuring nothing.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use mzdata::io::MzMLReader;
use mzforge::{SignalKind, Spectrum, SpectrumReader};

/// `../shared/data`, resolved from this package's directory (`<repo>/benches`).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// A file of the shared data set by its path relative to `data_dir()`; `None` (after printing
/// why) when it is missing, unless `CI` is set, where a missing file is a failure.
pub fn data_file(relative: &str) -> Option<PathBuf> {
    let path = data_dir().join(relative);
    if path.is_file() {
        return Some(path);
    }
    let message = format!(
        "benchmark data {} not found (expected the shared data set at {})",
        path.display(),
        data_dir().display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    None
}

/// The profile files the centroiding benches use, relative to `data_dir()`.
pub const PROFILE_FILES: [&str; 3] = [
    "profile/small.mzML",
    "profile/three_test_scans.mzML",
    "profile/FeatureFinderMetaboIdent_1_input.mzML",
];

/// Reads and decodes every spectrum of `path` with mzforge; returns them with the count read.
pub fn read_all(path: &Path) -> Vec<Spectrum> {
    let reader = SpectrumReader::open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    reader
        .map(|raw| {
            let raw = raw.unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            raw.decode(path)
                .unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display()))
                .0
        })
        .collect()
}

/// The MS1 spectra of `path` that the file declares as profile, decoded. Panics when there are
/// none, so a bench over them cannot silently measure nothing.
pub fn profile_ms1(path: &Path) -> Vec<Spectrum> {
    let spectra: Vec<Spectrum> = read_all(path)
        .into_iter()
        .filter(|s| s.meta.ms_level == 1 && s.meta.declared_signal == Some(SignalKind::Profile))
        .collect();
    assert!(
        !spectra.is_empty(),
        "{} holds no profile MS1 spectra",
        path.display()
    );
    spectra
}

/// Total number of points (m/z, intensity pairs) of some spectra.
pub fn total_points(spectra: &[Spectrum]) -> usize {
    spectra.iter().map(|s| s.mz.len()).sum()
}

/// mzforge reading + decoding of every spectrum, one thread: (spectra, points).
pub fn mzforge_decode_all(path: &Path) -> (usize, usize) {
    let reader = SpectrumReader::open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut spectra = 0;
    let mut points = 0;
    for raw in reader {
        let raw = raw.unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let (spectrum, _) = raw
            .decode(path)
            .unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display()));
        spectra += 1;
        points += spectrum.intensity.len();
    }
    (spectra, points)
}

/// The first steps of [`mzforge_decode_all`] alone, to see where its time goes: finding
/// every spectrum in the file (for mzML, where each `<spectrum>` element starts and ends),
/// then, if `parse`, parsing each (arrays left encoded). Returns the spectra found.
pub fn mzforge_find_all(path: &Path, parse: bool) -> usize {
    let mut reader = SpectrumReader::open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut spectra = 0;
    while let Some(found) = reader
        .next_unparsed()
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    {
        if parse {
            found
                .parse()
                .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        }
        spectra += 1;
    }
    spectra
}

/// Plain `mzdata`: `MzMLReader` at its default detail level (eager decoding) over a buffered
/// file, touching both decoded arrays of every spectrum, one thread: (spectra, points).
pub fn mzdata_decode_all(path: &Path) -> (usize, usize) {
    let file = File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let reader = MzMLReader::new(BufReader::with_capacity(1 << 20, file));
    let mut spectra = 0;
    let mut points = 0;
    for spectrum in reader {
        spectra += 1;
        if let Some(arrays) = spectrum.arrays.as_ref() {
            let mz = arrays.mzs().expect("m/z array decodes");
            let intensity = arrays.intensities().expect("intensity array decodes");
            assert_eq!(mz.len(), intensity.len());
            points += intensity.len();
        }
    }
    (spectra, points)
}

/// mzsignal's peak picker as the peer of `Centroider::centroid_into` (no SNR or intensity
/// threshold, quadratic apex fit): `PeakPicker::default()`.
pub fn mzsignal_picker() -> mzsignal::peak_picker::PeakPicker {
    mzsignal::peak_picker::PeakPicker::default()
}

/// The value of a count option of an example (`--repeat N`, `--threads N`): a positive
/// integer, or the message to print.
pub fn positive_count(flag: &str, value: Option<String>) -> Result<usize, String> {
    match value.and_then(|v| v.parse().ok()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} needs a positive integer")),
    }
}
