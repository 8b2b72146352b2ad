//! The cloud edge's error type and the failure classes that exit codes and Step Functions error
//! names are derived from.

/// Whether a failure is worth retrying, and whose fault it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// Network, throttling, a 5xx, an input that changed while it was read, or a stop signal
    /// (Spot interruption): running again may succeed.
    Transient,
    /// The input is not readable mzML/MGF, or is broken.
    BadInput,
    /// An input object or file does not exist.
    MissingInput,
    /// The request, the manifest, the parameters or the environment are wrong, or access is
    /// denied: nothing will change by retrying.
    Config,
    /// The work cannot finish within the time this invocation has left.
    TooLarge,
    /// A bug.
    Internal,
}

impl FailureKind {
    /// Process exit code (sysexits.h): 75 (EX_TEMPFAIL) is the only retryable one.
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Transient => 75,
            FailureKind::BadInput => 65,
            FailureKind::MissingInput => 66,
            FailureKind::Config | FailureKind::TooLarge => 78,
            FailureKind::Internal => 70,
        }
    }

    /// Step Functions error name (`Error` of a failed task). `Mzforge.Transient` is the one the
    /// state machine retries.
    pub fn error_name(self) -> &'static str {
        match self {
            FailureKind::Transient => "Mzforge.Transient",
            FailureKind::BadInput => "Mzforge.BadInput",
            FailureKind::MissingInput => "Mzforge.MissingInput",
            FailureKind::Config => "Mzforge.InvalidRequest",
            FailureKind::TooLarge => "Mzforge.TooLargeForLambda",
            FailureKind::Internal => "Mzforge.Internal",
        }
    }

    /// Whether running again may succeed.
    pub fn is_retryable(self) -> bool {
        self == FailureKind::Transient
    }
}

/// Everything that can go wrong at the cloud edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An object-store operation failed.
    #[error("{operation} {url}")]
    Storage {
        /// What was being done (`read`, `write`, `list`...).
        operation: &'static str,
        /// The object or prefix.
        url: String,
        /// The store's reason.
        #[source]
        source: object_store::Error,
    },
    /// S3 cannot be set up from the environment (credentials, region, endpoint).
    #[error("configure S3 for {url}")]
    StorageConfig {
        /// The bucket.
        url: String,
        /// The store's reason.
        #[source]
        source: object_store::Error,
    },
    /// The input object or file does not exist.
    #[error("{url}: no such object or file")]
    Missing {
        /// What was asked for.
        url: String,
    },
    /// A local input path that is neither a file nor a directory (the Python binding's words).
    #[error("cannot read {path}: no such file")]
    NoSuchFile {
        /// The path.
        path: String,
    },
    /// An input pattern, directory or prefix names no input.
    #[error("{pattern}: {what}")]
    NothingMatches {
        /// The glob pattern, directory or prefix.
        pattern: String,
        /// What was not found (`no file matches`...).
        what: &'static str,
    },
    /// The download of an input failed mid-stream (after retries).
    #[error("download of {url} failed: {message}")]
    Download {
        /// The object.
        url: String,
        /// What happened.
        message: String,
    },
    /// The engine refused the input or failed.
    #[error(transparent)]
    Engine(#[from] mzforge::Error),
    /// A local file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// A request, manifest or event is invalid.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was invalid (`request`, `event`, `manifest`, an environment variable...).
        what: String,
        /// Why.
        message: String,
    },
    /// Stopped by SIGTERM/SIGINT (a Spot interruption): nothing was made visible.
    #[error("interrupted by a stop signal before the result was complete; nothing was published")]
    Interrupted,
    /// The work cannot finish in the time left.
    #[error("{what} cannot finish in the {seconds_left:.0} s this invocation has left ({reason})")]
    TimeBudget {
        /// The input.
        what: String,
        /// Seconds left when checked.
        seconds_left: f64,
        /// The estimate that failed.
        reason: String,
    },
    /// An analysis is not complete: results are missing.
    #[error("analysis {analysis_id} is incomplete: no result for {missing:?}")]
    Incomplete {
        /// The analysis.
        analysis_id: String,
        /// Inputs without a published result.
        missing: Vec<String>,
    },
    /// Every input of an analysis failed on its own (each recorded in its `failure.json`).
    #[error("no input could be analysed ({count} failed), the first: {first}")]
    NoInputUsable {
        /// How many inputs failed.
        count: usize,
        /// The first failed input and its cause.
        first: String,
    },
    /// A bug or an unexpected state.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl Error {
    /// The failure class.
    pub fn kind(&self) -> FailureKind {
        match self {
            Error::Storage { source, .. } => storage_kind(source),
            Error::StorageConfig { .. } => FailureKind::Config,
            Error::Missing { .. } | Error::NoSuchFile { .. } | Error::NothingMatches { .. } => {
                FailureKind::MissingInput
            }
            Error::Download { .. } | Error::Interrupted => FailureKind::Transient,
            Error::Engine(e) => match e {
                mzforge::Error::InvalidParameter { .. } => FailureKind::Config,
                mzforge::Error::Write { .. } => FailureKind::Transient,
                mzforge::Error::Parquet(_) | mzforge::Error::Arrow(_) => FailureKind::Internal,
                _ => FailureKind::BadInput,
            },
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => FailureKind::MissingInput,
                std::io::ErrorKind::PermissionDenied => FailureKind::Config,
                _ => FailureKind::Transient,
            },
            Error::Invalid { .. } => FailureKind::Config,
            Error::TimeBudget { .. } => FailureKind::TooLarge,
            Error::Incomplete { .. } => FailureKind::Config,
            Error::NoInputUsable { .. } => FailureKind::BadInput,
            Error::Internal(_) => FailureKind::Internal,
        }
    }

    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, message: impl std::fmt::Display) -> Error {
        Error::Invalid {
            what: what.into(),
            message: message.to_string(),
        }
    }

    /// The whole chain on one line: `outer: inner: root cause`.
    pub fn chain(&self) -> String {
        let mut parts = vec![self.to_string()];
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            let text = e.to_string();
            if !parts.last().is_some_and(|p| p.contains(&text)) {
                parts.push(text);
            }
            source = e.source();
        }
        parts.join(": ")
    }
}

fn storage_kind(error: &object_store::Error) -> FailureKind {
    use object_store::Error as E;
    match error {
        E::NotFound { .. } => FailureKind::MissingInput,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => FailureKind::Config,
        E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => FailureKind::Config,
        // The object changed while it was read: read it again.
        E::Precondition { .. } | E::NotModified { .. } => FailureKind::Transient,
        // Lists and credential look-ups report the answer's status only in their text (the
        // type that holds it is private to object_store): a bucket that does not exist, or
        // access refused, is not worth a retry.
        E::Generic { .. } => match http_status(error) {
            Some(404) => FailureKind::MissingInput,
            Some(401 | 403) => FailureKind::Config,
            _ => FailureKind::Transient,
        },
        // Everything else reached us after object_store's own retries: network errors,
        // throttling, 5xx. Retrying later is the right call.
        _ => FailureKind::Transient,
    }
}

/// The HTTP status an object_store error reports in its text
/// (`... Server returned non-2xx status code: 404 Not Found: ...`), if any.
fn http_status(error: &object_store::Error) -> Option<u16> {
    let text = error.to_string();
    let (_, rest) = text.split_once("non-2xx status code: ")?;
    rest.get(..3)?.parse().ok()
}

/// Shorthand for results at the cloud edge.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retryable() {
        let missing = Error::Missing {
            url: "s3://b/k".into(),
        };
        assert_eq!(missing.kind().exit_code(), 66);
        assert!(!missing.kind().is_retryable());
        assert_eq!(Error::Interrupted.kind().exit_code(), 75);
        assert_eq!(Error::Interrupted.kind().error_name(), "Mzforge.Transient");
        let bad = Error::Engine(mzforge::Error::UnknownFormat {
            path: "x".into(),
            reason: "text".into(),
        });
        assert_eq!(bad.kind(), FailureKind::BadInput);
        assert_eq!(bad.kind().exit_code(), 65);
    }

    /// object_store reports a list's answer only as text: a bucket that does not exist or
    /// access refused must not be retried, a 5xx must.
    #[test]
    fn list_answers_are_classified_by_their_status() {
        let listed = |status: &str| Error::Storage {
            operation: "list",
            url: "s3://b/p".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "Error performing GET http://s3/b?list-type=2 in 5ms - Server returned \
                     non-2xx status code: {status}: <Error><Code>X</Code></Error>"
                )
                .into(),
            },
        };
        assert_eq!(listed("404 Not Found").kind(), FailureKind::MissingInput);
        assert_eq!(listed("403 Forbidden").kind(), FailureKind::Config);
        assert_eq!(
            listed("503 Service Unavailable").kind(),
            FailureKind::Transient
        );
        let unconfigured = Error::StorageConfig {
            url: "s3://b".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: "Missing SecretAccessKey".into(),
            },
        };
        assert_eq!(unconfigured.kind().exit_code(), 78);
    }
}
