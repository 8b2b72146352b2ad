//! Decoding a spectrum's arrays: base64, zlib (inflated with a bound), MS-Numpress, byte
//! order and width, checked against the reading limits before anything proportional to the
//! decoded size is allocated; then the repairs (m/z sorted, non-finite points dropped, an
//! unusable ion mobility array left out).

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use mzdata::prelude::*;
use mzdata::spectrum::bindata::{BinaryCompressionType, BinaryDataArrayType, DataArray};
use mzdata::spectrum::{ArrayType, MultiLayerSpectrum, RefPeakDataLevel};

use super::mzml_lean::{EncodedArray, LeanSpectrum};
use super::{panic_message, Inner, RawSpectrum, ReadLimits};
use crate::error::{Error, Result};
use crate::spectrum::{IonMobilityKind, Spectrum};

/// What decoding had to repair in a spectrum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repairs {
    /// m/z values were not ascending and were sorted.
    pub sorted: bool,
    /// Points with NaN or infinite m/z or intensity were dropped.
    pub dropped_non_finite: usize,
    /// The spectrum's ion mobility array could not be used (an encoding mzforge cannot
    /// decode, broken data, or another length than the m/z array) and was left out, with why:
    /// the m/z and intensity arrays are kept, without mobility.
    pub ion_mobility_dropped: Option<String>,
}

impl RawSpectrum {
    /// Decodes the arrays. Broken arrays give [`Error::BadSpectrum`] naming `path`; m/z out of
    /// order are sorted and non-finite points dropped (reported in [`Repairs`]).
    pub fn decode(&self, path: &Path) -> Result<(Spectrum, Repairs)> {
        let bad = |message: String| Error::BadSpectrum {
            path: path.to_owned(),
            index: self.index,
            native_id: self.native_id().to_owned(),
            message,
        };
        let decoded = match &self.unresolved {
            Some(problem) => Err(problem.clone()),
            None => catch_unwind(AssertUnwindSafe(|| match &self.inner {
                Inner::Mzdata(spectrum) => decode_arrays(spectrum, &self.limits),
                Inner::Lean(lean) => decode_lean(&lean.spectrum, &lean.xml.xml, &self.limits),
            }))
            .map_err(|panic| bad(format!("array decoder failure: {}", panic_message(panic))))?,
        };
        let (mut mz, mut intensity, mobility) = match decoded {
            Ok(arrays) => arrays,
            Err(DecodeError::NoMzArray) => {
                return Err(Error::NotMassSpectrum {
                    path: path.to_owned(),
                    index: self.index,
                    native_id: self.native_id().to_owned(),
                })
            }
            Err(DecodeError::Broken(message)) => return Err(bad(message)),
            Err(DecodeError::Limit {
                what,
                limit,
                setting,
            }) => {
                return Err(Error::LimitExceeded {
                    path: path.to_owned(),
                    location: format!("spectrum {} ({})", self.index, self.native_id()),
                    what,
                    limit,
                    setting,
                })
            }
        };
        if mz.len() != intensity.len() {
            return Err(bad(format!(
                "m/z array has {} values but intensity array has {}",
                mz.len(),
                intensity.len()
            )));
        }
        let mut repairs = Repairs::default();
        let mut mobility = match mobility {
            Some(Ok((values, kind))) if values.len() != mz.len() => {
                repairs.ion_mobility_dropped = Some(format!(
                    "the ion mobility array ({}) has {} values but the m/z array has {}",
                    kind.as_str(),
                    values.len(),
                    mz.len()
                ));
                None
            }
            Some(Ok(array)) => Some(array),
            Some(Err(reason)) => {
                repairs.ion_mobility_dropped = Some(reason);
                None
            }
            None => None,
        };
        let finite = |m: f64, i: f32| m.is_finite() && i.is_finite();
        if mz.iter().zip(&intensity).any(|(&m, &i)| !finite(m, i)) {
            let before = mz.len();
            let keep: Vec<bool> = mz
                .iter()
                .zip(&intensity)
                .map(|(&m, &i)| finite(m, i))
                .collect();
            mz = kept(&mz, &keep);
            intensity = kept(&intensity, &keep);
            if let Some((values, _)) = &mut mobility {
                *values = kept(values, &keep);
            }
            repairs.dropped_non_finite = before - mz.len();
        }
        if mz.windows(2).any(|w| w[1] < w[0]) {
            let mut order: Vec<u32> = (0..mz.len() as u32).collect();
            order.sort_by(|&a, &b| mz[a as usize].total_cmp(&mz[b as usize]));
            mz = reordered(&mz, &order);
            intensity = reordered(&intensity, &order);
            if let Some((values, _)) = &mut mobility {
                *values = reordered(values, &order);
            }
            repairs.sorted = true;
        }
        let mut meta = self.meta();
        if repairs.ion_mobility_dropped.is_some() {
            // Nothing of the array is kept: the tables say no mobility, not a kind without values.
            meta.ion_mobility_array = None;
        }
        Ok((
            Spectrum {
                meta,
                mz,
                intensity,
                ion_mobility: mobility.map(|(values, _)| values),
            },
            repairs,
        ))
    }
}

/// The values whose `keep` is true, in order.
fn kept<T: Copy>(values: &[T], keep: &[bool]) -> Vec<T> {
    values
        .iter()
        .zip(keep)
        .filter_map(|(&v, &k)| k.then_some(v))
        .collect()
}

/// The values in `order` (positions into them).
fn reordered<T: Copy>(values: &[T], order: &[u32]) -> Vec<T> {
    order.iter().map(|&k| values[k as usize]).collect()
}

#[derive(Debug, Clone)]
pub(super) enum DecodeError {
    NoMzArray,
    Broken(String),
    Limit {
        what: String,
        limit: u64,
        setting: &'static str,
    },
}

pub(super) fn too_many_points(
    which: &ArrayType,
    points: u64,
    limits: &ReadLimits,
) -> Result<(), DecodeError> {
    if points > limits.max_points_per_spectrum {
        return Err(DecodeError::Limit {
            what: format!("the {} has {points} points", array_label(which)),
            limit: limits.max_points_per_spectrum,
            setting: "limits.max_points_per_spectrum",
        });
    }
    Ok(())
}

/// "m/z array", "intensity array", the ion mobility array's term, or mzdata's name for other
/// arrays.
fn array_label(which: &ArrayType) -> String {
    match which {
        ArrayType::MZArray => "m/z array".into(),
        ArrayType::IntensityArray => "intensity array".into(),
        other => match mobility_kind(other) {
            Some(kind) => format!("ion mobility array ({})", kind.as_str()),
            None => format!("{other} array"),
        },
    }
}

/// mzdata's array type for each kind of ion mobility array, in the order one is chosen when a
/// spectrum has several.
fn mobility_array_types() -> [(ArrayType, IonMobilityKind); 9] {
    use IonMobilityKind as K;
    [
        (
            ArrayType::MeanInverseReducedIonMobilityArray,
            K::MeanInverseReducedIonMobility,
        ),
        (ArrayType::MeanDriftTimeArray, K::MeanDriftTime),
        (ArrayType::MeanIonMobilityArray, K::MeanIonMobility),
        (
            ArrayType::RawInverseReducedIonMobilityArray,
            K::RawInverseReducedIonMobility,
        ),
        (ArrayType::RawDriftTimeArray, K::RawDriftTime),
        (ArrayType::RawIonMobilityArray, K::RawIonMobility),
        (
            ArrayType::DeconvolutedInverseReducedIonMobilityArray,
            K::DeconvolutedInverseReducedIonMobility,
        ),
        (
            ArrayType::DeconvolutedDriftTimeArray,
            K::DeconvolutedDriftTime,
        ),
        (
            ArrayType::nonstandard(IonMobilityKind::OpenMsIonMobility.as_str()),
            K::OpenMsIonMobility,
        ),
    ]
}

/// The kind of ion mobility array mzdata's array type is, if it is one.
fn mobility_kind(which: &ArrayType) -> Option<IonMobilityKind> {
    mobility_array_types()
        .into_iter()
        .find(|(array_type, _)| array_type == which)
        .map(|(_, kind)| kind)
}

/// mzdata's array type for a kind of ion mobility array.
pub(super) fn mobility_array_type(kind: IonMobilityKind) -> ArrayType {
    mobility_array_types()
        .into_iter()
        .find(|(_, k)| *k == kind)
        .map_or(ArrayType::Unknown, |(array_type, _)| array_type)
}

/// The ion mobility array of mzdata's arrays, if any (the first of
/// [`mobility_array_types`] when there are several). Nothing is looked up when every array
/// is m/z or intensity, as in files without mobility.
pub(super) fn mobility_array(
    arrays: &mzdata::spectrum::BinaryArrayMap,
) -> Option<(&DataArray, IonMobilityKind)> {
    let other = |t: &ArrayType| !matches!(t, ArrayType::MZArray | ArrayType::IntensityArray);
    if !arrays.iter().any(|(t, _)| other(t)) {
        return None;
    }
    mobility_array_types()
        .into_iter()
        .find_map(|(array_type, kind)| arrays.get(&array_type).map(|array| (array, kind)))
}

/// Decoded m/z, intensity and (with its kind, or why it cannot be used) ion mobility arrays.
type DecodedArrays = (Vec<f64>, Vec<f32>, Option<DecodedMobility>);

/// An ion mobility array's values and kind, or why they cannot be decoded: a spectrum keeps its
/// m/z and intensity arrays when its mobility array is broken or in an encoding mzforge lacks.
type DecodedMobility = std::result::Result<(Vec<f64>, IonMobilityKind), String>;

/// An ion mobility array decoded, or why not; a reading limit still stops the spectrum (the
/// limits guard against hostile files whichever array breaks them).
fn decode_mobility(
    array: &Encoded,
    kind: IonMobilityKind,
    limits: &ReadLimits,
) -> std::result::Result<DecodedMobility, DecodeError> {
    match f64_values(array, limits, &array_label(array.which)) {
        Ok(values) => Ok(Ok((values, kind))),
        Err(DecodeError::Broken(reason)) => Ok(Err(reason)),
        Err(error) => Err(error),
    }
}

fn decode_map(
    arrays: &mzdata::spectrum::BinaryArrayMap,
    limits: &ReadLimits,
) -> std::result::Result<DecodedArrays, DecodeError> {
    if arrays.is_empty() {
        return Ok((Vec::new(), Vec::new(), None));
    }
    let Some(mz_array) = arrays.get(&ArrayType::MZArray) else {
        return Err(DecodeError::NoMzArray);
    };
    let mz = mz_values(&Encoded::of(mz_array), limits)?;
    let intensity_array = arrays
        .get(&ArrayType::IntensityArray)
        .ok_or_else(no_intensity)?;
    let intensity = intensity_values(&Encoded::of(intensity_array), limits)?;
    let mobility = match mobility_array(arrays) {
        Some((array, kind)) => Some(decode_mobility(&Encoded::of(array), kind, limits)?),
        None => None,
    };
    Ok((mz, intensity, mobility))
}

fn no_intensity() -> DecodeError {
    DecodeError::Broken("cannot decode the intensity array: no intensity array".into())
}

/// The arrays the lean parser found, decoded exactly as [`decode_map`] decodes mzdata's.
fn decode_lean(
    spectrum: &LeanSpectrum,
    xml: &[u8],
    limits: &ReadLimits,
) -> std::result::Result<DecodedArrays, DecodeError> {
    if !spectrum.has_arrays {
        return Ok((Vec::new(), Vec::new(), None));
    }
    let encoded = |which, array: &EncodedArray| Encoded {
        which,
        dtype: array.dtype,
        compression: array.compression,
        data: &xml[array.data.clone()],
        array: None,
    };
    let Some(mz_array) = &spectrum.mz else {
        return Err(DecodeError::NoMzArray);
    };
    let mz = mz_values(&encoded(&ArrayType::MZArray, mz_array), limits)?;
    let intensity_array = spectrum.intensity.as_ref().ok_or_else(no_intensity)?;
    let intensity = intensity_values(
        &encoded(&ArrayType::IntensityArray, intensity_array),
        limits,
    )?;
    let mobility = match &spectrum.mobility {
        Some((array, kind, _)) => {
            let which = mobility_array_type(*kind);
            Some(decode_mobility(&encoded(&which, array), *kind, limits)?)
        }
        None => None,
    };
    Ok((mz, intensity, mobility))
}

fn mz_values(array: &Encoded, limits: &ReadLimits) -> Result<Vec<f64>, DecodeError> {
    f64_values(array, limits, "m/z array")
}

/// An array's values as `f64`, as mzdata's `to_f64` gives them; `label` names it in errors.
fn f64_values(array: &Encoded, limits: &ReadLimits, label: &str) -> Result<Vec<f64>, DecodeError> {
    with_wrapped_base64(array, |array| f64_values_as_given(array, limits, label))
}

/// [`f64_values`] of the array's text as it is.
fn f64_values_as_given(
    array: &Encoded,
    limits: &ReadLimits,
    label: &str,
) -> Result<Vec<f64>, DecodeError> {
    let array = match prepare(array, limits)? {
        Prepared::Values(values) => return Ok(values),
        Prepared::Decoded(decoded) => Cow::Owned(decoded),
        Prepared::AsIs => match array.plain_values(BinaryDataArrayType::Float64) {
            Some(values) => return Ok(values),
            None => array.as_is(),
        },
    };
    array
        .to_f64()
        .map(Cow::into_owned)
        .map_err(|e| DecodeError::Broken(format!("cannot decode the {label}: {e}")))
}

fn intensity_values(array: &Encoded, limits: &ReadLimits) -> Result<Vec<f32>, DecodeError> {
    with_wrapped_base64(array, |array| intensity_values_as_given(array, limits))
}

/// [`intensity_values`] of the array's text as it is.
fn intensity_values_as_given(
    array: &Encoded,
    limits: &ReadLimits,
) -> Result<Vec<f32>, DecodeError> {
    let array = match prepare(array, limits)? {
        Prepared::Values(values) => return Ok(values.into_iter().map(|v| v as f32).collect()),
        Prepared::Decoded(decoded) => Cow::Owned(decoded),
        Prepared::AsIs => match array.plain_values(BinaryDataArrayType::Float32) {
            Some(values) => return Ok(values),
            None => array.as_is(),
        },
    };
    array
        .to_f32()
        .map(Cow::into_owned)
        .map_err(|e| DecodeError::Broken(format!("cannot decode the intensity array: {e}")))
}

/// `decode(array)`, and where that finds the array broken and its base64 text holds white
/// space, `decode` of the text without it: XML Schema's base64Binary allows white space, and
/// some writers break the text into lines (of 76 characters, as MIME does). Only a broken
/// array pays for the look, so files without line breaks cost nothing more; where the text
/// is broken for another reason too, the error is that reason's.
fn with_wrapped_base64<T>(
    array: &Encoded,
    decode: impl Fn(&Encoded) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    match decode(array) {
        Err(DecodeError::Broken(_)) if array.data.iter().any(u8::is_ascii_whitespace) => {
            let unwrapped: Vec<u8> = array
                .data
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            decode(&Encoded {
                which: array.which,
                dtype: array.dtype,
                compression: array.compression,
                data: &unwrapped,
                array: None,
            })
        }
        other => other,
    }
}

/// An encoded array: mzdata's, or one the lean parser found (its base64 text borrowed from
/// the element).
struct Encoded<'a> {
    which: &'a ArrayType,
    dtype: BinaryDataArrayType,
    compression: BinaryCompressionType,
    data: &'a [u8],
    /// mzdata's array, when it is one.
    array: Option<&'a DataArray>,
}

impl<'a> Encoded<'a> {
    fn of(array: &'a DataArray) -> Encoded<'a> {
        Encoded {
            which: &array.name,
            dtype: array.dtype,
            compression: array.compression,
            data: array.data.as_slice(),
            array: Some(array),
        }
    }

    /// The values of an uncompressed array stored as `dtype` (`T` itself), its base64 decoded
    /// straight into the values' bytes by mzdata's own decoder: one allocation, where mzdata
    /// decodes into bytes and copies them value by value (and a lean array's text would be
    /// copied first). `None` for anything else, and for text that is not valid base64 or not
    /// whole values, which [`Encoded::as_is`] leaves to mzdata and its error.
    fn plain_values<T: bytemuck::Pod>(&self, dtype: BinaryDataArrayType) -> Option<Vec<T>> {
        if self.compression != BinaryCompressionType::NoCompression
            || self.dtype != dtype
            || dtype.size_of() != std::mem::size_of::<T>()
            || self.data.is_empty()
        {
            return None;
        }
        let base64 = base64_simd::STANDARD;
        let bytes = base64.decoded_length(self.data).ok()?;
        if bytes % std::mem::size_of::<T>() != 0 {
            return None;
        }
        let mut values = vec![T::zeroed(); bytes / std::mem::size_of::<T>()];
        let out = bytemuck::cast_slice_mut::<T, u8>(&mut values);
        base64
            .decode(self.data, base64_simd::AsOut::as_out(out))
            .ok()?;
        Some(values)
    }

    /// The array for mzdata to decode as it stands.
    fn as_is(&self) -> Cow<'a, DataArray> {
        match self.array {
            Some(array) => Cow::Borrowed(array),
            None => {
                let mut array = DataArray::wrap(self.which, self.dtype, self.data.to_vec());
                array.compression = self.compression;
                Cow::Owned(array)
            }
        }
    }
}

/// An array made safe to decode: its size checked against the limits, and zlib already
/// inflated (with a bound) where it was used.
enum Prepared {
    /// For `mzdata` to decode as it stands.
    AsIs,
    /// For `mzdata` to decode, rebuilt after bounded decompression.
    Decoded(DataArray),
    /// Already decoded here (every Numpress variant; see [`crate::numpress`]).
    Values(Vec<f64>),
}

/// Checks an encoded array against `limits` before anything proportional to its decoded
/// size is allocated. Uncompressed and Numpress arrays are counted from their encoded
/// bytes; zlib is inflated here, through a reader that stops at
/// [`ReadLimits::max_array_bytes`], and handed on already decompressed.
fn prepare(array: &Encoded, limits: &ReadLimits) -> Result<Prepared, DecodeError> {
    use BinaryCompressionType as C;
    let which = array.which;
    let value_size = array.dtype.size_of().max(1) as u64;
    if array.data.is_empty() {
        return Ok(Prepared::AsIs);
    }
    let base64 = || -> Result<Vec<u8>, DecodeError> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(array.data)
            .map_err(|e| DecodeError::Broken(format!("invalid base64 in the {which} array: {e}")))
    };
    let inflate = |packed: &[u8]| -> Result<Vec<u8>, DecodeError> {
        let limit = limits.max_array_bytes;
        let capacity = (packed.len().saturating_mul(4) as u64).min(limit) as usize;
        let mut out = Vec::with_capacity(capacity);
        flate2::read::ZlibDecoder::new(packed)
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| {
                DecodeError::Broken(format!("corrupt zlib data in the {which} array: {e}"))
            })?;
        if out.len() as u64 > limit {
            return Err(DecodeError::Limit {
                what: format!("the {} decompresses to more bytes", array_label(which)),
                limit,
                setting: "limits.max_array_bytes",
            });
        }
        Ok(out)
    };
    match array.compression {
        C::Decoded => {
            too_many_points(which, array.data.len() as u64 / value_size, limits)?;
            Ok(Prepared::AsIs)
        }
        C::NoCompression => {
            let bytes = array.data.len() as u64 / 4 * 3;
            too_many_points(which, bytes / value_size, limits)?;
            Ok(Prepared::AsIs)
        }
        C::Zlib => {
            let bytes = inflate(&base64()?)?;
            too_many_points(which, bytes.len() as u64 / value_size, limits)?;
            Ok(Prepared::Decoded(DataArray::wrap(
                which,
                array.dtype,
                bytes,
            )))
        }
        C::NumpressPIC
        | C::NumpressPICZlib
        | C::NumpressLinear
        | C::NumpressLinearZlib
        | C::NumpressSLOF
        | C::NumpressSLOFZlib => {
            use crate::numpress::Codec;
            let (codec, zlib) = match array.compression {
                C::NumpressPIC => (Codec::Pic, false),
                C::NumpressPICZlib => (Codec::Pic, true),
                C::NumpressLinear => (Codec::Linear, false),
                C::NumpressLinearZlib => (Codec::Linear, true),
                C::NumpressSLOF => (Codec::Slof, false),
                _ => (Codec::Slof, true),
            };
            let mut bytes = base64()?;
            if zlib {
                bytes = inflate(&bytes)?;
            } else if looks_like_zlib(&bytes) {
                // msdk (MZmine) lists "zlib compression" and the Numpress term as two
                // parameters, which OpenMS reads as Numpress followed by zlib; mzdata (and so
                // the lean parser) keeps only the last term. Such data are a whole zlib stream
                // (header, deflate data, Adler-32), which Numpress bytes never are: inflated
                // when that holds, decoded as declared otherwise.
                if let Ok(inflated) = inflate(&bytes) {
                    bytes = inflated;
                }
            }
            too_many_points(which, codec.count(&bytes) as u64, limits)?;
            codec
                .decode(&bytes)
                .map(Prepared::Values)
                .map_err(|e| DecodeError::Broken(format!("{which} array: {e}")))
        }
        // Anything else `mzdata` decodes or refuses itself.
        _ => Ok(Prepared::AsIs),
    }
}

/// Whether `bytes` start with a zlib header (RFC 1950: deflate, a window of at most 32 KiB,
/// no preset dictionary, the check bits right). Only a hint: the stream must still inflate
/// and pass its checksum.
fn looks_like_zlib(bytes: &[u8]) -> bool {
    match bytes {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && flg & 0x20 == 0
                && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

fn decode_arrays(
    spectrum: &MultiLayerSpectrum,
    limits: &ReadLimits,
) -> std::result::Result<DecodedArrays, DecodeError> {
    if let Some(arrays) = spectrum.raw_arrays() {
        return decode_map(arrays, limits);
    }
    let (mz, intensity): (Vec<f64>, Vec<f32>) = match spectrum.peaks() {
        RefPeakDataLevel::Centroid(peaks) => peaks.iter().map(|p| (p.mz, p.intensity)).unzip(),
        RefPeakDataLevel::Deconvoluted(peaks) => {
            peaks.iter().map(|p| (p.mz(), p.intensity)).unzip()
        }
        RefPeakDataLevel::RawData(arrays) => return decode_map(arrays, limits),
        RefPeakDataLevel::Missing => (Vec::new(), Vec::new()),
    };
    too_many_points(&ArrayType::MZArray, mz.len() as u64, limits)?;
    Ok((mz, intensity, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::tests::{read_with_mzdata, shared_mzml_files};

    /// A Numpress array as msdk writes it with "zlib compression" as a second parameter:
    /// declared plain Numpress (mzdata keeps the last term), its bytes a zlib stream. It
    /// decodes as Numpress after zlib; Numpress bytes whose first two bytes happen to form a
    /// zlib header but are no zlib stream decode as declared.
    #[test]
    fn numpress_arrays_behind_a_second_zlib_parameter_are_inflated_first() {
        use base64::Engine as _;
        use std::io::Write as _;
        let decode = |compression, bytes: &[u8]| {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            let array = Encoded {
                which: &ArrayType::MZArray,
                dtype: BinaryDataArrayType::Float64,
                compression,
                data: text.as_bytes(),
                array: None,
            };
            match prepare(&array, &ReadLimits::default()) {
                Ok(Prepared::Values(values)) => values,
                Ok(_) => panic!("not decoded as Numpress"),
                Err(e) => panic!("{e:?}"),
            }
        };
        let mz = [100.25, 100.5, 250.125, 999.0];
        let numpress = numpress_rs::numpress_compress(&mz, 1e5).unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&numpress).unwrap();
        let zlibbed = zlib.finish().unwrap();
        assert!(looks_like_zlib(&zlibbed));
        assert!(!looks_like_zlib(&numpress));
        let plain = decode(BinaryCompressionType::NumpressLinear, &numpress);
        assert_eq!(
            decode(BinaryCompressionType::NumpressLinearZlib, &zlibbed),
            plain
        );
        assert_eq!(
            decode(BinaryCompressionType::NumpressLinear, &zlibbed),
            plain
        );
        for (value, decoded) in mz.iter().zip(&plain) {
            assert!((value - decoded).abs() < 1e-4, "{value} {decoded}");
        }
        // A fixed point whose big-endian bytes start 0x78 0x01, a valid zlib header.
        let fixed_point = f64::from_be_bytes([0x78, 0x01, 0, 0, 0, 0, 0, 0]);
        let mut header_only = numpress.clone();
        header_only[..8].copy_from_slice(&fixed_point.to_be_bytes());
        assert!(looks_like_zlib(&header_only));
        let as_declared = decode(BinaryCompressionType::NumpressLinear, &header_only);
        assert_eq!(as_declared.len(), mz.len());
        assert!(
            as_declared.iter().all(|v| v.abs() < 1e-200),
            "{as_declared:?}"
        );
    }

    /// Uncompressed arrays decoded in place equal mzdata's own decoding of them, bit for bit,
    /// on every real file (both readers' arrays go through [`Encoded::plain_values`], so the
    /// test below cannot tell).
    #[test]
    fn arrays_decoded_in_place_equal_mzdatas_decoding_on_every_real_file() {
        use mzdata::spectrum::bindata::ByteArrayView;
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut bsa1 = 0;
        for path in shared_mzml_files() {
            let mut checked = 0;
            let Some(spectra) = read_with_mzdata(&path) else {
                continue;
            };
            for spectrum in &spectra {
                let Some(arrays) = spectrum.raw_arrays() else {
                    continue;
                };
                for array in arrays.iter().map(|(_, array)| array) {
                    let encoded = Encoded::of(array);
                    if let Some(values) = encoded.plain_values::<f64>(BinaryDataArrayType::Float64)
                    {
                        assert_eq!(
                            bits(&values),
                            bits(&array.to_f64().unwrap()),
                            "{}",
                            path.display()
                        );
                        checked += 1;
                    }
                    if let Some(values) = encoded.plain_values::<f32>(BinaryDataArrayType::Float32)
                    {
                        let widened: Vec<f64> = values.iter().map(|&v| v as f64).collect();
                        let theirs: Vec<f64> =
                            array.to_f32().unwrap().iter().map(|&v| v as f64).collect();
                        assert_eq!(bits(&widened), bits(&theirs), "{}", path.display());
                        checked += 1;
                    }
                }
            }
            if path.ends_with("runs/BSA1.mzML") {
                bsa1 = checked;
            }
        }
        if shared_mzml_files().is_empty() {
            return;
        }
        assert_eq!(
            bsa1,
            2 * 1684,
            "BSA1's m/z and intensity arrays are all uncompressed"
        );
    }

    #[test]
    fn arrays_mzdata_cannot_decode_are_left_to_it() {
        /// An uncompressed m/z array stored as `stored`, decoded in place as 64-bit floats.
        fn in_place(text: &[u8], stored: BinaryDataArrayType) -> Option<Vec<f64>> {
            let array = Encoded {
                which: &ArrayType::MZArray,
                dtype: stored,
                compression: BinaryCompressionType::NoCompression,
                data: text,
                array: None,
            };
            array.plain_values(BinaryDataArrayType::Float64)
        }
        use base64::Engine as _;
        use BinaryDataArrayType::{Float32, Float64};
        let two = base64::engine::general_purpose::STANDARD
            .encode([1.5f64, 2.5].map(f64::to_le_bytes).concat());
        assert_eq!(in_place(two.as_bytes(), Float64), Some(vec![1.5, 2.5]));
        // Stored as another type, not whole values, not base64, empty: mzdata's to judge.
        for (text, stored) in [
            (two.as_bytes(), Float32),
            (b"AAAA".as_slice(), Float64),
            (b"AA A=AAA".as_slice(), Float64),
            (b"".as_slice(), Float64),
        ] {
            assert_eq!(in_place(text, stored), None, "{text:?} as {stored:?}");
        }
    }
}
