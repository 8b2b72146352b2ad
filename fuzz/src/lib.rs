//! The bodies of mzforge's fuzz targets, one public function per target.
//!
//! Each `fuzz_targets/<name>.rs` calls the function of the same name; `tests/corpus.rs` runs the
//! same functions over the seed corpora as ordinary tests, so the targets cannot rot even where
//! cargo-fuzz is not run. A body panics only when it finds a bug: a panic inside the engine, a
//! broken invariant of a result, or a difference between two paths that must agree.

use std::io::Cursor;
use std::sync::OnceLock;

use mzforge::deconvolve::{Deconvolution, DeconvolveParams, Deconvolver, Envelope, PatternCache};
use mzforge::pipeline::PrecursorCheck;
use mzforge::simd::{self, Backend};
use mzforge::{
    CentroidParams, Centroider, IonMobilityArrayInfo, IonMobilityKind, PeakList, Pipeline,
    PipelineParams, Polarity, Precursor, ProcessedSpectrum, ScanMobility, ScanMobilityKind,
    SignalKind, SpectrumMeta, SpectrumReader,
};

/// A little-endian byte cursor that yields zeros once the input is used up.
struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.take())
    }
    fn string(&mut self) -> String {
        let n = (self.u8() as usize).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        String::from_utf8_lossy(head).into_owned()
    }
}

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let params = PipelineParams {
            threads: 1,
            batch_size: 4,
            ..PipelineParams::default()
        };
        Pipeline::new(params).expect("default parameters are valid")
    })
}

/// Target `read`: any bytes as an mzML/MGF file (plain or gzip), read through the public API.
/// Every spectrum is decoded (its arrays must come out equal-length, finite and sorted), then
/// the whole input goes through the [`Pipeline`], whose results must be well formed and
/// encodable as the output tables. Errors are fine (after a spectrum that cannot be read, both
/// readers go on); panics are not.
pub fn read(data: &[u8]) {
    let open = || SpectrumReader::from_reader("fuzz.mzML", Box::new(Cursor::new(data.to_vec())));
    let Ok(reader) = open() else { return };
    let path = reader.path().to_owned();
    // The same bytes read again with mzdata's spectrum builder for every spectrum: the lean
    // parser must agree with it on every spectrum it accepts (metadata, decoded arrays,
    // repairs and errors), and fall back to it for the rest.
    let mut by_mzdata = open().expect("opening the same bytes twice gave different answers");
    by_mzdata.set_lean_parsing(false);
    for raw in reader {
        let reference = by_mzdata.next();
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                assert!(
                    matches!(reference, Some(Err(_))),
                    "lean reading failed ({e}) where mzdata's did not ({reference:?})"
                );
                // One spectrum that cannot be read: both read on after it, alike.
                if let mzforge::Error::BadSpectrum { .. } = e {
                    let theirs = reference.map(|r| r.err().map(|e| e.to_string()));
                    assert_eq!(
                        Some(Some(e.to_string())),
                        theirs,
                        "the bad spectrum differs"
                    );
                    continue;
                }
                break;
            }
        };
        let reference = match reference {
            Some(Ok(reference)) => reference,
            other => panic!(
                "mzdata's reading failed ({other:?}) where the lean one did not ({:?})",
                raw.meta()
            ),
        };
        // Text, so that NaN equals NaN and -0 differs from 0.
        let meta = format!("{:?}", raw.meta());
        assert_eq!(meta, format!("{:?}", reference.meta()), "metadata differ");
        let decoded = raw.decode(&path);
        assert_eq!(
            summary(&decoded),
            summary(&reference.decode(&path)),
            "decoding differs in {meta}"
        );
        if let Ok((spectrum, _repairs)) = decoded {
            assert_eq!(spectrum.mz.len(), spectrum.intensity.len());
            assert!(spectrum.mz.iter().all(|m| m.is_finite()));
            assert!(spectrum.intensity.iter().all(|i| i.is_finite()));
            assert!(
                spectrum.mz.windows(2).all(|w| w[0] <= w[1]),
                "m/z not sorted"
            );
        }
    }
    let Ok(reader) = open() else {
        panic!("opening the same bytes twice gave different answers")
    };
    let mut results = Vec::new();
    let outcome = pipeline().run(reader, &mut |batch: &[ProcessedSpectrum]| {
        results.extend_from_slice(batch);
        Ok(())
    });
    if outcome.is_ok() {
        for s in &results {
            check_peak_list(&s.peaks);
            if let Some(d) = &s.deconvolution {
                assert_eq!(d.peak_envelope.len(), s.peaks.len());
                check_deconvolution(d, 1, 200, None);
            }
        }
        mzforge::output::spectra_batch(&results).expect("spectra table");
        mzforge::output::peaks_batch(&results).expect("peaks table");
        mzforge::output::features_batch(&results).expect("features table");
    }
}

/// A decoding's outcome, comparable bit for bit: the arrays' bits and repairs, or the message.
fn summary(decoded: &mzforge::Result<(mzforge::Spectrum, mzforge::io::Repairs)>) -> String {
    match decoded {
        Ok((s, repairs)) => {
            let mz: Vec<u64> = s.mz.iter().map(|v| v.to_bits()).collect();
            let intensity: Vec<u32> = s.intensity.iter().map(|v| v.to_bits()).collect();
            format!("{mz:?} {intensity:?} {repairs:?}")
        }
        Err(e) => format!("error: {e}"),
    }
}

fn check_peak_list(p: &PeakList) {
    let n = p.mz.len();
    assert_eq!(p.intensity.len(), n);
    assert_eq!(p.snr.len(), n);
    assert_eq!(p.fwhm_mz.len(), n);
    assert!(
        p.mz.iter().all(|m| m.is_finite()),
        "non-finite centroid m/z"
    );
    assert!(
        p.intensity.iter().all(|i| i.is_finite()),
        "non-finite centroid intensity"
    );
}

/// Target `kernels`: the SIMD kernels against the scalar reference on the same arrays.
///
/// The first byte picks the test: even, raw `f32` bit patterns (NaN, infinities, subnormals
/// included) through [`simd::local_maxima`]; odd, a profile spectrum (ascending m/z built from
/// 16-bit steps, 16-bit intensities) through [`Centroider`] with each backend. Results must be
/// identical, bit for bit.
pub fn kernels(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let mode = bytes.u8();
    let best = Backend::best_supported();
    if mode & 1 == 0 {
        let mut y = Vec::with_capacity(data.len() / 4);
        while !bytes.is_empty() {
            y.push(bytes.f32());
        }
        let (mut reference, mut fast) = (Vec::new(), Vec::new());
        simd::local_maxima(Backend::Scalar, &y, &mut reference);
        simd::local_maxima(best, &y, &mut fast);
        assert_eq!(reference, fast, "{best:?} local maxima differ from scalar");
        return;
    }
    let params = CentroidParams {
        min_snr: f32::from(bytes.u8() % 8),
        max_missing: usize::from(bytes.u8() % 3),
        ..CentroidParams::default()
    };
    let mut mz = Vec::new();
    let mut intensity = Vec::new();
    let mut at = 100.0 + f64::from(bytes.u16()) * 0.1;
    while !bytes.is_empty() {
        at += (f64::from(bytes.u16()) + 1.0) * 1e-5;
        mz.push(at);
        intensity.push(f32::from(bytes.u16()));
    }
    let mut reference = PeakList::default();
    let mut fast = PeakList::default();
    Centroider::with_backend(params.clone(), Backend::Scalar).centroid_into(
        &mz,
        &intensity,
        &mut reference,
    );
    Centroider::with_backend(params, best).centroid_into(&mz, &intensity, &mut fast);
    check_peak_list(&reference);
    let bits = |p: &PeakList| -> Vec<(u64, u32, u32, u32)> {
        (0..p.len())
            .map(|i| {
                (
                    p.mz[i].to_bits(),
                    p.intensity[i].to_bits(),
                    p.snr[i].to_bits(),
                    p.fwhm_mz[i].to_bits(),
                )
            })
            .collect()
    };
    assert_eq!(
        bits(&reference),
        bits(&fast),
        "{best:?} centroids differ from scalar"
    );
}

/// Target `deconvolve`: a random centroid list (ascending m/z, positive intensities) and
/// random charge settings through [`Deconvolver`]. Every envelope must be finite, its charge
/// inside the allowed range and signed by polarity, its score in 0–1, and every peak's
/// envelope index valid.
pub fn deconvolve(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let charge_min = 1 + u32::from(bytes.u8() % 8);
    let charge_max = charge_min + u32::from(bytes.u8() % 60);
    let flags = bytes.u8();
    let negative = flags & 1 == 1;
    let params = DeconvolveParams {
        charge_min,
        charge_max,
        auto_charge: flags & 2 == 2,
        tolerance_ppm: 1.0 + f64::from(bytes.u8()) / 4.0,
        min_peaks: 1 + usize::from(bytes.u8() % 4),
        ..DeconvolveParams::default()
    };
    params.validate().expect("valid parameters by construction");
    let mut mz = Vec::new();
    let mut intensity = Vec::new();
    let mut at = 50.0 + f64::from(bytes.u16()) * 0.05;
    while !bytes.is_empty() && mz.len() < 4096 {
        at += (f64::from(bytes.u16()) + 1.0) * 1e-4;
        mz.push(at);
        intensity.push(1.0 + f32::from(bytes.u16()) * 16.0);
    }
    let highest = if params.auto_charge {
        charge_max.max(params.auto_charge_max)
    } else {
        charge_max
    };
    // One isotope-pattern cache for the whole run, as the pipeline shares one between spectra.
    static PATTERNS: OnceLock<PatternCache> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(PatternCache::default).clone();
    let d = Deconvolver::with_cache(params, patterns).deconvolve(&mz, &intensity, negative);
    assert_eq!(d.peak_envelope.len(), mz.len());
    check_deconvolution(&d, charge_min, highest, Some(negative));
}

fn check_deconvolution(d: &Deconvolution, low: u32, high: u32, negative: Option<bool>) {
    for e in &d.envelopes {
        check_envelope(e, low, high, negative);
    }
    for k in d.peak_envelope.iter().flatten() {
        assert!(
            (*k as usize) < d.envelopes.len(),
            "envelope index {k} out of range"
        );
    }
}

fn check_envelope(e: &Envelope, low: u32, high: u32, negative: Option<bool>) {
    assert!(
        e.neutral_mass.is_finite() && e.mz.is_finite(),
        "non-finite envelope {e:?}"
    );
    assert!(
        e.most_abundant_mass.is_finite() && e.average_mass.is_finite(),
        "{e:?}"
    );
    assert!(e.intensity.is_finite() && e.intensity >= 0.0, "{e:?}");
    assert!(
        (-1e-4..=1.0 + 1e-4).contains(&e.score),
        "score out of 0-1: {e:?}"
    );
    assert!(e.n_peaks >= 1, "{e:?}");
    let z = e.charge.unsigned_abs();
    assert!(
        (low..=high).contains(&z),
        "charge {} outside {low}-{high}",
        e.charge
    );
    if let Some(negative) = negative {
        assert_eq!(e.charge < 0, negative, "charge sign vs polarity: {e:?}");
    }
}

fn random_spectrum(bytes: &mut Bytes, index: u32) -> ProcessedSpectrum {
    let signal = |b: u8| match b % 3 {
        0 => None,
        1 => Some(SignalKind::Profile),
        _ => Some(SignalKind::Centroid),
    };
    let flags = bytes.u8();
    let precursor = (flags & 1 == 1).then(|| Precursor {
        mz: bytes.f64(),
        charge: (flags & 2 == 2).then(|| bytes.u32() as i32),
        intensity: (flags & 4 == 4).then(|| bytes.f32()),
        isolation_target_mz: (flags & 8 == 8).then(|| bytes.f64()),
        isolation_lower_mz: (flags & 8 == 8).then(|| bytes.f64()),
        isolation_upper_mz: (flags & 16 == 16).then(|| bytes.f64()),
        spectrum_ref: (flags & 4 == 4).then(|| bytes.string()),
    });
    let mut meta = SpectrumMeta {
        index,
        native_id: bytes.string(),
        ms_level: bytes.u8(),
        // Unknown (null in `spectra.parquet`) when the flag says so.
        rt_seconds: (flags & 64 == 0).then(|| bytes.f64()),
        polarity: match bytes.u8() % 3 {
            0 => Polarity::Positive,
            1 => Polarity::Negative,
            _ => Polarity::Unknown,
        },
        precursor,
        scan_window: (flags & 32 == 32).then(|| (bytes.f64(), bytes.f64())),
        declared_signal: signal(bytes.u8()),
        ion_mobility_array: None,
        scan_ion_mobility: None,
    };
    let n_peaks = usize::from(bytes.u8() % 32);
    let mut peaks = PeakList::default();
    for _ in 0..n_peaks {
        peaks.push(bytes.f64(), bytes.f32(), bytes.f32(), bytes.f32());
    }
    // Ion mobility: the array's kind and unit, the scan's value, each peak's value.
    let mobility = bytes.u8();
    if mobility & 1 == 1 {
        let kinds = IonMobilityKind::ALL;
        let kind = kinds[usize::from(bytes.u8()) % kinds.len()];
        meta.ion_mobility_array = Some(IonMobilityArrayInfo {
            kind,
            unit: (mobility & 2 == 2).then(|| bytes.string()),
        });
        peaks.ion_mobility = Some((0..n_peaks).map(|_| bytes.f64()).collect());
    }
    if mobility & 4 == 4 {
        let kinds = ScanMobilityKind::ALL;
        meta.scan_ion_mobility = Some(ScanMobility {
            value: bytes.f64(),
            kind: kinds[usize::from(bytes.u8()) % kinds.len()],
        });
    }
    let deconvolution = (flags & 64 == 64).then(|| {
        let envelopes: Vec<Envelope> = (0..bytes.u8() % 4)
            .map(|_| Envelope {
                neutral_mass: bytes.f64(),
                mz: bytes.f64(),
                charge: bytes.u32() as i32,
                intensity: bytes.f32(),
                score: bytes.f32(),
                n_peaks: bytes.u32(),
                most_abundant_mass: bytes.f64(),
                average_mass: bytes.f64(),
            })
            .collect();
        let peak_envelope = (0..n_peaks)
            .map(|_| {
                let k = bytes.u8();
                (!envelopes.is_empty() && k & 1 == 1)
                    .then(|| u32::from(k >> 1) % envelopes.len() as u32)
            })
            .collect();
        Deconvolution {
            envelopes,
            peak_envelope,
        }
    });
    ProcessedSpectrum {
        meta,
        signal: signal(bytes.u8()).unwrap_or(SignalKind::Centroid),
        detected_signal: signal(bytes.u8()),
        n_points: bytes.u32(),
        tic: bytes.f64(),
        peaks,
        deconvolution,
        precursor_check: (flags & 128 == 128).then(|| PrecursorCheck {
            charge: bytes.u32() as i32,
            mono_mz: bytes.f64(),
        }),
        first_envelope_id: u32::from(bytes.u16()),
        source: None,
    }
}

/// Target `parquet_roundtrip`: random processed spectra (any bit patterns, NaN included)
/// written with [`mzforge::output::TableWriters`] in several row batches, read back with the
/// `parquet` crate, and compared column by column (bitwise) with the batches the writer was
/// given; the parameters stored in the file metadata must come back unchanged.
pub fn parquet_roundtrip(data: &[u8]) {
    use mzforge::output::{features_batch, peaks_batch, spectra_batch, TableWriters};
    let mut bytes = Bytes::new(data);
    let params_json = bytes.string();
    let per_write = 1 + usize::from(bytes.u8() % 4);
    let mut spectra = Vec::new();
    while !bytes.is_empty() && spectra.len() < 64 {
        let index = spectra.len() as u32;
        spectra.push(random_spectrum(&mut bytes, index));
    }
    let mut writers = TableWriters::with_features(Vec::new(), Vec::new(), Vec::new(), &params_json)
        .expect("writers start");
    for chunk in spectra.chunks(per_write) {
        writers.write(chunk).expect("a batch is written");
    }
    let (spectra_file, peaks_file, features_file) = writers.finish_all().expect("files finish");
    let features_file = features_file.expect("features table was started");
    let expected = [
        spectra_batch(&spectra).expect("spectra batch"),
        peaks_batch(&spectra).expect("peaks batch"),
        features_batch(&spectra).expect("features batch"),
    ];
    for (file, expected) in [spectra_file, peaks_file, features_file]
        .into_iter()
        .zip(expected)
    {
        compare_parquet(file, &expected, &params_json);
    }
}

fn compare_parquet(file: Vec<u8>, expected: &arrow::record_batch::RecordBatch, params: &str) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file)).expect("footer reads");
    let stored_params = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "mzforge.params"))
        .and_then(|k| k.value.clone());
    assert_eq!(stored_params.as_deref(), Some(params), "params metadata");
    let reader = builder.build().expect("reader builds");
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("batches read");
    let schema = expected.schema();
    let read = arrow::compute::concat_batches(&schema, &batches).expect("same schema");
    assert_eq!(read.num_rows(), expected.num_rows());
    assert_eq!(read.num_columns(), expected.num_columns());
    for (i, field) in schema.fields().iter().enumerate() {
        assert_eq!(
            read.column(i).to_data(),
            expected.column(i).to_data(),
            "column {} differs after the round trip",
            field.name()
        );
    }
}

/// Target `events`: bytes as the JSON documents the Lambda steps and the API parse (analysis
/// requests, manifests, inputs, routing, pipeline parameters in JSON and TOML), the step name
/// and the analysis id. Parsing may fail, never panic; whatever parses and validates must
/// survive serialise → parse unchanged.
pub fn events(data: &[u8]) {
    use mzforge_batch_runner::analysis::{
        check_analysis_id, AnalysisInput, AnalysisManifest, Request, Routing,
    };
    use mzforge_batch_runner::lambda::Step;
    if let Ok(request) = serde_json::from_slice::<Request>(data) {
        if let Ok(params) = request.resolved_params() {
            let json = serde_json::to_vec(&params).expect("params serialise");
            let again: PipelineParams = serde_json::from_slice(&json).expect("params re-parse");
            assert_eq!(again, params);
        }
    }
    if let Ok(input) = serde_json::from_slice::<AnalysisInput>(data) {
        let json = serde_json::to_vec(&input).expect("input serialises");
        let again: AnalysisInput = serde_json::from_slice(&json).expect("input re-parses");
        assert_eq!(again, input);
    }
    if let Ok(manifest) = serde_json::from_slice::<AnalysisManifest>(data) {
        let value = serde_json::to_value(&manifest).expect("manifest serialises");
        let again: AnalysisManifest =
            serde_json::from_value(value.clone()).expect("manifest re-parses");
        assert_eq!(serde_json::to_value(&again).expect("serialises"), value);
    }
    if let Ok(routing) = serde_json::from_slice::<Routing>(data) {
        let json = serde_json::to_vec(&routing).expect("routing serialises");
        let again: Routing = serde_json::from_slice(&json).expect("routing re-parses");
        assert_eq!(again, routing);
    }
    if let Ok(params) = serde_json::from_slice::<PipelineParams>(data) {
        if params.validate().is_ok() {
            let json = serde_json::to_vec(&params).expect("params serialise");
            let again: PipelineParams = serde_json::from_slice(&json).expect("params re-parse");
            assert_eq!(again, params);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = toml::from_str::<PipelineParams>(text) {
        if params.validate().is_ok() {
            let toml_text = toml::to_string(&params).expect("params serialise as TOML");
            let again: PipelineParams = toml::from_str(&toml_text).expect("TOML re-parses");
            assert_eq!(again, params);
        }
    }
    if let Ok(step) = Step::parse(text) {
        assert_eq!(step.name(), text);
    }
    if check_analysis_id(text).is_ok() {
        assert!(!text.is_empty() && text.len() <= 80 && !text.contains('/'));
    }
}
