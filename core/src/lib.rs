//! # mzforge
//!
//! A mass-spectrometry processing engine: it reads mzML and MGF (plain or gzip-compressed,
//! zlib/Numpress arrays) and, with the `mzmlb` feature, mzMLb; it tells profile from centroid data by looking at the data, centroids
//! profile spectra with SIMD peak detection, and writes the results as Arrow/Parquet tables.
//!
//! ```
//! use mzforge::{centroid, CentroidParams};
//!
//! // A Gaussian peak sampled every 0.001 m/z around m/z 500.
//! let mz: Vec<f64> = (0..200).map(|i| 499.9 + i as f64 * 0.001).collect();
//! let intensity: Vec<f32> = mz
//!     .iter()
//!     .map(|&x| (1e5 * (-(x - 500.0f64).powi(2) / (2.0 * 0.003f64.powi(2))).exp()) as f32)
//!     .collect();
//! let peaks = centroid(&mz, &intensity, &CentroidParams::default());
//! assert_eq!(peaks.len(), 1);
//! assert!((peaks.mz[0] - 500.0).abs() < 1e-5);
//! ```
//!
//! Whole files go through [`Pipeline`], which streams: spectra are read, decoded and centroided
//! in parallel while reading continues, with bounded memory, and come out in input order.

pub mod centroid;
pub mod deconvolve;
pub mod digest;
pub mod error;
pub mod io;
pub mod isotopes;
pub mod mzml_output;
pub mod noise;
pub mod numpress;
pub mod output;
pub mod pipeline;
pub mod signal;
pub mod simd;
pub mod spectrum;
mod spline;
pub mod wording;

pub use centroid::{centroid, CentroidParams, Centroider};
pub use digest::InputDigest;
pub use error::{Error, Result};
pub use io::{
    FileInfo, InputFormat, MgfNotes, RawSpectrum, ReadLimits, ReaderNotes, SpectrumReader,
    UnparsedSpectrum,
};
pub use mzml_output::{CentroidMzMLWriter, MzmlPeaks};
pub use noise::NoiseParams;
pub use pipeline::{Pipeline, PipelineParams, ProcessedSpectrum, RunSummary};
pub use spectrum::{
    IonMobilityArrayInfo, IonMobilityKind, PeakList, Polarity, Precursor, ScanMobility,
    ScanMobilityKind, SignalKind, Spectrum, SpectrumMeta,
};

/// The engine's version, as recorded in outputs.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
