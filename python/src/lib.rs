//! `mzforge._mzforge`: the native half of the `mzforge` Python package.
//!
//! The public API is the pure-Python package `mzforge`, which re-exports what is here and
//! owns `__all__`; nothing here is meant to be imported directly. Long calls release the GIL;
//! whole-file runs build their own worker pool per call and drop it before returning, so no
//! thread outlives a call and a `fork()` afterwards finds no pool to deadlock on.

use pyo3::prelude::*;

mod arrow_export;
mod centroid;
mod deconvolve;
mod errors;
mod index;
mod params;
mod process;
mod reader;

/// The native module.
#[pymodule]
fn _mzforge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Parser failures inside third-party readers surface as panics that the engine catches
    // and turns into errors naming the file; keep the default hook from printing them (as
    // the command line does). Set MZFORGE_BACKTRACE=1 to see them. The hook belongs to this
    // extension's copy of the Rust runtime only.
    if std::env::var_os("MZFORGE_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    m.add("__version__", mzforge::VERSION)?;
    m.add_function(wrap_pyfunction!(params::default_params, m)?)?;
    m.add_function(wrap_pyfunction!(params::make_params, m)?)?;
    m.add_class::<params::Params>()?;
    m.add_function(wrap_pyfunction!(centroid::centroid, m)?)?;
    m.add_function(wrap_pyfunction!(deconvolve::deconvolve, m)?)?;
    m.add_function(wrap_pyfunction!(process::process, m)?)?;
    m.add_function(wrap_pyfunction!(process::simd_backend, m)?)?;
    m.add_function(wrap_pyfunction!(process::result_dir_names, m)?)?;
    m.add_class::<reader::Reader>()?;
    m.add_class::<reader::Spectrum>()?;
    m.add_class::<reader::Precursor>()?;
    m.add_function(wrap_pyfunction!(reader::_rebuild_spectrum, m)?)?;
    m.add_function(wrap_pyfunction!(reader::_rebuild_precursor, m)?)?;
    m.add_class::<reader::SpectrumIterator>()?;
    m.add_class::<process::RunResult>()?;
    m.add_class::<arrow_export::ArrowTable>()?;
    Ok(())
}
