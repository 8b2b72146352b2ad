//! The one place where engine errors become Python exceptions.
//!
//! The classes live in `mzforge._errors` (pure Python, so they can inherit from both
//! `MzforgeError` and `ValueError`/`OSError`); messages are the command line's: the error and
//! its causes joined with `": "`.

use mzforge::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Exception classes of `mzforge._errors`.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `InvalidInputError(MzforgeError, ValueError)`: not readable as mzML/MGF.
    InvalidInput,
    /// `InputReadError(InvalidInputError, OSError)`: cannot be opened or read at all.
    InputRead,
    /// `InvalidParameterError(MzforgeError, ValueError)`.
    InvalidParameter,
    /// `OutputError(MzforgeError, OSError)`: results cannot be written.
    Output,
    /// `MzforgeError`: anything else (a bug if it happens).
    Other,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::InvalidInput => "InvalidInputError",
            Kind::InputRead => "InputReadError",
            Kind::InvalidParameter => "InvalidParameterError",
            Kind::Output => "OutputError",
            Kind::Other => "MzforgeError",
        }
    }

    /// The exception with `message`.
    pub fn err(self, message: impl Into<String>) -> PyErr {
        let message = message.into();
        Python::attach(|py| match class(py, self) {
            Ok(class) => PyErr::from_type(class, (message,)),
            Err(e) => e,
        })
    }
}

fn class(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || {
        PyModule::import(py, "mzforge._errors").map(Bound::unbind)
    })?;
    Ok(module.bind(py).getattr(kind.class_name())?.cast_into()?)
}

/// Which class an engine error maps to.
pub fn kind_of(error: &Error) -> Kind {
    match error {
        Error::Io { .. } => Kind::InputRead,
        Error::UnknownFormat { .. }
        | Error::Malformed { .. }
        | Error::BadSpectrum { .. }
        | Error::NoUsableSpectrum { .. }
        | Error::NotMassSpectrum { .. } => Kind::InvalidInput,
        Error::InvalidParameter { .. } => Kind::InvalidParameter,
        Error::Write { .. } => Kind::Output,
        _ => Kind::Other,
    }
}

/// The error and its causes on one line, as the command line prints it after `error: `.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An engine error as a Python exception.
pub fn to_py(error: Error) -> PyErr {
    kind_of(&error).err(chain(&error))
}

/// `?` on engine results inside binding code.
pub trait IntoPy<T> {
    /// Maps the engine error to its Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for mzforge::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
