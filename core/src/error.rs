//! The engine's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the engine. Messages are lowercase and name the file and,
/// where known, the spectrum.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a format mzforge reads.
    #[error("{path}: not an mzML or MGF file ({reason})")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What the first bytes looked like.
        reason: String,
    },
    /// The file's structure is broken: truncated or invalid XML, a corrupt compressed stream.
    #[error("{path}: malformed input {location}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where: after which spectrum, at or before which byte.
        location: String,
        /// What the parser said.
        message: String,
    },
    /// One spectrum cannot be used (corrupt arrays, arrays of different lengths...).
    #[error("{path}: spectrum {index} ({native_id}): {message}")]
    BadSpectrum {
        /// The file.
        path: PathBuf,
        /// Position of the spectrum in the file, from 0.
        index: u32,
        /// The spectrum's native id.
        native_id: String,
        /// What is wrong with it.
        message: String,
    },
    /// Every spectrum a run was to process was bad and skipped (the `skip` policy): the file
    /// gives nothing, so it fails rather than giving an empty result that looks like success.
    /// The message ends with the first spectrum's error, without the file's path again.
    #[error("{path}: no spectrum could be used ({skipped} skipped as bad), the first: {}", first.without_path())]
    NoUsableSpectrum {
        /// The file.
        path: PathBuf,
        /// How many spectra were skipped.
        skipped: u64,
        /// The first skipped spectrum's error.
        first: Box<Error>,
    },
    /// A spectrum without an m/z array (UV/PDA traces and other non-MS data in an mzML file).
    #[error("{path}: spectrum {index} ({native_id}) has no m/z array: not a mass spectrum")]
    NotMassSpectrum {
        /// The file.
        path: PathBuf,
        /// Position of the spectrum in the file, from 0.
        index: u32,
        /// The spectrum's native id.
        native_id: String,
    },
    /// The input goes past one of the reading limits ([`crate::io::ReadLimits`]): a hostile or
    /// broken file, or a real one larger than the limit, which the named setting raises.
    #[error(
        "{path}: {location}: {what}, over the limit of {limit} (setting `{setting}` raises it; \
         `{flag}` on the command line)",
        flag = limit_flag(setting)
    )]
    LimitExceeded {
        /// The file.
        path: PathBuf,
        /// Where: which spectrum (position and native id), or before which byte.
        location: String,
        /// What was too large.
        what: String,
        /// The limit.
        limit: u64,
        /// The setting that raises it, as in the config file (`limits.<name>`); the command
        /// line's flag has the same name (`--max-...`).
        setting: &'static str,
    },
    /// A parameter is out of range or inconsistent.
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// The parameter's path in a config file (and `run.json`'s `params`), e.g.
        /// `centroid.noise.window_mz`; the command line and the wheel name their own flag or
        /// keyword instead when one set it.
        name: &'static str,
        /// Why it was rejected.
        message: String,
    },
    /// A result could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The output file or directory.
        path: PathBuf,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// Arrow or Parquet refused a batch (a bug if it happens).
    #[error("cannot encode results as parquet")]
    Parquet(#[source] parquet::errors::ParquetError),
    /// Arrow refused a batch (a bug if it happens).
    #[error("cannot build arrow batch")]
    Arrow(#[source] arrow::error::ArrowError),
}

impl Error {
    /// The message, without the file's path where it begins with it (a spectrum's error
    /// quoted inside another error about the same file).
    fn without_path(&self) -> String {
        match self {
            Error::BadSpectrum {
                index,
                native_id,
                message,
                ..
            } => format!("spectrum {index} ({native_id}): {message}"),
            other => other.to_string(),
        }
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Parquet(e)
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Arrow(e)
    }
}

/// Shorthand for results of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The command line's flag for a reading limit's setting: `limits.max_spectra` is
/// `--max-spectra`.
fn limit_flag(setting: &str) -> String {
    format!(
        "--{}",
        setting
            .strip_prefix("limits.")
            .unwrap_or(setting)
            .replace('_', "-")
    )
}
