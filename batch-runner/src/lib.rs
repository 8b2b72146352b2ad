//! The engine's cloud edge, shared by the `mzforge` command line and the `mzforge-lambda` binary.
//!
//! - [`storage`]: local paths and `s3://` URLs behind one location type; inputs stream from S3
//!   while they are parsed, outputs go up as multipart uploads.
//! - [`remote`]: `mzforge run` when an input or the output is in object storage: one result
//!   prefix per input, made visible by a manifest object written last; re-runs skip.
//! - [`batch`]: AWS Batch (array) jobs: an analysis manifest and `AWS_BATCH_JOB_ARRAY_INDEX`.
//! - [`lambda`]: the Step Functions steps (`preprocess`, `analyze`, `postprocess`,
//!   `record-failure`) with typed errors.
//! - [`fan_out`]: one object-store call per input, many at once, answers in input order.
//! - [`error`]: one error type whose [`error::FailureKind`] says retryable or permanent; exit
//!   codes and Step Functions error names derive from it.
//!
//! The engine (`mzforge`, in `core/`) knows nothing of any of this: it reads from any
//! `Read` and writes Parquet to any `Write`.

pub mod analysis;
pub mod batch;
pub mod error;
pub mod fan_out;
pub mod lambda;
pub mod remote;
pub mod signals;
pub mod storage;

pub use error::{Error, FailureKind, Result};

/// The allocator of the static (musl) binaries, the Batch image's: see `Cargo.toml`.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
