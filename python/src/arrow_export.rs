//! Tables leave Rust through the Arrow C data interface (the PyCapsule protocol,
//! `__arrow_c_stream__`): pyarrow, polars and DuckDB import the buffers without copying them,
//! and they are freed when the last Python reference goes.

use std::ffi::CStr;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchIterator};
use arrow::datatypes::SchemaRef;
use arrow::ffi::FFI_ArrowSchema;
use arrow::ffi_stream::FFI_ArrowArrayStream;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::Kind;

const STREAM: &CStr = c"arrow_array_stream";
const SCHEMA: &CStr = c"arrow_schema";

/// Record batches with their schema, exported on demand through the Arrow PyCapsule
/// interface. `pyarrow.table(t)` wraps them without a copy.
#[pyclass(frozen, module = "mzforge._mzforge")]
#[derive(Debug)]
pub struct ArrowTable {
    schema: SchemaRef,
    batches: Arc<Vec<RecordBatch>>,
}

impl ArrowTable {
    /// A table over `batches`, which must all have `schema`.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> ArrowTable {
        ArrowTable {
            schema,
            batches: Arc::new(batches),
        }
    }
}

#[pymethods]
impl ArrowTable {
    /// Number of rows.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The batches as an `ArrowArrayStream` capsule. A requested schema is ignored: the
    /// columns are exported with their own types (allowed by the protocol).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches: Vec<_> = self.batches.iter().cloned().map(Ok).collect();
        let reader = RecordBatchIterator::new(batches, self.schema.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        // The consumer moves the stream out (leaving `release` null); whatever is left is
        // released when the capsule is collected, by `FFI_ArrowArrayStream`'s `Drop`.
        PyCapsule::new_with_value(py, stream, STREAM)
    }

    /// The schema as an `ArrowSchema` capsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.schema.as_ref())
            .map_err(|e| Kind::Other.err(e.to_string()))?;
        PyCapsule::new_with_value(py, schema, SCHEMA)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ArrowTable {} rows, {} columns>",
            self.num_rows(),
            self.schema.fields().len()
        )
    }
}
