//! mzMLb (HDF5-wrapped mzML), behind the `mzmlb` cargo feature (it links the system HDF5
//! library, so the static musl and cross-compiled builds leave it out).
//!
//! An mzMLb file holds the mzML document, without its binary data, as a byte dataset named
//! `mzML`; each `binaryDataArray` names the HDF5 dataset, offset and length that hold its values
//! (cvParams MS:1002841, MS:1002842, MS:1002843), stored as typed numbers that HDF5 compresses
//! itself. mzforge streams the `mzML` dataset through its mzML parser (so the header, the
//! metadata and every check are the mzML ones) and, as each spectrum is read, replaces its
//! external arrays by the decoded values read from their datasets. `mzdata`'s own mzMLb reader
//! is not used: it refuses files without a `version` attribute, which early writers omitted.

use std::io::Read;
use std::path::Path;

use mzdata::params::ParamDescribed;
use mzdata::spectrum::bindata::{BinaryCompressionType, BinaryDataArrayType};
use mzdata::spectrum::MultiLayerSpectrum;

use super::decode::{too_many_points, DecodeError};
use super::ReadLimits;
use crate::error::{Error, Result};

const EXTERNAL_DATASET: u32 = 1002841;
const EXTERNAL_OFFSET: u32 = 1002842;
const EXTERNAL_LENGTH: u32 = 1002843;

/// The open HDF5 file, to resolve the external arrays of the spectra read from it.
pub(crate) struct ExternalArrays {
    file: hdf5::File,
}

impl std::fmt::Debug for ExternalArrays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalArrays").finish_non_exhaustive()
    }
}

/// Opens an mzMLb file: the handle for its arrays and a stream of its mzML document.
pub(crate) fn open(path: &Path) -> Result<(ExternalArrays, Box<dyn Read + Send>)> {
    let malformed = |message: String| Error::Malformed {
        path: path.to_owned(),
        location: "in the HDF5 container".into(),
        message,
    };
    // The library's own error stack goes to stderr unless silenced; errors are reported here.
    hdf5::silence_errors(true);
    let file = hdf5::File::open(path).map_err(|e| malformed(format!("not readable HDF5: {e}")))?;
    let document = file
        .dataset("mzML")
        .map_err(|e| malformed(format!("no `mzML` dataset, so not mzMLb: {e}")))?;
    let signed = match document.dtype().and_then(|t| t.to_descriptor()) {
        Ok(hdf5::types::TypeDescriptor::Unsigned(hdf5::types::IntSize::U1)) => false,
        Ok(hdf5::types::TypeDescriptor::Integer(hdf5::types::IntSize::U1)) => true,
        other => {
            return Err(malformed(format!(
                "the `mzML` dataset is not bytes: {other:?}"
            )))
        }
    };
    let length = document.size();
    let stream = DocumentStream {
        dataset: document,
        signed,
        at: 0,
        length,
    };
    Ok((ExternalArrays { file }, Box::new(stream)))
}

/// Reads the `mzML` byte dataset in slices.
struct DocumentStream {
    dataset: hdf5::Dataset,
    /// Stored as signed bytes (`H5T_NATIVE_CHAR`): read as such, so HDF5 does not clip
    /// non-ASCII bytes while converting.
    signed: bool,
    at: usize,
    length: usize,
}

impl Read for DocumentStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.length.min(self.at + buf.len());
        if end <= self.at {
            return Ok(0);
        }
        let slice = self.at..end;
        let bytes: Vec<u8> = if self.signed {
            self.dataset
                .read_slice_1d::<i8, _>(slice)
                .map(|values| values.iter().map(|&b| b as u8).collect())
        } else {
            self.dataset
                .read_slice_1d::<u8, _>(slice)
                .map(|values| values.to_vec())
        }
        .map_err(std::io::Error::other)?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        self.at += bytes.len();
        Ok(bytes.len())
    }
}

impl ExternalArrays {
    /// Replaces every external array of `spectrum` by its values, read from the dataset it
    /// names. An error says which reference is broken (or which limit it passes).
    pub(crate) fn resolve(
        &self,
        spectrum: &mut MultiLayerSpectrum,
        limits: &ReadLimits,
    ) -> std::result::Result<(), DecodeError> {
        let Some(arrays) = spectrum.arrays.as_mut() else {
            return Ok(());
        };
        hdf5::silence_errors(true); // per thread, and this may be the reader's own thread
        for (kind, array) in arrays.iter_mut() {
            let param = |accession: u32| {
                array
                    .params()
                    .iter()
                    .find(|p| p.is_controlled() && p.accession == Some(accession))
                    .map(|p| p.value.to_string())
            };
            let Some(name) = param(EXTERNAL_DATASET) else {
                continue;
            };
            let number = |accession: u32, what: &str| {
                param(accession)
                    .ok_or_else(|| format!("the {kind} array names dataset {name} but no {what}"))?
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| format!("the {kind} array has a bad {what}: {e}"))
            };
            let offset = number(EXTERNAL_OFFSET, "external offset").map_err(DecodeError::Broken)?;
            let length =
                number(EXTERNAL_LENGTH, "external array length").map_err(DecodeError::Broken)?;
            too_many_points(kind, length, limits)?;
            let broken = DecodeError::Broken;
            let dataset = self
                .file
                .dataset(&name)
                .map_err(|e| broken(format!("the {kind} array's dataset {name}: {e}")))?;
            let end = offset.saturating_add(length);
            if end > dataset.size() as u64 {
                return Err(broken(format!(
                    "the {kind} array reads {name}[{offset}..{end}] but the dataset holds {}",
                    dataset.size()
                )));
            }
            let range = offset as usize..end as usize;
            let wide = matches!(
                dataset.dtype().and_then(|t| t.to_descriptor()),
                Ok(hdf5::types::TypeDescriptor::Float(
                    hdf5::types::FloatSize::U8
                )) | Ok(hdf5::types::TypeDescriptor::Integer(_))
                    | Ok(hdf5::types::TypeDescriptor::Unsigned(_))
            );
            let read_failed =
                |e: hdf5::Error| broken(format!("reading {name}[{offset}..{end}]: {e}"));
            let (bytes, dtype): (Vec<u8>, _) = if wide {
                let values = dataset
                    .read_slice_1d::<f64, _>(range)
                    .map_err(read_failed)?;
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (bytes, BinaryDataArrayType::Float64)
            } else {
                let values = dataset
                    .read_slice_1d::<f32, _>(range)
                    .map_err(read_failed)?;
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (bytes, BinaryDataArrayType::Float32)
            };
            array.data = bytes;
            array.dtype = dtype;
            array.compression = BinaryCompressionType::Decoded;
        }
        Ok(())
    }
}
