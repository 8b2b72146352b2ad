//! Integration tests of the engine on the real files in `../shared/data` and on the fixtures.
//!
//! Tests that need `../shared/data` fail when it is missing and `CI` is set; elsewhere they
//! say so and return.

mod common;

mod accuracy;
mod bad_input;
mod deconvolution;
mod fixtures;
mod ion_mobility;
mod limits;
mod mzml_output;
mod reading;
mod result_dir;
