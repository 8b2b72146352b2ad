//! A lean parser for one `<spectrum>` element: it reads only what the pipeline needs (the
//! metadata of [`SpectrumMeta`](crate::SpectrumMeta) and where the m/z and intensity arrays'
//! base64 text lies in the element), with byte searches and without allocating per
//! `cvParam`.
//!
//! mzdata's spectrum builder is the reference: this parser follows its state machine (which
//! routes each `cvParam` by the last element opened or closed, not by nesting), its choice of
//! matching by name or by accession, its value conversions and its isolation-window
//! arithmetic. Whenever an element holds anything this parser is not sure to read as mzdata
//! would (markup other than plain tags, entities or control characters in values that matter,
//! unknown units or encodings on the arrays it decodes, structure mzdata would stumble on, a
//! value mzdata would fail to convert), it gives up with [`Unsure`], and the caller parses
//! the element with mzdata instead. So a broken element is always judged by mzdata.

use std::ops::Range;

use memchr::{memchr, memchr3};
use mzdata::params::{ControlledVocabulary, Param, ParamValue, Unit, ValueRef};
use mzdata::spectrum::bindata::{BinaryCompressionType, BinaryDataArrayType};
use mzdata::spectrum::{ArrayType, ScanPolarity, SignalContinuity};

use crate::io::mzml_split::ParseContext;
use crate::spectrum::{IonMobilityKind, ScanMobilityKind};

/// Every `&` in the element, also in text and attribute values this parser skips, must start
/// one of XML's five named references or a character reference to an XML character: quick-xml
/// rejects the element otherwise (found by the `read` fuzz target: an unclosed `&` in a value
/// nobody reads), and such an element is left to mzdata to judge.
fn check_references(xml: &[u8]) -> Lean<()> {
    const NAMED: [&[u8]; 5] = [b"amp", b"lt", b"gt", b"quot", b"apos"];
    let unsure = Unsure("a reference that is not a well-formed XML reference");
    for at in memchr::memchr_iter(b'&', xml) {
        let rest = &xml[at + 1..];
        let end = rest
            .iter()
            .take(12)
            .position(|&b| b == b';')
            .ok_or(unsure)?;
        let name = &rest[..end];
        let code = match name {
            [b'#', b'x', hex @ ..] if !hex.is_empty() => std::str::from_utf8(hex)
                .ok()
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u32::from_str_radix(h, 16).ok()),
            [b'#', decimal @ ..] if !decimal.is_empty() => std::str::from_utf8(decimal)
                .ok()
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u32>().ok()),
            _ if NAMED.contains(&name) => continue,
            _ => return Err(unsure),
        };
        let xml_char = |c: u32| matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF);
        if !code.is_some_and(xml_char) {
            return Err(unsure);
        }
    }
    Ok(())
}

/// Why the lean parser left an element to mzdata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsure(pub(crate) &'static str);

type Lean<T> = Result<T, Unsure>;

/// What the lean parser read from one `<spectrum>` element.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LeanSpectrum {
    pub(crate) native_id: String,
    pub(crate) ms_level: u8,
    /// The first scan's start time in minutes, converted as mzdata does; `None` without a
    /// scan or when the first scan states none.
    pub(crate) start_time_minutes: Option<f64>,
    pub(crate) polarity: ScanPolarity,
    pub(crate) continuity: SignalContinuity,
    /// The first `<precursor>`, if any.
    pub(crate) precursor: Option<LeanPrecursor>,
    /// The first precursor's `spectrumRef`: the native id of the spectrum it came from.
    pub(crate) precursor_ref: Option<String>,
    /// The first scan's first scan window (lower, upper), if it has one.
    pub(crate) scan_window: Option<(f32, f32)>,
    /// Whether the element holds any `<binaryDataArray>`, of whatever kind.
    pub(crate) has_arrays: bool,
    pub(crate) mz: Option<EncodedArray>,
    pub(crate) intensity: Option<EncodedArray>,
    /// The per-point ion mobility array, its kind and the unit its term names.
    pub(crate) mobility: Option<(EncodedArray, IonMobilityKind, Unit)>,
    /// The first scan's ion mobility value, as mzdata's `IonMobilityMeasure::ion_mobility`
    /// finds it.
    pub(crate) scan_mobility: Option<(f64, ScanMobilityKind)>,
}

/// A selected ion's m/z, intensity and charge.
pub(crate) type IonValues = (f64, f32, Option<i32>);

/// An isolation window's target, lower and upper bounds (m/z).
pub(crate) type WindowValues = (f32, f32, f32);

/// A precursor as mzdata builds it: every selected ion's values go into its first ion.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LeanPrecursor {
    /// (m/z, intensity, charge) of the first selected ion, if any ion param was seen.
    pub(crate) ion: Option<IonValues>,
    pub(crate) window: WindowValues,
    window_state: WindowState,
}

/// mzdata's isolation window as its `IsolationWindowBuilder` fills it (that builder is not
/// exported by mzdata 0.68, so its rules are copied here; the tests compare the results).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct WindowState {
    target: f32,
    lower: f32,
    upper: f32,
    flags: WindowFlags,
}

/// mzdata's `IsolationWindowState`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum WindowFlags {
    #[default]
    Unknown,
    Explicit,
    Offset,
    Complete,
    NoIsolation,
}

impl WindowState {
    fn target(&mut self, value: f32) {
        self.target = value;
        self.flags = match self.flags {
            WindowFlags::Unknown | WindowFlags::Explicit | WindowFlags::Complete => {
                WindowFlags::Complete
            }
            WindowFlags::Offset => {
                if self.lower != 0.0 {
                    self.lower = self.target - self.lower;
                }
                if self.upper != 0.0 {
                    self.upper += self.target;
                }
                WindowFlags::Complete
            }
            WindowFlags::NoIsolation => WindowFlags::NoIsolation,
        };
    }

    /// An offset below (`lower`) or above the target. mzdata panics where this says `Err`.
    fn offset(&mut self, lower: bool, value: f32) -> Lean<()> {
        let bound = if lower {
            &mut self.lower
        } else {
            &mut self.upper
        };
        let resolved = if lower {
            self.target - value
        } else {
            self.target + value
        };
        match self.flags {
            WindowFlags::Unknown => {
                self.flags = WindowFlags::Offset;
                *bound = value;
            }
            WindowFlags::Offset => *bound = value,
            WindowFlags::Complete => *bound = resolved,
            WindowFlags::Explicit if self.target == 0.0 => {
                return Err(Unsure(
                    "isolation window offsets after limits without a target",
                ))
            }
            WindowFlags::Explicit => *bound = resolved,
            WindowFlags::NoIsolation => {}
        }
        Ok(())
    }

    /// An explicit limit (deprecated terms).
    fn limit(&mut self, lower: bool, value: f32) {
        if self.flags == WindowFlags::NoIsolation {
            return;
        }
        self.flags = WindowFlags::Explicit;
        let other = if lower {
            self.lower = value;
            self.upper
        } else {
            self.upper = value;
            self.lower
        };
        if other != 0.0 && self.target != 0.0 {
            self.flags = WindowFlags::Complete;
        }
    }
}

/// One array's base64 text (a range of the element's bytes) and how to decode it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedArray {
    pub(crate) data: Range<usize>,
    pub(crate) dtype: BinaryDataArrayType,
    pub(crate) compression: BinaryCompressionType,
}

/// mzdata's parser states, those a spectrum element can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the `<spectrum>` start tag.
    Start,
    Spectrum,
    ScanList,
    Scan,
    ScanWindowList,
    ScanWindow,
    PrecursorList,
    Precursor,
    IsolationWindow,
    SelectedIonList,
    SelectedIon,
    Activation,
    BinaryDataArrayList,
    BinaryDataArray,
    Binary,
    Done,
}

/// The tags that move mzdata's state machine, and what they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Spectrum,
    ScanList,
    Scan,
    ScanWindowList,
    ScanWindow,
    PrecursorList,
    Precursor,
    IsolationWindow,
    SelectedIonList,
    SelectedIon,
    Activation,
    BinaryDataArrayList,
    BinaryDataArray,
    Binary,
    /// A tag mzdata knows from elsewhere in the document (`run`, `software`, ...).
    Foreign,
    /// A tag mzdata ignores.
    Other,
}

fn tag_of(name: &[u8]) -> Tag {
    match name {
        b"spectrum" => Tag::Spectrum,
        b"scanList" => Tag::ScanList,
        b"scan" => Tag::Scan,
        b"scanWindowList" => Tag::ScanWindowList,
        b"scanWindow" => Tag::ScanWindow,
        b"precursorList" => Tag::PrecursorList,
        b"precursor" => Tag::Precursor,
        b"isolationWindow" => Tag::IsolationWindow,
        b"selectedIonList" => Tag::SelectedIonList,
        b"selectedIon" => Tag::SelectedIon,
        b"activation" => Tag::Activation,
        b"binaryDataArrayList" => Tag::BinaryDataArrayList,
        b"binaryDataArray" => Tag::BinaryDataArray,
        b"binary" => Tag::Binary,
        b"softwareList"
        | b"sourceFileList"
        | b"software"
        | b"spectrumList"
        | b"chromatogramList"
        | b"chromatogram"
        | b"analyzer"
        | b"fileDescription"
        | b"dataProcessingList"
        | b"source"
        | b"processingMethod"
        | b"sourceFile"
        | b"dataProcessing"
        | b"instrumentConfiguration"
        | b"detector"
        | b"instrumentConfigurationList"
        | b"run"
        | b"componentList" => Tag::Foreign,
        _ => Tag::Other,
    }
}

/// The name of an array, as far as decoding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayName {
    Unnamed,
    Mz,
    Intensity,
    /// A per-point ion mobility array, and the unit its term names.
    Mobility(IonMobilityKind, Unit),
    Other,
}

/// The array being read (mzdata's `current_array`).
#[derive(Debug, Clone)]
struct ArrayBuilder {
    name: ArrayName,
    dtype: BinaryDataArrayType,
    /// `None`: an encoding this parser does not decode.
    compression: Option<BinaryCompressionType>,
    data: Range<usize>,
}

impl Default for ArrayBuilder {
    fn default() -> Self {
        ArrayBuilder {
            name: ArrayName::Unnamed,
            dtype: BinaryDataArrayType::Unknown,
            compression: Some(BinaryCompressionType::NoCompression),
            data: 0..0,
        }
    }
}

/// A parameter, from the element (`cvParam`, `userParam`) or from a referenceable group.
trait AnyParam {
    /// The name's bytes: compared with ASCII names only, which no other encoding of the
    /// same bytes could match, so it is never decoded.
    fn name(&self) -> &[u8];
    fn accession(&self) -> Option<u32>;
    fn cv(&self) -> Option<ControlledVocabulary>;
    /// The unit, and whether one was named at all (mzdata reads a missing one as unknown).
    fn unit(&self) -> Lean<(Unit, bool)>;
    fn to_f64(&self) -> Option<f64>;
    fn to_i64(&self) -> Option<i64>;
    /// Whether the value is `text` as mzdata reads it (its `Value` printed back).
    fn value_is(&self, text: &str) -> Lean<bool>;
    fn to_f32(&self) -> Lean<f32> {
        self.to_f64()
            .map(|v| v as f32)
            .ok_or(Unsure("a value mzdata cannot convert to a number"))
    }
}

/// A `cvParam` or `userParam` read from the element, its strings borrowed.
struct InlineParam<'a> {
    name: &'a [u8],
    /// Checked only when used: mzdata reads any value (a spectrum title with `&quot;`), and
    /// so may this parser, as long as it does not need it.
    value: &'a [u8],
    accession: Option<u32>,
    cv: Option<ControlledVocabulary>,
    /// The last of `unitName` and `unitAccession` (the one mzdata keeps), looked up only when
    /// used, like the value: only a scan's start time needs its unit.
    unit: Option<UnitAttribute<'a>>,
}

/// A unit as the parameter names it.
#[derive(Clone, Copy)]
enum UnitAttribute<'a> {
    Name(&'a [u8]),
    Accession(&'a [u8]),
}

impl AnyParam for InlineParam<'_> {
    fn name(&self) -> &[u8] {
        self.name
    }
    fn accession(&self) -> Option<u32> {
        self.accession
    }
    fn cv(&self) -> Option<ControlledVocabulary> {
        self.cv
    }
    fn unit(&self) -> Lean<(Unit, bool)> {
        Ok(match self.unit {
            None => (Unit::Unknown, false),
            Some(UnitAttribute::Name(name)) => (Unit::from_name(plain(name)?), true),
            Some(UnitAttribute::Accession(accession)) => {
                (Unit::from_accession(plain(accession)?), true)
            }
        })
    }
    fn to_f64(&self) -> Option<f64> {
        ValueRef::new(plain(self.value).ok()?).to_f64().ok()
    }
    fn to_i64(&self) -> Option<i64> {
        ValueRef::new(plain(self.value).ok()?).to_i64().ok()
    }
    fn value_is(&self, text: &str) -> Lean<bool> {
        Ok(ValueRef::new(plain(self.value)?) == text)
    }
}

impl AnyParam for Param {
    fn name(&self) -> &[u8] {
        self.name.as_bytes()
    }
    fn accession(&self) -> Option<u32> {
        self.accession
    }
    fn cv(&self) -> Option<ControlledVocabulary> {
        self.controlled_vocabulary
    }
    fn unit(&self) -> Lean<(Unit, bool)> {
        Ok((self.unit, !self.unit.is_unknown()))
    }
    fn to_f64(&self) -> Option<f64> {
        ParamValue::to_f64(&self.value).ok()
    }
    fn to_i64(&self) -> Option<i64> {
        ParamValue::to_i64(&self.value).ok()
    }
    fn value_is(&self, text: &str) -> Lean<bool> {
        Ok(self.value == text)
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Eight bytes at a time: attribute keys, values and names are a few to a few dozen bytes,
/// too short for memchr's set-up and long enough that a byte loop was a third of the parse.
mod words {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    /// The high bit of each byte of `word` below `limit` (at most 0x80) is set in the result;
    /// the lowest set bit is exact, bits above it may be set by borrows.
    fn below(word: u64, limit: u8) -> u64 {
        word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGH
    }

    fn word(chunk: &[u8]) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        u64::from_le_bytes(bytes)
    }

    /// Where the first `byte` is in `hay`.
    pub(super) fn find(hay: &[u8], byte: u8) -> Option<usize> {
        let pattern = ONES * u64::from(byte);
        let mut chunks = hay.chunks_exact(8);
        let mut at = 0;
        for chunk in &mut chunks {
            let found = below(word(chunk) ^ pattern, 1);
            if found != 0 {
                return Some(at + (found.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
        let tail = chunks.remainder();
        tail.iter().position(|&b| b == byte).map(|k| at + k)
    }

    /// Whether `bytes` holds `byte` or a control character (below 0x20: white space other
    /// than the plain space among them).
    pub(super) fn has_control_or(bytes: &[u8], byte: u8) -> bool {
        let pattern = ONES * u64::from(byte);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = word(chunk);
            if below(word, 0x20) | below(word ^ pattern, 1) != 0 {
                return true;
            }
        }
        chunks.remainder().iter().any(|&b| b < 0x20 || b == byte)
    }

    #[cfg(test)]
    mod tests {
        use proptest::prelude::*;

        /// Bytes at the edges of what the word tricks tell apart, and a few ordinary ones.
        fn edge_byte() -> impl Strategy<Value = u8> {
            prop_oneof![
                proptest::sample::select(vec![
                    0u8, 1, 0x1f, 0x20, 0x21, b'&', b'"', b'=', 0x7f, 0x80, 0x81, 0xff
                ]),
                any::<u8>(),
            ]
        }

        proptest! {
            #[test]
            fn find_is_position(
                hay in proptest::collection::vec(edge_byte(), 0..40),
                byte in edge_byte(),
            ) {
                prop_assert_eq!(super::find(&hay, byte), hay.iter().position(|&b| b == byte));
            }

            #[test]
            fn control_or_byte_is_any(
                bytes in proptest::collection::vec(edge_byte(), 0..40),
                byte in edge_byte(),
            ) {
                prop_assert_eq!(
                    super::has_control_or(&bytes, byte),
                    bytes.iter().any(|&b| b < 0x20 || b == byte)
                );
            }
        }
    }
}

fn trim(bytes: &[u8], range: Range<usize>) -> Range<usize> {
    let (mut from, mut to) = (range.start, range.end);
    while from < to && is_space(bytes[from]) {
        from += 1;
    }
    while to > from && is_space(bytes[to - 1]) {
        to -= 1;
    }
    from..to
}

/// An attribute value the lean parser may use as it stands: mzdata would get the same string
/// from quick-xml's normalisation (no entity, no character normalised to a space, ASCII).
fn plain(value: &[u8]) -> Lean<&str> {
    if value
        .iter()
        .any(|&b| b >= 0x80 || matches!(b, b'&' | b'<' | b'\t' | b'\r' | b'\n'))
    {
        return Err(Unsure(
            "an attribute value with entities or non-ASCII bytes",
        ));
    }
    // ASCII, so valid UTF-8.
    std::str::from_utf8(value).map_err(|_| Unsure("an attribute value that is not UTF-8"))
}

/// The attributes of a start tag's content (after the name), strictly: `key="value"` or
/// `key='value'` separated by whitespace; anything else is unsure (quick-xml may reject it).
struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Lean<(&'a [u8], &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.rest;
        let mut k = 0;
        while k < bytes.len() && is_space(bytes[k]) {
            k += 1;
        }
        if k == bytes.len() {
            return None;
        }
        if k == 0 {
            self.rest = &[];
            return Some(Err(Unsure("attributes not separated by whitespace")));
        }
        let key_start = k;
        // Strict: `key="value"`, with no space around `=` (the key ends at the first `=`,
        // and a space before it is one after the key).
        let bad = || Some(Err(Unsure("an attribute quick-xml may not accept")));
        let Some(key_len) = words::find(&bytes[key_start..], b'=') else {
            self.rest = &[];
            return bad();
        };
        k = key_start + key_len;
        let key = &bytes[key_start..k];
        if key.is_empty() || key.iter().fold(false, |space, &b| space | is_space(b)) {
            self.rest = &[];
            return bad();
        }
        let quote = match bytes.get(k + 1) {
            Some(&q) if q == b'"' || q == b'\'' => q,
            _ => {
                self.rest = &[];
                return bad();
            }
        };
        let value_start = k + 2;
        let Some(len) = words::find(&bytes[value_start..], quote) else {
            self.rest = &[];
            return bad();
        };
        let value = &bytes[value_start..value_start + len];
        self.rest = &bytes[value_start + len + 1..];
        Some(Ok((key, value)))
    }
}

/// Checks that no attribute name repeats (quick-xml refuses duplicates), for tags mzdata
/// reads the attributes of.
fn attributes_checked(content: &[u8]) -> Lean<Vec<(&[u8], &[u8])>> {
    let mut seen: Vec<(&[u8], &[u8])> = Vec::with_capacity(4);
    for attribute in (Attributes { rest: content }) {
        let (key, value) = attribute?;
        if seen.iter().any(|(k, _)| *k == key) {
            return Err(Unsure("a repeated attribute"));
        }
        seen.push((key, value));
    }
    Ok(seen)
}

/// The common accession, `XX:` and up to 9 digits, read without building a string.
fn accession_digits(raw: &[u8]) -> Option<u32> {
    let digits = raw.get(3..)?;
    if raw.get(2) != Some(&b':')
        || !raw[..2].iter().all(u8::is_ascii_uppercase)
        || digits.is_empty()
        || digits.len() > 9
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')),
    )
}

/// mzdata's `curie_to_num`: the number after the first `:`.
fn accession_number(accession: &str) -> Option<u32> {
    accession.split(':').nth(1).and_then(|n| n.parse().ok())
}

/// Reads a `cvParam` or `userParam` tag's attributes as mzdata's `handle_param_borrowed`.
fn inline_param(content: &[u8]) -> Lean<InlineParam<'_>> {
    const NAME: u8 = 1;
    const VALUE: u8 = 2;
    const CV: u8 = 4;
    const ACCESSION: u8 = 8;
    const UNIT_NAME: u8 = 16;
    const UNIT_ACCESSION: u8 = 32;
    const UNIT_CV: u8 = 64;
    const TYPE: u8 = 128;
    let mut seen = 0u8;
    let mut param = InlineParam {
        name: b"",
        value: b"",
        accession: None,
        cv: None,
        unit: None,
    };
    for attribute in (Attributes { rest: content }) {
        let (key, raw) = attribute?;
        let bit = match key {
            b"value" => {
                param.value = raw;
                VALUE
            }
            b"name" => {
                // An entity or a character normalised to a space could make one of the
                // names matched here; other bytes cannot (mzdata decodes non-UTF-8 as
                // Latin-1, which matches no ASCII name either).
                // (Other control characters are left to mzdata too.)
                if words::has_control_or(raw, b'&') {
                    return Err(Unsure(
                        "a parameter name with entities or control characters",
                    ));
                }
                param.name = raw;
                NAME
            }
            b"cvRef" => {
                param.cv = match raw {
                    b"MS" => Some(ControlledVocabulary::MS),
                    b"UO" => Some(ControlledVocabulary::UO),
                    _ => plain(raw)?
                        .parse::<ControlledVocabulary>()
                        .ok()
                        .and_then(|cv| cv.as_option()),
                };
                CV
            }
            b"accession" => {
                param.accession = match accession_digits(raw) {
                    Some(number) => Some(number),
                    None => accession_number(plain(raw)?),
                };
                ACCESSION
            }
            // The last of the two unit attributes wins, as in mzdata.
            b"unitName" => {
                param.unit = Some(UnitAttribute::Name(raw));
                UNIT_NAME
            }
            // Checked now, though looked up only when used: mzdata reads a unit name that is not
            // UTF-8 as Latin-1, but fails the spectrum on such a unit accession (or one with an
            // entity it cannot resolve), used or not (found by fuzzing).
            b"unitAccession" => {
                plain(raw)?;
                param.unit = Some(UnitAttribute::Accession(raw));
                UNIT_ACCESSION
            }
            // Values mzdata does not read.
            b"unitCvRef" => UNIT_CV,
            b"type" => TYPE,
            _ => return Err(Unsure("a parameter attribute this parser does not know")),
        };
        if seen & bit != 0 {
            return Err(Unsure("a repeated attribute"));
        }
        seen |= bit;
    }
    if seen & NAME == 0 {
        return Err(Unsure("a parameter without a name"));
    }
    Ok(param)
}

/// The parse in progress: mzdata's builder, reduced to what the pipeline reads.
struct Builder<'c> {
    context: &'c ParseContext,
    state: State,
    native_id: String,
    ms_level: u8,
    start_time_minutes: Option<f64>,
    polarity: ScanPolarity,
    continuity: SignalContinuity,
    scans: usize,
    /// Scan windows of the last scan.
    windows_in_last_scan: usize,
    first_window: Option<(f32, f32)>,
    precursors: usize,
    first_precursor: LeanPrecursor,
    precursor_ref: Option<String>,
    /// The precursor being filled once there are several (only checked, then dropped).
    later_precursor: LeanPrecursor,
    in_array: bool,
    array: ArrayBuilder,
    has_arrays: bool,
    mz: Option<ArrayBuilder>,
    intensity: Option<ArrayBuilder>,
    mobility: Option<ArrayBuilder>,
    /// Ion mobility arrays seen (mzdata keeps one per kind; this parser only one).
    mobility_arrays: usize,
    /// The first scan's ion mobility values, first of each kind ([`ScanMobilityKind::ALL`]
    /// order).
    scan_mobility: [Option<f64>; 4],
}

impl<'c> Builder<'c> {
    fn new(context: &'c ParseContext) -> Builder<'c> {
        Builder {
            context,
            state: State::Start,
            native_id: String::new(),
            ms_level: 0,
            start_time_minutes: None,
            polarity: ScanPolarity::Unknown,
            continuity: SignalContinuity::Unknown,
            scans: 0,
            windows_in_last_scan: 0,
            first_window: None,
            precursors: 0,
            first_precursor: LeanPrecursor::default(),
            precursor_ref: None,
            later_precursor: LeanPrecursor::default(),
            in_array: false,
            array: ArrayBuilder::default(),
            has_arrays: false,
            mz: None,
            intensity: None,
            mobility: None,
            mobility_arrays: 0,
            scan_mobility: [None; 4],
        }
    }

    fn precursor(&mut self) -> Lean<&mut LeanPrecursor> {
        match self.precursors {
            // mzdata would make one up, then drop it or keep it first: odd either way.
            0 => Err(Unsure("precursor content outside a <precursor>")),
            1 => Ok(&mut self.first_precursor),
            _ => Ok(&mut self.later_precursor),
        }
    }

    fn start(&mut self, tag: Tag, content: &[u8], empty: bool) -> Lean<()> {
        if empty {
            // mzdata reads no empty element but parameters.
            return Ok(());
        }
        if self.state == State::Binary {
            return Err(Unsure("markup inside <binary>"));
        }
        self.state = match tag {
            Tag::Spectrum => {
                if self.state != State::Start {
                    return Err(Unsure("a nested <spectrum>"));
                }
                for (key, value) in attributes_checked(content)? {
                    match key {
                        b"id" => {
                            let attribute = quick_xml::events::attributes::Attribute {
                                key: quick_xml::name::QName(b"id"),
                                value: value.into(),
                            };
                            self.native_id = attribute
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map_err(|_| Unsure("a spectrum id that is not UTF-8"))?
                                .into_owned();
                        }
                        b"index" => {
                            String::from_utf8_lossy(value)
                                .parse::<usize>()
                                .map_err(|_| Unsure("a spectrum index that is not a number"))?;
                        }
                        _ => {}
                    }
                }
                State::Spectrum
            }
            _ if self.state == State::Start => return Err(Unsure("not a <spectrum> element")),
            Tag::ScanList => State::ScanList,
            Tag::Scan => {
                for (key, value) in attributes_checked(content)? {
                    if key == b"instrumentConfigurationRef" || key == b"spectrumRef" {
                        plain(value)?;
                    }
                }
                self.scans += 1;
                self.windows_in_last_scan = 0;
                State::Scan
            }
            Tag::ScanWindow => {
                if self.scans == 0 {
                    return Err(Unsure("a scan window without a scan"));
                }
                self.windows_in_last_scan += 1;
                if self.scans == 1 && self.windows_in_last_scan == 1 {
                    self.first_window = Some((0.0, 0.0));
                }
                State::ScanWindow
            }
            Tag::ScanWindowList => State::ScanWindowList,
            Tag::PrecursorList => State::PrecursorList,
            Tag::Precursor => {
                for (key, value) in attributes_checked(content)? {
                    if key == b"spectrumRef" {
                        let value = plain(value)?;
                        if self.precursors == 0 {
                            self.precursor_ref = Some(value.to_owned());
                        }
                    }
                }
                self.precursors += 1;
                self.later_precursor = LeanPrecursor::default();
                State::Precursor
            }
            Tag::IsolationWindow => State::IsolationWindow,
            Tag::SelectedIonList => State::SelectedIonList,
            Tag::SelectedIon => State::SelectedIon,
            Tag::Activation => State::Activation,
            Tag::BinaryDataArrayList => State::BinaryDataArrayList,
            Tag::BinaryDataArray => {
                if self.in_array {
                    return Err(Unsure("a nested <binaryDataArray>"));
                }
                for (key, value) in attributes_checked(content)? {
                    if key == b"dataProcessingRef" {
                        plain(value)?;
                    }
                }
                self.in_array = true;
                State::BinaryDataArray
            }
            Tag::Binary => {
                if !self.in_array {
                    return Err(Unsure("a <binary> outside a <binaryDataArray>"));
                }
                State::Binary
            }
            Tag::Foreign => return Err(Unsure("an element from outside a spectrum")),
            Tag::Other => self.state,
        };
        Ok(())
    }

    fn end(&mut self, tag: Tag) -> Lean<()> {
        self.state = match tag {
            Tag::Spectrum => State::Done,
            Tag::ScanList => State::Spectrum,
            Tag::Scan => State::ScanList,
            Tag::ScanWindow => State::ScanWindowList,
            Tag::ScanWindowList => State::Scan,
            Tag::PrecursorList => State::Spectrum,
            Tag::Precursor => State::PrecursorList,
            Tag::IsolationWindow => State::Precursor,
            Tag::SelectedIonList => State::Precursor,
            Tag::SelectedIon => State::SelectedIonList,
            Tag::Activation => State::Precursor,
            Tag::BinaryDataArrayList => State::Spectrum,
            Tag::BinaryDataArray => {
                let array = std::mem::take(&mut self.array);
                self.in_array = false;
                self.has_arrays = true;
                match array.name {
                    ArrayName::Mz => self.mz = Some(array),
                    ArrayName::Intensity => self.intensity = Some(array),
                    ArrayName::Mobility(..) => {
                        self.mobility_arrays += 1;
                        self.mobility = Some(array);
                    }
                    ArrayName::Unnamed | ArrayName::Other => {}
                }
                State::BinaryDataArrayList
            }
            Tag::Binary => State::BinaryDataArray,
            Tag::Foreign => return Err(Unsure("an element from outside a spectrum")),
            Tag::Other => self.state,
        };
        Ok(())
    }

    /// The text between two tags.
    fn text(&mut self, bytes: &[u8], range: Range<usize>) -> Lean<()> {
        if self.state != State::Binary {
            return Ok(());
        }
        let range = trim(bytes, range);
        if range.is_empty() {
            return Ok(());
        }
        let text = &bytes[range.clone()];
        if !text.is_ascii() || memchr::memchr2(b'&', b'\r', text).is_some() {
            return Err(Unsure("array text with entities or non-ASCII bytes"));
        }
        self.array.data = range;
        Ok(())
    }

    /// A `cvParam` or `userParam`, routed as mzdata's `empty_element` routes it.
    fn param(&mut self, content: &[u8]) -> Lean<()> {
        let param = inline_param(content)?;
        self.route(&param, false)
    }

    /// A `referenceableParamGroupRef`: the group's parameters, as mzdata's
    /// `fill_param_into` routes them (as inline ones in the states allowed here, but for
    /// activation energies).
    fn group(&mut self, content: &[u8]) -> Lean<()> {
        let context = self.context;
        for (key, value) in attributes_checked(content)? {
            if key != b"ref" {
                continue;
            }
            let id = plain(value)?;
            let params = context
                .param_groups
                .get(id)
                .ok_or(Unsure("a reference to an undefined param group"))?;
            for param in params {
                self.route(param, true)?;
            }
        }
        Ok(())
    }

    fn route(&mut self, param: &impl AnyParam, from_group: bool) -> Lean<()> {
        // mzdata unwraps the vocabulary of any param with an accession in several places.
        if param.accession().is_some() && param.cv().is_none() {
            return Err(Unsure("an accession without a known cvRef"));
        }
        if from_group
            && !matches!(
                self.state,
                State::Spectrum
                    | State::Activation
                    | State::BinaryDataArray
                    | State::BinaryDataArrayList
                    | State::Binary
                    | State::Precursor
                    | State::PrecursorList
            )
        {
            return Err(Unsure("a param group where this parser does not expand it"));
        }
        match self.state {
            State::Start | State::Done => Err(Unsure("a param outside the spectrum")),
            State::Spectrum => {
                match param.name() {
                    b"ms level" => {
                        let level = param
                            .to_i64()
                            .ok_or(Unsure("an ms level that is not a number"))?;
                        self.ms_level = level as i32 as u8;
                    }
                    b"positive scan" => self.polarity = ScanPolarity::Positive,
                    b"negative scan" => self.polarity = ScanPolarity::Negative,
                    b"profile spectrum" => self.continuity = SignalContinuity::Profile,
                    b"centroid spectrum" => self.continuity = SignalContinuity::Centroid,
                    _ => {}
                }
                Ok(())
            }
            State::ScanList
            | State::PrecursorList
            | State::Precursor
            | State::BinaryDataArrayList
            | State::Binary => Ok(()),
            State::Scan => {
                if self.scans == 0 {
                    return Err(Unsure("scan content without a scan"));
                }
                match param.name() {
                    b"scan start time" => {
                        let value = param
                            .to_f64()
                            .ok_or(Unsure("a scan start time that is not a number"))?;
                        let minutes = match param.unit()? {
                            (Unit::Minute, _) => value,
                            (Unit::Second, _) => value / 60.0,
                            (Unit::Millisecond, _) => value / 60000.0,
                            // mzdata reads a time without a unit as minutes.
                            (_, false) => value,
                            (_, true) => return Err(Unsure("a scan start time in another unit")),
                        };
                        if self.scans == 1 {
                            self.start_time_minutes = Some(minutes);
                        }
                    }
                    b"ion injection time" => {
                        param.to_f32()?;
                    }
                    _ => self.scan_param(param)?,
                }
                Ok(())
            }
            State::ScanWindowList => {
                if self.scans == 0 {
                    return Err(Unsure("scan content without a scan"));
                }
                self.scan_param(param)
            }
            State::ScanWindow => {
                if self.scans == 0 {
                    return Err(Unsure("scan content without a scan"));
                }
                if self.windows_in_last_scan == 0 {
                    // mzdata adds a window to fill, whatever the param.
                    self.windows_in_last_scan = 1;
                    if self.scans == 1 {
                        self.first_window = Some((0.0, 0.0));
                    }
                }
                let lower = match param.name() {
                    b"scan window lower limit" => true,
                    b"scan window upper limit" => false,
                    _ => return Ok(()),
                };
                let value = param.to_f32()?;
                if self.scans == 1 && self.windows_in_last_scan == 1 {
                    if let Some(window) = self.first_window.as_mut() {
                        if lower {
                            window.0 = value;
                        } else {
                            window.1 = value;
                        }
                    }
                }
                Ok(())
            }
            State::IsolationWindow => {
                let precursor = self.precursor()?;
                isolation_param(&mut precursor.window_state, param)
            }
            State::SelectedIon | State::SelectedIonList => {
                let precursor = self.precursor()?;
                let ion = precursor.ion.get_or_insert((0.0, 0.0, None));
                match param.name() {
                    b"selected ion m/z" => {
                        ion.0 = param
                            .to_f64()
                            .ok_or(Unsure("a selected ion m/z that is not a number"))?;
                    }
                    b"peak intensity" => ion.1 = param.to_f32()?,
                    b"charge state" => {
                        let charge = param
                            .to_i64()
                            .ok_or(Unsure("a charge state that is not a number"))?;
                        ion.2 = Some(charge as i32);
                    }
                    _ => {}
                }
                Ok(())
            }
            State::Activation => {
                self.precursor()?;
                // Only a group's energy is converted (mzdata panics if it is no number).
                if from_group && matches!(param.name(), b"collision energy" | b"activation energy")
                {
                    param.to_f32()?;
                }
                Ok(())
            }
            State::BinaryDataArray => {
                if !self.in_array {
                    return Err(Unsure("array content outside a <binaryDataArray>"));
                }
                if param.cv() != Some(ControlledVocabulary::MS) {
                    return Ok(());
                }
                let Some(accession) = param.accession() else {
                    return Err(Unsure("an MS param without an accession"));
                };
                array_param(&mut self.array, accession, param)
            }
        }
    }

    fn finish(self) -> Lean<LeanSpectrum> {
        if self.state != State::Done {
            return Err(Unsure("the element did not close"));
        }
        let encoded = |array: Option<ArrayBuilder>| -> Lean<Option<EncodedArray>> {
            let Some(array) = array else {
                return Ok(None);
            };
            let Some(compression) = array.compression else {
                return Err(Unsure("an array encoding this parser does not decode"));
            };
            if !matches!(
                array.dtype,
                BinaryDataArrayType::Float64
                    | BinaryDataArrayType::Float32
                    | BinaryDataArrayType::Int64
                    | BinaryDataArrayType::Int32
            ) {
                return Err(Unsure("an array value type this parser does not decode"));
            }
            Ok(Some(EncodedArray {
                data: array.data,
                dtype: array.dtype,
                compression,
            }))
        };
        let precursor = (self.precursors > 0).then(|| {
            let mut precursor = self.first_precursor;
            let window = precursor.window_state;
            precursor.window = (window.target, window.lower, window.upper);
            precursor
        });
        if self.mobility_arrays > 1 {
            return Err(Unsure("several ion mobility arrays"));
        }
        let mobility = match self.mobility {
            Some(array) => {
                let ArrayName::Mobility(kind, unit) = array.name else {
                    return Err(Unsure("an ion mobility array without its kind"));
                };
                encoded(Some(array))?.map(|encoded| (encoded, kind, unit))
            }
            None => None,
        };
        let scan_mobility = ScanMobilityKind::ALL
            .iter()
            .zip(self.scan_mobility)
            .find_map(|(&kind, value)| value.map(|value| (value, kind)));
        Ok(LeanSpectrum {
            native_id: self.native_id,
            ms_level: self.ms_level,
            start_time_minutes: self.start_time_minutes,
            polarity: self.polarity,
            continuity: self.continuity,
            precursor,
            precursor_ref: self.precursor_ref,
            scan_window: self.first_window,
            has_arrays: self.has_arrays,
            mz: encoded(self.mz)?,
            intensity: encoded(self.intensity)?,
            mobility,
            scan_mobility,
        })
    }

    /// A parameter of the first scan that is not its start or injection time: mzdata keeps
    /// it among the scan's parameters, where `IonMobilityMeasure::ion_mobility` finds the
    /// first parameter of each mobility term.
    fn scan_param(&mut self, param: &impl AnyParam) -> Lean<()> {
        if self.scans != 1 || param.cv() != Some(ControlledVocabulary::MS) {
            return Ok(());
        }
        let Some(accession) = param.accession() else {
            return Ok(());
        };
        let Some(slot) = ScanMobilityKind::ALL
            .iter()
            .position(|kind| kind.accession() == accession)
        else {
            return Ok(());
        };
        if self.scan_mobility[slot].is_none() {
            // mzdata logs a value it cannot convert and gives no mobility at all.
            let value = param
                .to_f64()
                .ok_or(Unsure("an ion mobility that is not a number"))?;
            self.scan_mobility[slot] = Some(value);
        }
        Ok(())
    }
}

/// An isolation window parameter, as mzdata's `populate_isolation_window` applies it.
fn isolation_param(window: &mut WindowState, param: &impl AnyParam) -> Lean<()> {
    #[derive(Clone, Copy)]
    enum Field {
        Target,
        LowerOffset,
        UpperOffset,
        LowerLimit,
        UpperLimit,
        NoIsolation,
    }
    let field = match (param.cv(), param.accession()) {
        (Some(cv), Some(accession)) => {
            if cv != ControlledVocabulary::MS {
                return Ok(());
            }
            match accession {
                1000827 => Field::Target,
                1000828 => Field::LowerOffset,
                1000829 => Field::UpperOffset,
                1000794 => Field::LowerLimit,
                1000793 => Field::UpperLimit,
                1003159 => Field::NoIsolation,
                _ => return Ok(()),
            }
        }
        _ => match param.name() {
            b"isolation window target m/z" => Field::Target,
            b"isolation window lower offset" => Field::LowerOffset,
            b"isolation window upper offset" => Field::UpperOffset,
            _ => return Ok(()),
        },
    };
    let value = match field {
        Field::NoIsolation => 0.0,
        _ => param.to_f32()?,
    };
    match field {
        Field::Target => window.target(value),
        Field::LowerOffset => window.offset(true, value)?,
        Field::UpperOffset => window.offset(false, value)?,
        Field::LowerLimit => window.limit(true, value),
        Field::UpperLimit => window.limit(false, value),
        Field::NoIsolation => window.flags = WindowFlags::NoIsolation,
    }
    Ok(())
}

/// An MS param of a `<binaryDataArray>`, as mzdata's `fill_binary_data_array` reads it (the
/// last compression term stands), but for "zlib compression" after a Numpress term: the two
/// together are Numpress followed by zlib, as the combined terms say, where mzdata would
/// keep zlib alone and read Numpress bytes as values.
/// [`mzdata_compression_repairs`] gives mzdata's reading the same answer.
fn array_param(array: &mut ArrayBuilder, accession: u32, param: &impl AnyParam) -> Lean<()> {
    use BinaryCompressionType as C;
    use IonMobilityKind as K;
    // mzdata names the array after the term and takes the term's unit as the array's.
    let mobility = |kind| -> Lean<ArrayName> { Ok(ArrayName::Mobility(kind, param.unit()?.0)) };
    match accession {
        1000576 => array.compression = Some(C::NoCompression),
        1000574 => {
            array.compression = Some(match array.compression {
                Some(C::NumpressLinear) => C::NumpressLinearZlib,
                Some(C::NumpressPIC) => C::NumpressPICZlib,
                Some(C::NumpressSLOF) => C::NumpressSLOFZlib,
                _ => C::Zlib,
            })
        }
        1002312 => array.compression = Some(C::NumpressLinear),
        1002313 => array.compression = Some(C::NumpressPIC),
        1002314 => array.compression = Some(C::NumpressSLOF),
        1002746 => array.compression = Some(C::NumpressLinearZlib),
        1002747 => array.compression = Some(C::NumpressPICZlib),
        1002748 => array.compression = Some(C::NumpressSLOFZlib),
        // Encodings mzdata knows and this parser does not decode: delta and linear
        // prediction, Zstd and its variants.
        1003089 | 1003090 | 1003780 | 1003781 | 1003782 | 1003783 | 1003785 | 9999999 => {
            array.compression = None
        }
        1000523 => array.dtype = BinaryDataArrayType::Float64,
        1000521 => array.dtype = BinaryDataArrayType::Float32,
        1000522 => array.dtype = BinaryDataArrayType::Int64,
        1000519 => array.dtype = BinaryDataArrayType::Int32,
        1001479 => array.dtype = BinaryDataArrayType::ASCII,
        1000514 => array.name = ArrayName::Mz,
        1000515 => array.name = ArrayName::Intensity,
        1002816 => array.name = mobility(K::MeanIonMobility)?,
        1002477 => array.name = mobility(K::MeanDriftTime)?,
        1003006 => array.name = mobility(K::MeanInverseReducedIonMobility)?,
        1003007 => array.name = mobility(K::RawIonMobility)?,
        1003153 => array.name = mobility(K::RawDriftTime)?,
        1003008 => array.name = mobility(K::RawInverseReducedIonMobility)?,
        // mzdata 0.68 reads both terms as its deconvoluted drift time array.
        1003154 | 1003156 => array.name = mobility(K::DeconvolutedDriftTime)?,
        1003155 => array.name = mobility(K::DeconvolutedInverseReducedIonMobility)?,
        1000786 if param.value_is("Ion Mobility")? => array.name = mobility(K::OpenMsIonMobility)?,
        1000516 | 1000517 | 1000595 | 1000617 | 1000786 | 1003157 | 1003158 | 1003870 => {
            array.name = ArrayName::Other
        }
        _ => {}
    }
    Ok(())
}

/// Where the start tag beginning at `at` (its `<`) ends: the index of its `>` (quoted
/// values may hold `>`).
fn tag_end(bytes: &[u8], at: usize) -> Option<usize> {
    // Mostly the first `>` ends the tag: it does unless a quote is open there, and with no
    // single quote before it and an even number of double quotes, none is. One search and
    // two counts instead of two searches per quoted value.
    let gt = at + 1 + memchr(b'>', &bytes[at + 1..])?;
    let inside = &bytes[at + 1..gt];
    if memchr(b'\'', inside).is_none() && inside.iter().filter(|&&b| b == b'"').count() % 2 == 0 {
        return Some(gt);
    }
    tag_end_by_quotes(bytes, at)
}

/// Where an empty parameter tag (`cvParam`, `userParam`, `referenceableParamGroupRef`, the
/// most common tags) beginning at `at` ends, if the first `>` ends one: every attribute of these
/// is read strictly ([`Attributes`]), and a `>` inside a quoted value would leave that value
/// unclosed, which the reader refuses. So unlike [`tag_end`] this needs no look at the quotes.
fn param_tag_end(bytes: &[u8], at: usize) -> Option<usize> {
    let gt = at + 1 + memchr(b'>', &bytes[at + 1..])?;
    let tag = &bytes[at + 1..gt];
    let is_param = crate::io::mzml_split::PARAM_TAGS.iter().any(|name| {
        tag.strip_prefix(*name)
            .is_some_and(|rest| rest.first().is_some_and(|&b| is_space(b)))
    });
    (is_param && tag.ends_with(b"/")).then_some(gt)
}

/// [`tag_end`] by skipping quoted values one by one.
fn tag_end_by_quotes(bytes: &[u8], at: usize) -> Option<usize> {
    let mut k = at + 1;
    loop {
        let j = memchr3(b'>', b'"', b'\'', &bytes[k..])?;
        let b = bytes[k + j];
        if b == b'>' {
            return Some(k + j);
        }
        let close = memchr(b, &bytes[k + j + 1..])?;
        k += j + 1 + close + 1;
    }
}

/// Parses one `<spectrum>` element, or says why it is left to mzdata.
pub(crate) fn parse(xml: &[u8], context: &ParseContext) -> Lean<LeanSpectrum> {
    check_references(xml)?;
    let mut builder = Builder::new(context);
    // The open elements, for quick-xml's check that end tags match.
    let mut open: Vec<&[u8]> = Vec::with_capacity(16);
    let mut pos = 0;
    while builder.state != State::Done {
        let Some(j) = memchr(b'<', &xml[pos..]) else {
            return Err(Unsure("the element ends before it closes"));
        };
        let at = pos + j;
        builder.text(xml, pos..at)?;
        match xml.get(at + 1) {
            Some(b'!') | Some(b'?') => {
                return Err(Unsure("a comment, CDATA section or processing instruction"))
            }
            Some(b'/') => {
                let end = memchr(b'>', &xml[at..])
                    .map(|k| at + k)
                    .ok_or(Unsure("an unclosed end tag"))?;
                let name = &xml[trim(xml, at + 2..end)];
                if xml.get(at + 2).is_some_and(|&b| is_space(b)) {
                    return Err(Unsure("space before an end tag's name"));
                }
                if open.pop() != Some(name) {
                    return Err(Unsure("an end tag that does not match"));
                }
                builder.end(tag_of(name))?;
                pos = end + 1;
            }
            Some(_) => {
                let end = param_tag_end(xml, at)
                    .or_else(|| tag_end(xml, at))
                    .ok_or(Unsure("an unclosed start tag"))?;
                let (content, empty) = match xml[at + 1..end].strip_suffix(b"/") {
                    Some(content) => (content, true),
                    None => (&xml[at + 1..end], false),
                };
                let name_len = content
                    .iter()
                    .position(|&b| is_space(b))
                    .unwrap_or(content.len());
                let (name, attributes) = content.split_at(name_len);
                if name.is_empty() {
                    return Err(Unsure("a tag without a name"));
                }
                if builder.state == State::Binary {
                    return Err(Unsure("markup inside <binary>"));
                }
                if builder.state == State::Start && (name != b"spectrum" || empty) {
                    return Err(Unsure("not a <spectrum> element"));
                }
                match (name, empty) {
                    (b"cvParam" | b"userParam", true) => builder.param(attributes)?,
                    (b"referenceableParamGroupRef", true) => builder.group(attributes)?,
                    (b"cvParam" | b"userParam" | b"referenceableParamGroupRef", false) => {
                        return Err(Unsure("a parameter written with an end tag"))
                    }
                    _ => builder.start(tag_of(name), attributes, empty)?,
                }
                if !empty {
                    open.push(name);
                }
                pos = end + 1;
            }
            None => return Err(Unsure("the element ends with '<'")),
        }
    }
    if !open.is_empty() || xml[pos..].iter().any(|&b| !is_space(b)) {
        return Err(Unsure("markup after the spectrum closes"));
    }
    builder.finish()
}

/// The arrays of a spectrum element that list "zlib compression" after a Numpress term (the
/// m/z, intensity and ion mobility arrays, as the lean parser reads them, with their
/// compression):
/// mzdata keeps zlib alone for them. Empty, without parsing, for an element that names no
/// Numpress term, itself or through a parameter group.
pub(crate) fn mzdata_compression_repairs(
    xml: &[u8],
    context: &ParseContext,
) -> Vec<(ArrayType, BinaryCompressionType)> {
    use BinaryCompressionType as C;
    let names = |needle: &str| memchr::memmem::find(xml, needle.as_bytes()).is_some();
    if !names("MS:100231") && !names("referenceableParamGroupRef") {
        return Vec::new();
    }
    let Ok(spectrum) = parse(xml, context) else {
        return Vec::new();
    };
    let mobility = spectrum
        .mobility
        .map(|(array, kind, _)| (super::decode::mobility_array_type(kind), Some(array)));
    [
        (ArrayType::MZArray, spectrum.mz),
        (ArrayType::IntensityArray, spectrum.intensity),
    ]
    .into_iter()
    .chain(mobility)
    .filter_map(|(kind, array)| {
        let compression = array?.compression;
        matches!(
            compression,
            C::NumpressLinearZlib | C::NumpressPICZlib | C::NumpressSLOFZlib
        )
        .then_some((kind, compression))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::io::meta::{lean_meta, meta_of};
    use crate::io::mzml_split::SpectrumXml;

    fn context() -> ParseContext {
        let mut groups = HashMap::new();
        groups.insert(
            "ms2".to_string(),
            vec![
                ControlledVocabulary::MS.param_val(1000511, "ms level", 2),
                ControlledVocabulary::MS.param(1000127, "centroid spectrum"),
            ],
        );
        groups.insert(
            "mz64".to_string(),
            vec![
                ControlledVocabulary::MS.param(1000523, "64-bit float"),
                ControlledVocabulary::MS.param(1000576, "no compression"),
                ControlledVocabulary::MS.param(1000514, "m/z array"),
            ],
        );
        ParseContext::new(PathBuf::from("test.mzML"), b"", groups, None)
    }

    /// Wraps spectrum content in a `<spectrum>` element with two small arrays.
    fn element(id: &str, content: &str) -> String {
        format!(
            r#"<spectrum index="0" id="{id}" defaultArrayLength="2">{content}
  <binaryDataArrayList count="2">
    <binaryDataArray encodedLength="24">
      <cvParam cvRef="MS" accession="MS:1000523" name="64-bit float"/>
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression"/>
      <cvParam cvRef="MS" accession="MS:1000514" name="m/z array" unitCvRef="MS" unitAccession="MS:1040000" unitName="m/z"/>
      <binary>AAAAAAAAWUAAAAAAAABpQA==</binary>
    </binaryDataArray>
    <binaryDataArray encodedLength="12">
      <cvParam cvRef="MS" accession="MS:1000521" name="32-bit float"/>
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression"/>
      <cvParam cvRef="MS" accession="MS:1000515" name="intensity array"/>
      <binary>AACAPwAAAEA=</binary>
    </binaryDataArray>
  </binaryDataArrayList>
</spectrum>"#
        )
    }

    /// The lean parse, checked against mzdata's: the same metadata (NaN and signed zeros
    /// compared by their text).
    fn lean_equals_mzdata(xml: &str) -> LeanSpectrum {
        let context = context();
        let lean = parse(xml.as_bytes(), &context).unwrap_or_else(|e| panic!("{e:?}: {xml}"));
        let theirs = SpectrumXml {
            start: 0,
            xml: bytes::Bytes::copy_from_slice(xml.as_bytes()),
        }
        .parse(&context)
        .unwrap();
        assert_eq!(
            format!("{:?}", lean_meta(7, &lean)),
            format!("{:?}", meta_of(7, &theirs)),
            "{xml}"
        );
        lean
    }

    fn unsure(xml: &str) -> &'static str {
        match parse(xml.as_bytes(), &context()) {
            Ok(lean) => panic!("parsed: {lean:?}"),
            Err(Unsure(why)) => why,
        }
    }

    const MS2: &str = r#"
  <cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="2"/>
  <cvParam cvRef="MS" accession="MS:1000130" name="positive scan" value=""/>
  <cvParam cvRef="MS" accession="MS:1000128" name="profile spectrum" value=""/>"#;

    fn with_scan(time: &str) -> String {
        element(
            "s",
            &format!(
                r#"{MS2}<scanList count="1"><scan>{time}<scanWindowList count="1"><scanWindow>
  <cvParam cvRef="MS" accession="MS:1000501" name="scan window lower limit" value="100" unitCvRef="MS" unitAccession="MS:1040000" unitName="m/z"/>
  <cvParam cvRef="MS" accession="MS:1000500" name="scan window upper limit" value="2000.5"/>
</scanWindow></scanWindowList></scan></scanList>"#
            ),
        )
    }

    proptest::proptest! {
        #[test]
        fn tag_end_equals_skipping_quoted_values(
            tag in proptest::collection::vec(
                proptest::sample::select(b"a =\"'>/".to_vec()), 0..40),
        ) {
            let mut bytes = b"<".to_vec();
            bytes.extend(&tag);
            proptest::prop_assert_eq!(tag_end(&bytes, 0), tag_end_by_quotes(&bytes, 0));
        }
    }

    /// An empty parameter tag ends at its first `/>` without a look at the quotes: one inside
    /// a quoted value leaves the value unclosed, and the element goes to mzdata. Any other `>`
    /// in a value is found quoted, as in every other tag.
    #[test]
    fn a_parameter_with_a_quoted_gt_is_read_as_mzdata_reads_it_or_left_to_mzdata() {
        for param in [
            r#"<userParam name="filter string" value="a/>b"/>"#,
            r#"<userParam name="filter string" value='a"/>b'/>"#,
            r#"<cvParam cvRef="MS" accession="MS:1000016" name="x" value="1" unitName="/>"/>"#,
            r#"<referenceableParamGroupRef ref="ms2/>"/>"#,
        ] {
            let xml = element("s", &format!("{MS2}{param}"));
            assert_eq!(
                unsure(&xml),
                "an attribute quick-xml may not accept",
                "{param}"
            );
        }
        // Well-formed XML, which mzdata reads.
        let xml = element("s", &format!(r#"{MS2}<userParam name="f" value="a/>b"/>"#));
        let theirs = SpectrumXml {
            start: 0,
            xml: xml.into_bytes().into(),
        }
        .parse(&context());
        assert!(theirs.is_ok());
        for param in [
            r#"<userParam name="filter string" value="a>b"/>"#,
            r#"<userParam name="filter string" value='a">b'/>"#,
            r#"<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="3" unitName=">"/>"#,
        ] {
            lean_equals_mzdata(&element("s", &format!("{MS2}{param}")));
        }
    }

    #[test]
    fn scan_start_time_in_minutes_seconds_milliseconds_or_no_unit() {
        let cases = [
            (
                r#"unitCvRef="UO" unitAccession="UO:0000031" unitName="minute""#,
                1.5,
            ),
            (
                r#"unitCvRef="UO" unitAccession="UO:0000010" unitName="second""#,
                1.5 / 60.0,
            ),
            (r#"unitName="millisecond""#, 1.5 / 60000.0),
            // No unit: mzdata takes minutes.
            ("", 1.5),
        ];
        for (unit, minutes) in cases {
            let time = format!(
                r#"<cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="1.5" {unit}/>"#
            );
            let lean = lean_equals_mzdata(&with_scan(&time));
            assert_eq!(lean.start_time_minutes, Some(minutes), "{unit}");
            assert_eq!(lean.scan_window, Some((100.0, 2000.5)));
            assert_eq!(lean.ms_level, 2);
            assert_eq!(lean.polarity, ScanPolarity::Positive);
            assert_eq!(lean.continuity, SignalContinuity::Profile);
        }
        // A unit mzdata does not convert (it would warn and take minutes): left to mzdata.
        let hours = r#"<cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="1.5" unitAccession="UO:0000032"/>"#;
        assert_eq!(
            unsure(&with_scan(hours)),
            "a scan start time in another unit"
        );
        // Units are looked up only where used: both orders of the two unit attributes (the
        // last wins, as in mzdata), and an entity in the unit of a parameter nothing reads.
        let last_wins = r#"<cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="90" unitName="minute" unitAccession="UO:0000010"/>"#;
        assert_eq!(
            lean_equals_mzdata(&with_scan(last_wins)).start_time_minutes,
            Some(1.5)
        );
        let entity_unused = r#"<cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="1.5"/>
  <cvParam cvRef="MS" accession="MS:1000927" name="ion injection time" value="2" unitName="milli&amp;second"/>"#;
        assert_eq!(
            lean_equals_mzdata(&with_scan(entity_unused)).start_time_minutes,
            Some(1.5)
        );
        let entity_used = r#"<cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="1.5" unitName="min&#117;te"/>"#;
        assert_eq!(
            unsure(&with_scan(entity_used)),
            "an attribute value with entities or non-ASCII bytes"
        );
        // A unit accession that is not UTF-8 fails mzdata's parse even where nothing reads it.
        let accession_unused = r#"<cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="1.5"/>
  <cvParam cvRef="MS" accession="MS:1000927" name="ion injection time" value="2" unitAccession="UO:#"/>"#;
        let xml: Vec<u8> = with_scan(accession_unused)
            .into_bytes()
            .into_iter()
            .map(|b| if b == b'#' { 0xff } else { b })
            .collect();
        match parse(&xml, &context()) {
            Err(Unsure(why)) => {
                assert_eq!(why, "an attribute value with entities or non-ASCII bytes")
            }
            Ok(lean) => panic!("parsed: {lean:?}"),
        }
    }

    fn with_precursor(window: &str, ions: &str) -> String {
        element(
            "p",
            &format!(
                r#"{MS2}<precursorList count="1"><precursor spectrumRef="scan=1">
<isolationWindow>{window}</isolationWindow>
<selectedIonList count="1">{ions}</selectedIonList>
<activation><cvParam cvRef="MS" accession="MS:1000133" name="collision-induced dissociation" value=""/></activation>
</precursor></precursorList>"#
            ),
        )
    }

    fn window_param(accession: u32, name: &str, value: f32) -> String {
        format!(r#"<cvParam cvRef="MS" accession="MS:{accession}" name="{name}" value="{value}"/>"#)
    }

    #[test]
    fn isolation_window_offsets_resolve_as_in_mzdata_whatever_their_order() {
        let target = window_param(1000827, "isolation window target m/z", 500.25);
        let lower = window_param(1000828, "isolation window lower offset", 1.5);
        let upper = window_param(1000829, "isolation window upper offset", 2.0);
        let no_lower = window_param(1000828, "isolation window lower offset", 0.0);
        let ion = r#"<selectedIon><cvParam cvRef="MS" accession="MS:1000744" name="selected ion m/z" value="500.3"/>
<cvParam cvRef="MS" accession="MS:1000041" name="charge state" value="2"/>
<cvParam cvRef="MS" accession="MS:1000042" name="peak intensity" value="1e4"/></selectedIon>"#;
        let orders = [
            format!("{target}{lower}{upper}"),
            format!("{lower}{upper}{target}"),
            format!("{upper}{target}{lower}"),
            target.clone(),
            format!("{lower}{upper}"),
            // A zero offset before the target stays zero (mzdata's rule).
            format!("{no_lower}{upper}{target}"),
        ];
        for order in &orders {
            let lean = lean_equals_mzdata(&with_precursor(order, ion));
            let precursor = lean.precursor.unwrap();
            assert_eq!(precursor.ion, Some((500.3, 1e4, Some(2))), "{order}");
        }
        let lean = lean_equals_mzdata(&with_precursor(&orders[1], ion));
        assert_eq!(lean.precursor.unwrap().window, (500.25, 498.75, 502.25));
        // Explicit limits (deprecated terms) then an offset, without a target: mzdata panics.
        let limit = window_param(1000793, "isolation window upper limit", 510.0);
        assert_eq!(
            unsure(&with_precursor(&format!("{limit}{lower}"), ion)),
            "isolation window offsets after limits without a target"
        );
        lean_equals_mzdata(&with_precursor(&format!("{target}{limit}{lower}"), ion));
    }

    #[test]
    fn several_precursors_and_ions_are_read_as_mzdata_reads_them() {
        let ion = |mz: f64, z: i32| {
            format!(
                r#"<selectedIon><cvParam cvRef="MS" accession="MS:1000744" name="selected ion m/z" value="{mz}"/><cvParam cvRef="MS" accession="MS:1000041" name="charge state" value="{z}"/></selectedIon>"#
            )
        };
        // Every selected ion of a precursor writes into its first ion: the last one wins.
        let two_ions = format!("{}{}", ion(400.0, 2), ion(600.0, 3));
        let xml = with_precursor("", &two_ions);
        let lean = lean_equals_mzdata(&xml);
        assert_eq!(lean.precursor.unwrap().ion, Some((600.0, 0.0, Some(3))));
        // The first precursor counts.
        let second = format!(
            r#"</precursor><precursor><selectedIonList count="1">{}</selectedIonList>"#,
            ion(700.0, 4)
        );
        let xml = with_precursor(
            "",
            &format!(
                "{}</selectedIonList>{second}<selectedIonList>",
                ion(400.0, 2)
            ),
        );
        let lean = lean_equals_mzdata(&xml);
        assert_eq!(lean.precursor.unwrap().ion, Some((400.0, 0.0, Some(2))));
        // A precursor without an ion, and no precursor at all.
        let lean = lean_equals_mzdata(&with_precursor("", ""));
        assert_eq!(lean.precursor.unwrap().ion, None);
        assert!(lean_equals_mzdata(&element("x", MS2)).precursor.is_none());
    }

    #[test]
    fn a_parameter_with_an_end_tag_is_left_to_mzdata_which_reads_it() {
        let with_end_tags = element("e", MS2).replace(
            r#"name="ms level" value="2"/>"#,
            r#"name="ms level" value="2"></cvParam>"#,
        );
        assert!(with_end_tags.contains("</cvParam>"));
        assert_eq!(
            unsure(&with_end_tags),
            "a parameter written with an end tag"
        );
        let theirs = SpectrumXml {
            start: 0,
            xml: bytes::Bytes::copy_from_slice(with_end_tags.as_bytes()),
        }
        .parse(&context())
        .unwrap();
        assert_eq!(theirs.description.ms_level, 2);
    }

    #[test]
    fn param_groups_expand_in_place() {
        let xml = element(
            "g",
            r#"<referenceableParamGroupRef ref="ms2"/><cvParam cvRef="MS" accession="MS:1000128" name="profile spectrum" value=""/>"#,
        );
        let lean = lean_equals_mzdata(&xml);
        assert_eq!(lean.ms_level, 2);
        // The inline param comes after the group's centroid flag, and wins.
        assert_eq!(lean.continuity, SignalContinuity::Profile);
        let in_array = element("g", "").replacen(
            r#"<cvParam cvRef="MS" accession="MS:1000523" name="64-bit float"/>
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression"/>
      <cvParam cvRef="MS" accession="MS:1000514" name="m/z array" unitCvRef="MS" unitAccession="MS:1040000" unitName="m/z"/>"#,
            r#"<referenceableParamGroupRef ref="mz64"/>"#,
            1,
        );
        assert!(in_array.contains("mz64"));
        let lean = lean_equals_mzdata(&in_array);
        let mz = lean.mz.unwrap();
        assert_eq!(mz.dtype, BinaryDataArrayType::Float64);
        assert_eq!(&in_array.as_bytes()[mz.data], b"AAAAAAAAWUAAAAAAAABpQA==");
        // An undefined group (mzdata panics), or one inside a scan: left to mzdata.
        assert_eq!(
            unsure(&element("g", r#"<referenceableParamGroupRef ref="nope"/>"#)),
            "a reference to an undefined param group"
        );
        assert_eq!(
            unsure(&element(
                "g",
                r#"<scanList><scan><referenceableParamGroupRef ref="ms2"/></scan></scanList>"#
            )),
            "a param group where this parser does not expand it"
        );
    }

    #[test]
    fn entities_in_the_id_come_out_as_mzdata_gives_them() {
        for id in [
            "controllerType=0 controllerNumber=1 scan=7",
            "a&amp;b &lt;c&gt; &quot;d&apos;",
            "tab&#9;and&#x41;",
            "line\nbreak\ttab",
        ] {
            let lean = lean_equals_mzdata(&element(id, MS2));
            assert!(!lean.native_id.contains("&amp;"), "{}", lean.native_id);
        }
        assert_eq!(
            lean_equals_mzdata(&element("a&amp;b", MS2)).native_id,
            "a&b"
        );
    }

    #[test]
    fn anything_odd_is_left_to_mzdata() {
        let ok = element("s", MS2);
        lean_equals_mzdata(&ok);
        let cases = [
            (
                ok.replace(MS2, &format!("{MS2}<!-- c -->")),
                "a comment, CDATA section or processing instruction",
            ),
            (
                ok.replace("AACAPwAAAEA=", "<![CDATA[AACAPwAAAEA=]]>"),
                "a comment, CDATA section or processing instruction",
            ),
            (
                ok.replace("AACAPwAAAEA=", "AACA<b/>PwAAAEA="),
                "markup inside <binary>",
            ),
            (
                ok.replace("MS:1000576\" name=\"no compression\"/>\n      <cvParam cvRef=\"MS\" accession=\"MS:1000515\"",
                           "MS:1003780\" name=\"zstd\"/>\n      <cvParam cvRef=\"MS\" accession=\"MS:1000515\""),
                "an array encoding this parser does not decode",
            ),
            (
                ok.replace(r#"<cvParam cvRef="MS" accession="MS:1000521" name="32-bit float"/>"#, ""),
                "an array value type this parser does not decode",
            ),
            (
                ok.replace(r#"value="2"/>"#, r#"value="two"/>"#),
                "an ms level that is not a number",
            ),
            (
                ok.replace("</binaryDataArrayList>", "</binaryDataArrayLis>"),
                "an end tag that does not match",
            ),
            (
                ok.replace(r#"name="ms level" value="2""#, r#"name="ms level" value="2" value="3""#),
                "a repeated attribute",
            ),
            (
                ok.replace(r#"name="positive scan""#, r#"name="positive&#32;scan""#),
                "a parameter name with entities or control characters",
            ),
            (
                ok.replace(r#"name="positive scan""#, "name=\"positive\x0bscan\""),
                "a parameter name with entities or control characters",
            ),
            (
                ok.replace(r#"value="2"/>"#, r#"value="&#50;"/>"#),
                "an ms level that is not a number",
            ),
            (ok.replace("</spectrum>", ""), "the element ends before it closes"),
            (
                ok.replace(MS2, &format!("{MS2}<userParam name=\"note\" value=\"A & B\"/>")),
                "a reference that is not a well-formed XML reference",
            ),
            (
                ok.replace("AACAPwAAAEA=", "AACAPwAAAEA=&#0;"),
                "a reference that is not a well-formed XML reference",
            ),
            (
                ok.replace(r#"name="positive scan""#, r#"name="positive&nbsp;scan""#),
                "a reference that is not a well-formed XML reference",
            ),
            (
                ok.replace(r#"cvRef="MS" accession="MS:1000511""#, r#"cvRef="XX" accession="MS:1000511""#),
                "an accession without a known cvRef",
            ),
        ];
        for (xml, why) in cases {
            assert_ne!(xml, ok, "{why}");
            assert_eq!(unsure(&xml), why, "{xml}");
        }
    }

    #[test]
    fn what_mzdata_ignores_is_ignored() {
        // Empty structural elements, unknown elements and an array that is neither m/z,
        // intensity nor ion mobility: mzdata skips them, and so does this parser. (A cvParam
        // with an end tag is read, by mzdata:
        // `a_parameter_with_an_end_tag_is_left_to_mzdata_which_reads_it`.)
        let xml = element(
            "i",
            &format!(
                r#"{MS2}
<scanList count="1"/><precursorList count="0"/><product><isolationWindow/></product><foo a=b><bar/></foo>"#
            ),
        )
        .replace(
            "</binaryDataArrayList>",
            r#"<binaryDataArray><cvParam cvRef="MS" accession="MS:1000517" name="signal to noise array"/>
<cvParam cvRef="MS" accession="MS:1003780" name="zstd"/><binary>////</binary></binaryDataArray></binaryDataArrayList>"#,
        );
        let lean = lean_equals_mzdata(&xml);
        assert!(lean.mobility.is_none() && lean.scan_mobility.is_none());
        assert_eq!(lean.ms_level, 2);
        assert!(lean.precursor.is_none());
        assert!(lean.mz.is_some() && lean.intensity.is_some());
        // An element without arrays, and one with an empty <binary/>.
        let bare = r#"<spectrum index="0" id="b"><cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/></spectrum>"#;
        assert!(!lean_equals_mzdata(bare).has_arrays);
        let empty = element("e", MS2).replace("<binary>AACAPwAAAEA=</binary>", "<binary/>");
        assert_eq!(lean_equals_mzdata(&empty).intensity.unwrap().data, 0..0);
    }

    /// `element` with a third array: ion mobility named by `term` (a `cvParam`'s attributes
    /// after `accession=`), 32-bit, uncompressed, two values.
    fn with_mobility(term: &str) -> String {
        element("m", MS2).replace(
            "</binaryDataArrayList>",
            &format!(
                r#"<binaryDataArray encodedLength="12">
<cvParam cvRef="MS" accession="MS:1000521" name="32-bit float"/>
<cvParam cvRef="MS" accession="MS:1000576" name="no compression"/>
<cvParam cvRef="MS" accession={term}/>
<binary>AABAPwAAYD8=</binary></binaryDataArray></binaryDataArrayList>"#
            ),
        )
    }

    #[test]
    fn ion_mobility_arrays_are_read_as_mzdata_names_them() {
        use IonMobilityKind as K;
        let vs = r#"unitCvRef="MS" unitAccession="MS:1002814" unitName="volt-second per square centimeter""#;
        let cases = [
            (format!(r#""MS:1003006" name="mean inverse reduced ion mobility array" {vs}"#), K::MeanInverseReducedIonMobility, Unit::VoltSecondPerSquareCentimeter),
            (r#""MS:1003006" name="mean inverse reduced ion mobility array""#.to_string(), K::MeanInverseReducedIonMobility, Unit::Unknown),
            (r#""MS:1002816" name="mean ion mobility array""#.to_string(), K::MeanIonMobility, Unit::Unknown),
            (r#""MS:1002477" name="mean ion mobility drift time array" unitCvRef="UO" unitAccession="UO:0000028" unitName="millisecond""#.to_string(), K::MeanDriftTime, Unit::Millisecond),
            (r#""MS:1003007" name="raw ion mobility array""#.to_string(), K::RawIonMobility, Unit::Unknown),
            (r#""MS:1003153" name="raw ion mobility drift time array""#.to_string(), K::RawDriftTime, Unit::Unknown),
            (r#""MS:1003008" name="raw inverse reduced ion mobility array""#.to_string(), K::RawInverseReducedIonMobility, Unit::Unknown),
            (r#""MS:1003154" name="deconvoluted ion mobility array""#.to_string(), K::DeconvolutedDriftTime, Unit::Unknown),
            (r#""MS:1003156" name="deconvoluted ion mobility drift time array""#.to_string(), K::DeconvolutedDriftTime, Unit::Unknown),
            (r#""MS:1003155" name="deconvoluted inverse reduced ion mobility array""#.to_string(), K::DeconvolutedInverseReducedIonMobility, Unit::Unknown),
            (r#""MS:1000786" name="non-standard data array" value="Ion Mobility""#.to_string(), K::OpenMsIonMobility, Unit::Unknown),
        ];
        for (term, kind, unit) in cases {
            let lean = lean_equals_mzdata(&with_mobility(&term));
            let (array, read_kind, read_unit) = lean.mobility.expect(&term);
            assert_eq!((read_kind, read_unit), (kind, unit), "{term}");
            assert_eq!(array.dtype, BinaryDataArrayType::Float32);
        }
        // Another non-standard array, and the unnamed "ion mobility array" mzdata does not
        // read as one: no mobility.
        for term in [
            r#""MS:1000786" name="non-standard data array" value="Ion Charge""#,
            r#""MS:1002893" name="ion mobility array""#,
        ] {
            assert!(lean_equals_mzdata(&with_mobility(term)).mobility.is_none());
        }
    }

    #[test]
    fn mobility_arrays_this_parser_cannot_take_are_left_to_mzdata() {
        let term = r#""MS:1003006" name="mean inverse reduced ion mobility array""#;
        let zstd = with_mobility(term).replace(
            r#"accession="MS:1000576" name="no compression""#,
            r#"accession="MS:1003780" name="zstd""#,
        );
        assert_eq!(
            unsure(&zstd),
            "an array encoding this parser does not decode"
        );
        let two = with_mobility(term).replace(
            "</binaryDataArrayList>",
            r#"<binaryDataArray><cvParam cvRef="MS" accession="MS:1002816" name="mean ion mobility array"/><binary/></binaryDataArray></binaryDataArrayList>"#,
        );
        assert_eq!(unsure(&two), "several ion mobility arrays");
        let entity = with_mobility(
            r#""MS:1000786" name="non-standard data array" value="Ion&#32;Mobility""#,
        );
        assert_eq!(
            unsure(&entity),
            "an attribute value with entities or non-ASCII bytes"
        );
    }

    #[test]
    fn the_first_scans_mobility_is_found_as_mzdata_finds_it() {
        let param = |accession: &str, value: &str| {
            format!(r#"<cvParam cvRef="MS" accession="{accession}" name="x" value="{value}"/>"#)
        };
        let scans = |first: &str, second: &str| {
            element(
                "s",
                &format!(
                    r#"{MS2}<scanList count="2"><scan>{first}<scanWindowList count="0"></scanWindowList></scan><scan>{second}</scan></scanList>"#
                ),
            )
        };
        let found = |xml: String| lean_equals_mzdata(&xml).scan_mobility;
        let k0 = param("MS:1002815", "0.93");
        let drift = param("MS:1002476", "21.5");
        use ScanMobilityKind as K;
        assert_eq!(
            found(scans(&k0, "")),
            Some((0.93, K::InverseReducedIonMobility))
        );
        // Drift time comes first in mzdata's order, wherever it stands.
        assert_eq!(
            found(scans(&(k0.clone() + &drift), "")),
            Some((21.5, K::DriftTime))
        );
        // The first of a term counts; a later scan's does not.
        assert_eq!(
            found(scans(&(k0.clone() + &param("MS:1002815", "1.1")), "")),
            Some((0.93, K::InverseReducedIonMobility))
        );
        assert_eq!(found(scans("", &k0)), None);
        // In the scan window list, mzdata keeps it with the scan's parameters too.
        let in_list = scans("", "").replace(
            "<scanWindowList count=\"0\">",
            &format!("<scanWindowList count=\"0\">{k0}"),
        );
        assert_eq!(found(in_list), Some((0.93, K::InverseReducedIonMobility)));
        assert_eq!(
            found(scans(&param("MS:1001581", "-45"), "")),
            Some((-45.0, K::FaimsCompensationVoltage))
        );
        assert_eq!(
            unsure(&scans(&param("MS:1002815", "fast"), "")),
            "an ion mobility that is not a number"
        );
    }
}
