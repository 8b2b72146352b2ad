//! Reading mzML and MGF. The only module that touches `mzdata`: its types never leave here.
//!
//! Reading is split in three so it can be parallel: [`SpectrumReader`] finds each spectrum in
//! the input sequentially ([`SpectrumReader::next_unparsed`]: for mzML only where each
//! `<spectrum>` element starts and ends, see `mzml_split`); [`UnparsedSpectrum::parse`] parses
//! its XML into a [`RawSpectrum`] whose arrays are still encoded, and [`RawSpectrum::decode`]
//! (base64, zlib, Numpress, byte order) decodes them, both on any thread. The parse reads
//! only what the pipeline needs (`mzml_lean`) and hands any element it is not sure of to
//! mzdata's own spectrum builder.
//! [`SpectrumReader::next_raw`] does the first two steps in one.

use std::fs::File;
use std::io::{BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mzdata::io::mgf::{MGFParserState, MGFReaderType};
use mzdata::io::mzml::{MzMLParserState, MzMLReaderType};
use mzdata::io::DetailLevel;
use mzdata::prelude::*;
use mzdata::spectrum::{
    ArrayType, MultiLayerSpectrum, RefPeakDataLevel, ScanPolarity, SignalContinuity,
};

use crate::digest::InputDigest;
use crate::error::{Error, Result};
use crate::mzml_lean::{self, EncodedArray, IonValues, LeanSpectrum, WindowValues};
use crate::mzml_split::{ParseContext, Piece, SpectrumXml, SplitError, Splitter};
use crate::spectrum::{
    IonMobilityArrayInfo, IonMobilityKind, Polarity, Precursor, ScanMobility, ScanMobilityKind,
    SignalKind, Spectrum, SpectrumMeta,
};
use crate::wording::{agree, count};

/// The formats mzforge reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// mzML (plain or indexed).
    MzML,
    /// Mascot Generic Format.
    Mgf,
    /// mzMLb: mzML in an HDF5 container (builds with the `mzmlb` feature).
    #[serde(rename = "mzmlb")]
    MzMLb,
}

/// Facts about the whole file, known after its header is read.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileInfo {
    /// The format.
    pub format: Option<InputFormat>,
    /// Whether the stream was gzip-compressed.
    pub gzip: bool,
    /// Whether the stream was bzip2-compressed.
    pub bzip2: bool,
    /// The spectrum count the file declares, if any (it can be wrong; it is never trusted).
    pub declared_spectrum_count: Option<u64>,
    /// The instrument models the file header names, each once (serial numbers and the bare
    /// "instrument model" term left out).
    pub instruments: Vec<String>,
}

/// PSI-MS accessions of the instrument configuration's parameters that name no model: the
/// bare "instrument model" term, which converters (OpenMS among them) write when the model is
/// unknown, and the attributes listed beside the model.
const INSTRUMENT_MODEL_UNKNOWN: u32 = 1000031;
const INSTRUMENT_ATTRIBUTES: [u32; 2] = [
    1000529, // instrument serial number
    1000032, // customization
];

/// The instrument models named by the instrument configurations' parameters (their shared
/// parameter groups included), each once, in file order: the model terms' names, and the
/// value of a bare "instrument model" term where it has one. Serial numbers and other
/// attributes are left out, as is a bare term without a value.
fn instrument_models<'a>(params: impl Iterator<Item = &'a mzdata::Param>) -> Vec<String> {
    let mut models: Vec<String> = Vec::new();
    for param in params {
        if param.controlled_vocabulary != Some(mzdata::params::ControlledVocabulary::MS) {
            continue;
        }
        let name = match param.accession {
            Some(code) if INSTRUMENT_ATTRIBUTES.contains(&code) => continue,
            Some(INSTRUMENT_MODEL_UNKNOWN) => param.value.to_string().trim().to_owned(),
            _ => param.name.trim().to_owned(),
        };
        if !name.is_empty() && !models.contains(&name) {
            models.push(name);
        }
    }
    models
}

/// Bounds on what one input can make the reader allocate, so that a hostile file (a zlib or
/// Numpress bomb, a spectrum claiming billions of points, gigabytes of XML in one element)
/// stops with [`Error::LimitExceeded`] naming the file, the spectrum and the setting, instead
/// of exhausting memory. The defaults are far above any real file seen (the largest spectra in
/// the test data have under a million points and take a few MB of XML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadLimits {
    /// Most points (values in one array) of one spectrum, checked before the array is decoded
    /// where the encoding allows (uncompressed, Numpress) and right after decompression
    /// otherwise. Default 10 000 000 (120 MB decoded).
    pub max_points_per_spectrum: u64,
    /// Most bytes one compressed array may decompress to (zlib output, before any Numpress
    /// decoding); decompression stops there. Default 256 MiB.
    pub max_array_bytes: u64,
    /// Most spectra read from one file. Default 100 000 000.
    pub max_spectra: u64,
    /// Most bytes of (decompressed) input the parser may consume for one spectrum, or for
    /// the header before the first one: bounds its buffers, the size of any one element and
    /// so the XML nesting depth. Default 512 MiB.
    pub max_spectrum_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_points_per_spectrum: 10_000_000,
            max_array_bytes: 256 << 20,
            max_spectra: 100_000_000,
            max_spectrum_bytes: 512 << 20,
        }
    }
}

impl ReadLimits {
    /// Checks every limit (each must be at least 1; spectra are counted in 32 bits).
    pub fn validate(&self) -> Result<()> {
        let checks: [(&'static str, u64, u64); 4] = [
            (
                "limits.max_points_per_spectrum",
                self.max_points_per_spectrum,
                u64::MAX,
            ),
            ("limits.max_array_bytes", self.max_array_bytes, u64::MAX),
            ("limits.max_spectra", self.max_spectra, u32::MAX as u64),
            (
                "limits.max_spectrum_bytes",
                self.max_spectrum_bytes,
                u64::MAX,
            ),
        ];
        for (name, value, max) in checks {
            if value == 0 || value > max {
                return Err(Error::InvalidParameter {
                    name,
                    message: format!("must be between 1 and {max}"),
                });
            }
        }
        Ok(())
    }
}

/// Counts the bytes that went through a reader, to say where in a file an error happened.
/// It also remembers whether the stream's last bytes closed the document, to tell a complete
/// file from a truncated one.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    tail: Vec<u8>,
    /// Where the current spectrum (or the header) started, and how far past it reading may
    /// go ([`ReadLimits::max_spectrum_bytes`]; `u64::MAX` once the spectra are done).
    span_start: u64,
    span_limit: u64,
    over_limit: Arc<AtomicBool>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let consumed = self.count.load(Ordering::Relaxed);
        if consumed.saturating_sub(self.span_start) > self.span_limit {
            // Fail the parser's read: it gives up at once, and the reader reports the limit.
            self.over_limit.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("reading limit exceeded"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                // Parsers may report a failed read as a plain end of input; remember it.
                if let Ok(mut slot) = self.failure.lock() {
                    slot.get_or_insert_with(|| e.to_string());
                }
                return Err(e);
            }
        };
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        if n > 0 {
            self.tail.extend_from_slice(&buf[n.saturating_sub(TAIL)..n]);
            if self.tail.len() > TAIL {
                self.tail.drain(..self.tail.len() - TAIL);
            }
            let text = String::from_utf8_lossy(&self.tail);
            let trimmed = text.trim_end();
            self.closed.store(
                trimmed.ends_with("</mzML>") || trimmed.ends_with("</indexedmzML>"),
                Ordering::Relaxed,
            );
        }
        Ok(n)
    }
}

const TAIL: usize = 64;

/// The first bytes of the comment lines of MGF (Mascot's format allows them anywhere).
const MGF_COMMENT_STARTS: [u8; 4] = [b'#', b';', b'!', b'/'];

/// The white space an MGF line may start with: mzdata reads every line trimmed.
const MGF_INDENTS: [u8; 2] = [b' ', b'\t'];

/// An MGF stream without its comment lines, which mzdata's reader takes for the end of the
/// file before the first `BEGIN IONS` and for malformed lines inside a spectrum.
///
/// Each `BEGIN IONS` line is followed by [`UNKNOWN_RT`]: mzdata's model has no unknown
/// retention time (an entry without `RTINSECONDS` reads as one at 0 s), so every entry starts
/// with a NaN one, which an `RTINSECONDS` line of the entry replaces (see `meta_of`).
///
/// Two lines Mascot's format allows that mzdata stops the whole file at are mended, and
/// counted in [`MgfNotes`]: a `CHARGE` line that gives no single charge (`CHARGE=2+ and 3+`,
/// `CHARGE=2+,3+`, or an empty value) is left out, so that the entry's precursor charge is
/// unknown, as it is; an `RTINSECONDS` range (`RTINSECONDS=12.5-13.5`, a spectrum summed over
/// several scans) becomes its start, and one that is not a number is left out (mzdata
/// panicked), so that the entry's retention time is unknown.
///
/// An entry without its `END IONS` line is ended before the next `BEGIN IONS` (mzdata would
/// lose it and the entry after it), and an entry the file ends in without one is noted: the
/// file may have been cut short.
///
/// mzdata reads each line trimmed, so an indented line is what it would be unindented: such
/// lines are held and judged like the others, and an indented comment line is left out too.
struct MgfComments<R> {
    inner: BufReader<R>,
    /// The next byte starts a line.
    line_start: bool,
    /// Inside a comment line that the buffer held only the start of.
    skipping: bool,
    /// The start of the line being passed on (up to [`LINE_START`] bytes), to tell a
    /// `BEGIN IONS` line when the buffer held only part of it.
    line: Vec<u8>,
    /// What is left to pass on before reading on: [`UNKNOWN_RT`] after a `BEGIN IONS` line,
    /// or a held line found to be kept.
    pending: Vec<u8>,
    /// A line that may be a `CHARGE`, `RTINSECONDS` or `BEGIN IONS` line, or an indented one,
    /// held whole before it is judged.
    held: Vec<u8>,
    holding: bool,
    /// Between a `BEGIN IONS` line and its `END IONS`.
    in_entry: bool,
    notes: Arc<Mutex<MgfNotes>>,
}

/// What reading an MGF file mended, for the run's warnings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MgfNotes {
    /// `CHARGE` lines that give no single charge, left out.
    pub charge_lines_dropped: u64,
    /// The first of them, as written.
    pub first_charge_line: Option<String>,
    /// `RTINSECONDS` ranges, read as their start.
    pub rt_ranges: u64,
    /// The first of them, as written.
    pub first_rt_range: Option<String>,
    /// `RTINSECONDS` lines that give neither a number nor a range, left out.
    pub rt_values_dropped: u64,
    /// The first of them, as written.
    pub first_rt_value: Option<String>,
    /// Entries without an `END IONS` line before the next `BEGIN IONS`, ended there.
    pub entries_without_end: u64,
    /// The file ends inside an entry (no `END IONS` after its last `BEGIN IONS`).
    pub ends_inside_an_entry: bool,
    /// Bytes that are not part of a UTF-8 character, read as Latin-1.
    pub latin1_bytes: u64,
    /// Where the first of them is, in bytes from the start of the (decompressed) input.
    pub first_latin1_byte: Option<u64>,
}

impl MgfNotes {
    /// The run's warnings about them.
    pub fn warnings(&self) -> Vec<String> {
        let entries = |n: u64| {
            (
                count(n, "MGF entry", "MGF entries"),
                agree(n, "gives", "give"),
                agree(n, "its", "their"),
            )
        };
        let mut warnings = Vec::new();
        if let Some(first) = &self.first_charge_line {
            let (entries, give, their) = entries(self.charge_lines_dropped);
            warnings.push(format!(
                "{entries} {give} no single precursor charge (the first: `{first}`): {their} \
                 precursor charge is left unknown"
            ));
        }
        if let Some(first) = &self.first_rt_range {
            let (entries, give, their) = entries(self.rt_ranges);
            warnings.push(format!(
                "{entries} {give} a retention time range (the first: `{first}`): {their} \
                 rt_seconds is the range's start"
            ));
        }
        if let Some(first) = &self.first_rt_value {
            let (entries, give, their) = entries(self.rt_values_dropped);
            warnings.push(format!(
                "{entries} {give} a retention time that is not a number (the first: `{first}`): \
                 {their} rt_seconds is unknown"
            ));
        }
        if self.entries_without_end > 0 {
            let (entries, have, each) = (
                count(self.entries_without_end, "MGF entry", "MGF entries"),
                agree(self.entries_without_end, "has", "have"),
                agree(self.entries_without_end, "it was", "each was"),
            );
            warnings.push(format!(
                "{entries} {have} no END IONS line: {each} read up to the next BEGIN IONS"
            ));
        }
        if let Some(at) = self.first_latin1_byte {
            warnings.push(format!(
                "{} of the file {} not UTF-8 (the first at byte {at}): read as Latin-1",
                count(self.latin1_bytes, "byte", "bytes"),
                agree(self.latin1_bytes, "is", "are"),
            ));
        }
        if self.ends_inside_an_entry {
            warnings.push(
                "the file ends inside its last MGF entry (no END IONS line): it may have been \
                 cut short; that entry was read up to the end"
                    .to_owned(),
            );
        }
        warnings
    }
}

/// What a [`SpectrumReader`] has left out of its file (see [`SpectrumReader::notes`]).
#[derive(Debug, Default, Clone)]
pub struct ReaderNotes(Arc<Mutex<MgfNotes>>);

impl ReaderNotes {
    /// What reading an MGF file has left out so far.
    pub fn mgf(&self) -> MgfNotes {
        self.0.lock().map(|notes| notes.clone()).unwrap_or_default()
    }

    /// The warnings a run reports about them.
    pub fn warnings(&self) -> Vec<String> {
        self.mgf().warnings()
    }
}

const CHARGE_KEY: &[u8] = b"CHARGE=";
const RT_KEY: &[u8] = b"RTINSECONDS=";
const BEGIN_IONS: &[u8] = b"BEGIN IONS";
const END_IONS: &[u8] = b"END IONS";

/// Longest line held to be judged; a longer one is passed on as it is.
const HELD_LINE_MAX: usize = 4096;

/// Whether `value` (a `CHARGE=` line's) is one charge as mzdata reads it: digits with a sign
/// before or after them, or none.
fn is_single_charge(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    let value = value
        .strip_prefix(b"+")
        .or_else(|| value.strip_prefix(b"-"))
        .unwrap_or(value);
    let value = value
        .strip_suffix(b"+")
        .or_else(|| value.strip_suffix(b"-"))
        .unwrap_or(value);
    !value.is_empty() && value.iter().all(u8::is_ascii_digit)
}

/// The start of `value` (an `RTINSECONDS=` line's) when it is a range of two numbers
/// (`12.5-13.5`); `None` for one number (`1.2e-3` included) or anything else.
fn rt_range_start(value: &[u8]) -> Option<&[u8]> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let number = |text: &str| text.trim().parse::<f64>().is_ok_and(f64::is_finite);
    if number(value) {
        return None;
    }
    // After the first character: a range's start has no sign.
    let dash = value.get(1..)?.find('-')? + 1;
    let (start, end) = (&value[..dash], &value[dash + 1..]);
    (number(start) && number(end)).then_some(start.trim().as_bytes())
}

/// The line put after each `BEGIN IONS` (Rust's and so mzdata's number parser reads `NaN`).
const UNKNOWN_RT: &[u8] = b"RTINSECONDS=NaN\n";

/// How much of a line is kept to tell a `BEGIN IONS` line: longer ones (with more
/// surrounding white space than that) are not taken for one.
const LINE_START: usize = 64;

impl<R: Read> MgfComments<R> {
    fn new(inner: R, notes: Arc<Mutex<MgfNotes>>) -> Self {
        MgfComments {
            // Small: what it reads ahead counts against the spectrum's byte budget.
            inner: BufReader::with_capacity(8 << 10, inner),
            line_start: true,
            skipping: false,
            line: Vec::with_capacity(LINE_START),
            pending: Vec::new(),
            held: Vec::new(),
            holding: false,
            in_entry: false,
            notes,
        }
    }

    /// Judges the held line: passed on as it is, unless it is a `CHARGE` line without a
    /// single charge (left out), an `RTINSECONDS` range (passed on as its start), a
    /// `BEGIN IONS` line (followed by [`UNKNOWN_RT`], and after an `END IONS` line if the
    /// entry before has none) or an indented comment (left out).
    fn judge_held(&mut self) {
        let line = std::mem::take(&mut self.held);
        self.holding = false;
        let text = line.trim_ascii();
        let as_written = || String::from_utf8_lossy(text).into_owned();
        if text.first().is_some_and(|b| MGF_COMMENT_STARTS.contains(b)) {
            return;
        }
        if text == END_IONS {
            self.in_entry = false;
        }
        if text == BEGIN_IONS {
            if self.in_entry {
                self.pending.extend_from_slice(END_IONS);
                self.pending.push(b'\n');
                if let Ok(mut notes) = self.notes.lock() {
                    notes.entries_without_end += 1;
                }
            }
            self.in_entry = true;
            self.pending.extend_from_slice(text);
            self.pending.push(b'\n');
            self.pending.extend_from_slice(UNKNOWN_RT);
            return;
        }
        if let Some(value) = text.strip_prefix(CHARGE_KEY) {
            if !is_single_charge(value) {
                if let Ok(mut notes) = self.notes.lock() {
                    notes.charge_lines_dropped += 1;
                    notes.first_charge_line.get_or_insert_with(as_written);
                }
                return;
            }
        }
        if let Some(start) = text.strip_prefix(RT_KEY).and_then(rt_range_start) {
            self.pending.extend_from_slice(RT_KEY);
            self.pending.extend_from_slice(start);
            self.pending.push(b'\n');
            if let Ok(mut notes) = self.notes.lock() {
                notes.rt_ranges += 1;
                notes.first_rt_range.get_or_insert_with(as_written);
            }
            return;
        }
        if let Some(value) = text.strip_prefix(RT_KEY) {
            let number = std::str::from_utf8(value).is_ok_and(|v| v.trim().parse::<f64>().is_ok());
            if !number {
                if let Ok(mut notes) = self.notes.lock() {
                    notes.rt_values_dropped += 1;
                    notes.first_rt_value.get_or_insert_with(as_written);
                }
                return;
            }
        }
        self.pending.extend_from_slice(&line);
    }
}

impl<R> MgfComments<R> {
    /// At the end of the input: notes an entry left open (the end of its last line, if the
    /// file does not end in a line break, is judged too).
    fn at_end(&mut self) {
        if self.line.trim_ascii() == END_IONS {
            self.in_entry = false;
        }
        if std::mem::take(&mut self.in_entry) {
            if let Ok(mut notes) = self.notes.lock() {
                notes.ends_inside_an_entry = true;
            }
        }
    }
}

/// Whether a line starting with `start` (all of it the buffer holds, at least one byte) may
/// be one [`MgfComments`] judges whole: a `CHARGE`, an `RTINSECONDS` or a `BEGIN IONS` line,
/// or an indented one.
fn may_be_judged_line(start: &[u8]) -> bool {
    MGF_INDENTS.contains(&start[0])
        || [CHARGE_KEY, RT_KEY, BEGIN_IONS].iter().any(|key| {
            let n = start.len().min(key.len());
            start[..n] == key[..n]
        })
}

/// How many of `passed` (the bytes about to be passed on, `line` holding the start of the line
/// they continue) to pass on now, and whether they end a `BEGIN IONS` line: up to the end of
/// the first such line among them. `line` is left holding the start of the line they end in;
/// `in_entry` follows the `BEGIN IONS` and `END IONS` lines passed. (`BEGIN IONS` lines are
/// held and judged whole instead, indented ones too: only one indented by other white space,
/// which mzdata trims as well, comes here.)
fn up_to_begin_ions(line: &mut Vec<u8>, passed: &[u8], in_entry: &mut bool) -> (usize, bool) {
    // One byte past the limit marks a line too long to be `BEGIN IONS`.
    let keep = |line: &mut Vec<u8>, bytes: &[u8]| {
        let room = (LINE_START + 1).saturating_sub(line.len());
        line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    };
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', passed) {
        keep(line, &passed[start..end]);
        let text = line.trim_ascii();
        let begins = text == BEGIN_IONS;
        if text == END_IONS {
            *in_entry = false;
        }
        line.clear();
        start = end + 1;
        if begins {
            *in_entry = true;
            return (start, true);
        }
    }
    keep(line, &passed[start..]);
    (passed.len(), false)
}

/// Passes on as much of `pending` as `out` holds; how much.
fn hand_over(pending: &mut Vec<u8>, out: &mut [u8]) -> usize {
    let n = pending.len().min(out.len());
    out[..n].copy_from_slice(&pending[..n]);
    pending.drain(..n);
    n
}

impl<R: Read> Read for MgfComments<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        loop {
            if !self.pending.is_empty() {
                return Ok(hand_over(&mut self.pending, out));
            }
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() || out.is_empty() {
                if self.holding && !out.is_empty() {
                    self.judge_held();
                    continue;
                }
                if !out.is_empty() {
                    self.at_end();
                }
                return Ok(0);
            }
            if self.holding || (self.line_start && may_be_judged_line(buf)) {
                let (taken, ended) = match memchr::memchr(b'\n', buf) {
                    Some(end) => (end + 1, true),
                    None => (buf.len(), false),
                };
                self.held.extend_from_slice(&buf[..taken]);
                self.inner.consume(taken);
                self.holding = true;
                self.line_start = ended;
                if ended {
                    self.judge_held();
                } else if self.held.len() > HELD_LINE_MAX {
                    // Not a line mzdata could read either: on as it is.
                    self.pending = std::mem::take(&mut self.held);
                    self.holding = false;
                }
                continue;
            }
            if self.skipping || (self.line_start && MGF_COMMENT_STARTS.contains(&buf[0])) {
                let (skipped, ended) = match buf.iter().position(|&b| b == b'\n') {
                    Some(end) => (end + 1, true),
                    None => (buf.len(), false),
                };
                self.inner.consume(skipped);
                self.skipping = !ended;
                self.line_start = ended;
                continue;
            }
            // Up to the end of the line before the next comment, `B...`, `C...`, `R...` or
            // indented line that starts in view (all but comments may be judged whole, above).
            let limit = buf.len().min(out.len());
            let n = memchr::memchr_iter(b'\n', &buf[..limit])
                .find(|&i| {
                    buf.get(i + 1).is_some_and(|b| {
                        MGF_COMMENT_STARTS.contains(b)
                            || MGF_INDENTS.contains(b)
                            || matches!(b, b'B' | b'C' | b'R')
                    })
                })
                .map_or(limit, |i| i + 1);
            let (n, begins) = up_to_begin_ions(&mut self.line, &buf[..n], &mut self.in_entry);
            if begins {
                self.pending.extend_from_slice(UNKNOWN_RT);
            }
            out[..n].copy_from_slice(&buf[..n]);
            self.line_start = buf[n - 1] == b'\n';
            self.inner.consume(n);
            return Ok(n);
        }
    }
}

/// An MGF stream made valid UTF-8: a byte that is not part of a UTF-8 character is read as
/// Latin-1 (as mzdata reads such bytes in mzML attribute values) and counted in [`MgfNotes`].
/// mzdata's MGF reader reads lines into `String`s, and stopped the whole file at the first
/// such byte (a `µ` written in a title by a tool using a Windows code page).
struct Latin1Fallback<R> {
    inner: R,
    /// Bytes read from `inner`; `buf[start..]` not yet passed on.
    buf: Vec<u8>,
    start: usize,
    /// Input bytes before `buf[0]`.
    offset: u64,
    /// A Latin-1 character's UTF-8 bytes not yet passed on.
    pending: Vec<u8>,
    eof: bool,
    notes: Arc<Mutex<MgfNotes>>,
}

impl<R: Read> Latin1Fallback<R> {
    fn new(inner: R, notes: Arc<Mutex<MgfNotes>>) -> Self {
        Latin1Fallback {
            inner,
            buf: Vec::with_capacity(8 << 10),
            start: 0,
            offset: 0,
            pending: Vec::new(),
            eof: false,
            notes,
        }
    }

    /// Reads more after what is left (moved to the front); false at the end of the input.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.buf.drain(..self.start);
        self.offset += self.start as u64;
        self.start = 0;
        let had = self.buf.len();
        self.buf.resize(had + (8 << 10), 0);
        let n = loop {
            match self.inner.read(&mut self.buf[had..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(had + *n.as_ref().unwrap_or(&0));
        let n = n?;
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The bytes at `buf[start..start + n]`, passed on as Latin-1 characters.
    fn as_latin1(&mut self, n: usize) {
        for &byte in &self.buf[self.start..self.start + n] {
            self.pending
                .extend_from_slice(char::from(byte).encode_utf8(&mut [0; 2]).as_bytes());
        }
        if let Ok(mut notes) = self.notes.lock() {
            notes.latin1_bytes += n as u64;
            notes
                .first_latin1_byte
                .get_or_insert(self.offset + self.start as u64);
        }
        self.start += n;
    }
}

impl<R: Read> Read for Latin1Fallback<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.pending.is_empty() {
                return Ok(hand_over(&mut self.pending, out));
            }
            if self.start == self.buf.len() && (self.eof || !self.refill()?) {
                return Ok(0);
            }
            let text = &self.buf[self.start..];
            let (valid, bad) = match std::str::from_utf8(text) {
                Ok(_) => (text.len(), None),
                Err(e) => (e.valid_up_to(), Some(e.error_len())),
            };
            if valid > 0 {
                let n = valid.min(out.len());
                out[..n].copy_from_slice(&text[..n]);
                self.start += n;
                return Ok(n);
            }
            match bad {
                Some(Some(len)) => self.as_latin1(len),
                // A character cut by the end of what was read: read on, unless the input
                // ends there.
                _ => {
                    let left = self.buf.len() - self.start;
                    if self.eof || !self.refill()? {
                        self.as_latin1(left);
                    }
                }
            }
        }
    }
}

/// The input stream, shared between the parser and the reader so that the reader can read
/// what the parser leaves (the index, the gzip trailer) and so check the whole input.
#[derive(Clone)]
struct SharedStream(Arc<Mutex<CountingReader<BufReader<DynRead>>>>);

impl Read for SharedStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut inner) => inner.read(buf),
            Err(_) => Err(std::io::Error::other(
                "input stream poisoned by an earlier failure",
            )),
        }
    }
}

impl SharedStream {
    /// Starts the byte budget of the next spectrum, `limit` bytes from here.
    fn start_span(&self, limit: u64) {
        if let Ok(mut inner) = self.0.lock() {
            inner.span_start = inner.count.load(Ordering::Relaxed);
            inner.span_limit = limit;
        }
    }

    /// Reads to the end, so that a corrupt compressed stream is noticed even after the last
    /// spectrum. Streaming, so no byte budget applies.
    fn drain(&mut self) -> std::io::Result<()> {
        self.start_span(u64::MAX);
        let mut buffer = vec![0u8; 64 * 1024];
        while self.read(&mut buffer)? > 0 {}
        Ok(())
    }
}

type DynRead = Box<dyn Read + Send>;

/// How much of an input's start is looked at to tell its format.
const SNIFF_BYTES: usize = 4096;

/// The first `n` bytes of `stream` (fewer only at its end) and the stream with them put back:
/// a pipe or a download may hand its first bytes over in several short reads.
fn peek(mut stream: DynRead, n: usize) -> std::io::Result<(Vec<u8>, DynRead)> {
    let mut head = Vec::with_capacity(n);
    (&mut stream).take(n as u64).read_to_end(&mut head)?;
    let whole: DynRead = Box::new(std::io::Cursor::new(head.clone()).chain(stream));
    Ok((head, whole))
}

/// The HDF5 file signature, at offset 0 of an mzMLb file.
const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

enum Parser {
    /// mzML read sequentially by mzdata (documents without a spectrum list to split).
    MzML(Box<MzMLReaderType<DynRead>>),
    /// mzML whose spectra are found here and parsed later, on any thread.
    Split {
        /// mzdata's reader after the header (the file's metadata).
        header: Box<MzMLReaderType<DynRead>>,
        splitter: Box<Splitter<DynRead>>,
        context: Arc<ParseContext>,
    },
    Mgf(Box<MGFReaderType<DynRead>>),
    Finished,
}

/// See [`SpectrumReader::last_found`].
enum LastFound {
    Nothing,
    Id(String),
    /// The start tag of the last element found (a share of its bytes).
    Tag(bytes::Bytes),
}

impl LastFound {
    fn id(&self) -> Option<String> {
        match self {
            LastFound::Nothing => None,
            LastFound::Id(id) => Some(id.clone()),
            LastFound::Tag(tag) => Some(crate::mzml_split::id_of(tag)),
        }
    }
}

/// A sequential reader of one mzML or MGF input (plain, gzip- or bzip2-compressed), yielding spectra
/// with their arrays still encoded.
pub struct SpectrumReader {
    path: PathBuf,
    parser: Parser,
    info: FileInfo,
    bytes_read: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    stream: SharedStream,
    next_index: u32,
    /// The last spectrum found, for messages: its id, or (split mzML) its start tag, whose
    /// id is only read if a message needs it.
    last_found: LastFound,
    limits: ReadLimits,
    over_limit: Arc<AtomicBool>,
    /// Whether found mzML spectra are parsed by the lean parser first (else by mzdata).
    lean: bool,
    notes: ReaderNotes,
    /// The HDF5 side of an mzMLb input.
    #[cfg(feature = "mzmlb")]
    external: Option<crate::mzmlb::ExternalArrays>,
}

impl std::fmt::Debug for SpectrumReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpectrumReader")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

const READ_BUFFER: usize = 1 << 20;

impl SpectrumReader {
    /// Opens a local file. The format is sniffed from the content, not the name.
    pub fn open(path: impl AsRef<Path>) -> Result<SpectrumReader> {
        let path = path.as_ref();
        SpectrumReader::open_file(path, Box::new(open_input(path)?))
    }

    /// Opens a local file and hashes its bytes as they are read: once the reader has been
    /// read to its end (as [`Pipeline::run`](crate::Pipeline::run) does), the digest gives
    /// the file's size and SHA-256 without a second pass over it. Its
    /// [`finish`](InputDigest::finish) is `None` for mzMLb files (read through HDF5) and for
    /// readers that stopped early.
    pub fn open_digested(path: impl AsRef<Path>) -> Result<(SpectrumReader, InputDigest)> {
        let path = path.as_ref();
        let file = open_input(path)?;
        let digest = InputDigest::default();
        let reader = SpectrumReader::open_file(path, Box::new(digest.wrap(file)))?;
        Ok((reader, digest))
    }

    fn open_file(path: &Path, file: DynRead) -> Result<SpectrumReader> {
        let io_err = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        // Peeked, not seeked back over: the path may be a named pipe.
        let (signature, stream) = peek(file, HDF5_SIGNATURE.len()).map_err(io_err)?;
        if signature == HDF5_SIGNATURE {
            return SpectrumReader::open_mzmlb(path);
        }
        SpectrumReader::from_reader(path, stream)
    }

    #[cfg(feature = "mzmlb")]
    fn open_mzmlb(path: &Path) -> Result<SpectrumReader> {
        let (external, document) = crate::mzmlb::open(path)?;
        let mut reader = SpectrumReader::from_reader(path, document)?;
        reader.info.format = Some(InputFormat::MzMLb);
        reader.external = Some(external);
        Ok(reader)
    }

    #[cfg(not(feature = "mzmlb"))]
    fn open_mzmlb(path: &Path) -> Result<SpectrumReader> {
        Err(Error::UnknownFormat {
            path: path.to_owned(),
            reason: "it is an HDF5 file (mzMLb?), and this build of mzforge reads no mzMLb \
                     (it needs the `mzmlb` cargo feature and the HDF5 library)"
                .into(),
        })
    }

    /// Reads from any byte stream (a download, a pipe); `name` is used in messages.
    pub fn from_reader(
        name: impl AsRef<Path>,
        stream: Box<dyn Read + Send>,
    ) -> Result<SpectrumReader> {
        let path = name.as_ref().to_owned();
        let io_err = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let (head, stream) = peek(stream, SNIFF_BYTES).map_err(io_err)?;
        let notes = ReaderNotes::default();
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let bzip2 = is_bzip2(&head);
        let bytes_read = Arc::new(AtomicU64::new(0));
        let (stream, head): (BufReader<DynRead>, Vec<u8>) = if gzip || bzip2 {
            let compressed = BufReader::with_capacity(READ_BUFFER, stream);
            let (decoder, kind): (DynRead, &str) = match gzip {
                true => (
                    Box::new(flate2::bufread::MultiGzDecoder::new(compressed)),
                    "gzip",
                ),
                false => (
                    Box::new(bzip2::bufread::MultiBzDecoder::new(compressed)),
                    "bzip2",
                ),
            };
            let (head, decoded) = peek(decoder, SNIFF_BYTES).map_err(|e| Error::Malformed {
                path: path.clone(),
                location: format!("in the {kind} stream"),
                message: e.to_string(),
            })?;
            (BufReader::with_capacity(READ_BUFFER, decoded), head)
        } else {
            (BufReader::with_capacity(READ_BUFFER, stream), head)
        };
        let format = sniff_format(&head).ok_or_else(|| Error::UnknownFormat {
            path: path.clone(),
            reason: describe_head(&head),
        })?;
        if format == InputFormat::Mgf && is_msalign(&head) {
            return Err(Error::UnknownFormat {
                path,
                reason: "it is an msalign file (TopFD's or FLASHDeconv's deconvolved neutral \
                         masses, not m/z values); mzforge reads mzML, mzMLb and MGF"
                    .into(),
            });
        }
        if let Some(version) = pre_release_mzml(&head) {
            return Err(Error::UnknownFormat {
                path,
                reason: format!(
                    "mzML {version} is a pre-1.0 draft of the format; convert it to mzML 1.1 first (e.g. msconvert)"
                ),
            });
        }
        // Count what the parser consumes, and watch for the document's end.
        let closed = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let over_limit = Arc::new(AtomicBool::new(false));
        let limits = ReadLimits::default();
        let shared = SharedStream(Arc::new(Mutex::new(CountingReader {
            inner: stream,
            count: bytes_read.clone(),
            closed: closed.clone(),
            failure: failure.clone(),
            tail: Vec::with_capacity(2 * TAIL),
            span_start: 0,
            span_limit: limits.max_spectrum_bytes,
            over_limit: over_limit.clone(),
        })));
        let stream_handle = shared.clone();
        let counted: DynRead = Box::new(shared);
        let mut info = FileInfo {
            format: Some(format),
            gzip,
            bzip2,
            ..Default::default()
        };
        let parser = match format {
            InputFormat::MzML | InputFormat::MzMLb => {
                // The header goes to mzdata's reader; the spectra that follow are split here.
                let header_too_large = || Error::LimitExceeded {
                    path: path.clone(),
                    location: "in the file header".into(),
                    what: "the header is larger".into(),
                    limit: limits.max_spectrum_bytes,
                    setting: "limits.max_spectrum_bytes",
                };
                let mut splitter = Splitter::new(counted);
                let header_bytes = match splitter.header(limits.max_spectrum_bytes) {
                    Ok(header) => header,
                    Err(SplitError::TooLarge { .. }) => return Err(header_too_large()),
                    Err(e) => {
                        let message = match e {
                            SplitError::Io(e) if gzip => format!("the gzip stream is corrupt: {e}"),
                            SplitError::Io(e) if bzip2 => {
                                format!("the bzip2 stream is corrupt: {e}")
                            }
                            SplitError::Io(e) => format!("read failed: {e}"),
                            _ => "the header could not be read".into(),
                        };
                        return Err(Error::Malformed {
                            path: path.clone(),
                            location: "in the file header".into(),
                            message,
                        });
                    }
                };
                let (header_stream, splitter): (DynRead, _) = match &header_bytes {
                    Some(header) => (
                        Box::new(std::io::Cursor::new(
                            crate::mzml_split::self_close_params(header)
                                .unwrap_or_else(|| header.clone()),
                        )),
                        Some(splitter),
                    ),
                    None => {
                        let (rest, stream) = splitter.into_rest();
                        (Box::new(std::io::Cursor::new(rest).chain(stream)), None)
                    }
                };
                let parsed = catch_unwind(AssertUnwindSafe(|| {
                    MzMLReaderType::<DynRead>::with_buffer_capacity_and_detail_level(
                        header_stream,
                        READ_BUFFER,
                        DetailLevel::Lazy,
                    )
                }));
                if over_limit.load(Ordering::Relaxed) {
                    return Err(header_too_large());
                }
                let reader = parsed.map_err(|panic| Error::Malformed {
                    path: path.clone(),
                    location: "in the file header".into(),
                    message: panic_message(panic),
                })?;
                if reader.state == MzMLParserState::ParserError {
                    return Err(Error::Malformed {
                        path: path.clone(),
                        location: format!(
                            "in the file header, before byte {}",
                            bytes_read.load(Ordering::Relaxed)
                        ),
                        message: "the mzML header could not be parsed".into(),
                    });
                }
                info.declared_spectrum_count = reader.spectrum_count_hint();
                info.instruments = instrument_models(
                    reader
                        .instrument_configurations()
                        .values()
                        .flat_map(|config| config.params()),
                );
                match (splitter, header_bytes) {
                    (Some(splitter), Some(header))
                        if reader.state == MzMLParserState::SpectrumList =>
                    {
                        // The splitter enforces the per-spectrum byte limit itself.
                        stream_handle.start_span(u64::MAX);
                        let context = ParseContext::new(
                            path.clone(),
                            &header,
                            reader.reference_param_groups.clone(),
                            reader
                                .run
                                .default_data_processing_id
                                .clone()
                                .map(String::into_boxed_str),
                        );
                        Parser::Split {
                            header: Box::new(reader),
                            splitter: Box::new(splitter),
                            context: Arc::new(context),
                        }
                    }
                    (None, _) => Parser::MzML(Box::new(reader)),
                    (Some(_), _) => {
                        return Err(Error::Malformed {
                            path: path.clone(),
                            location: "in the file header".into(),
                            message: format!(
                                "the header ends in an unexpected state ({:?})",
                                reader.state
                            ),
                        })
                    }
                }
            }
            InputFormat::Mgf => {
                let text = Latin1Fallback::new(counted, notes.0.clone());
                let uncommented: DynRead = Box::new(MgfComments::new(text, notes.0.clone()));
                let mut reader = MGFReaderType::<DynRead>::new(uncommented);
                reader.detail_level = DetailLevel::Lazy;
                Parser::Mgf(Box::new(reader))
            }
        };
        Ok(SpectrumReader {
            path,
            parser,
            info,
            closed,
            failure,
            stream: stream_handle,
            bytes_read,
            next_index: 0,
            last_found: LastFound::Nothing,
            limits,
            over_limit,
            lean: true,
            notes,
            #[cfg(feature = "mzmlb")]
            external: None,
        })
    }

    /// A handle on what reading has left out of the file so far, which stays readable after
    /// the reader is moved away or dropped.
    pub fn notes(&self) -> ReaderNotes {
        self.notes.clone()
    }

    /// Replaces the reading limits (the defaults are [`ReadLimits::default`]).
    pub fn set_limits(&mut self, limits: ReadLimits) {
        self.limits = limits;
        if !matches!(self.parser, Parser::Finished | Parser::Split { .. }) {
            self.stream.start_span(limits.max_spectrum_bytes);
        }
    }

    /// The same reader with other limits.
    pub fn with_limits(mut self, limits: ReadLimits) -> SpectrumReader {
        self.set_limits(limits);
        self
    }

    /// The reading limits.
    pub fn limits(&self) -> &ReadLimits {
        &self.limits
    }

    /// Whether mzML spectra are parsed by the lean parser (the default) or all by mzdata's
    /// spectrum builder, which keeps every parameter: for [`RawSpectrum::source_description`]
    /// on every spectrum, mzdata's parse is the cheaper. Both give the same
    /// [`RawSpectrum::meta`] and decoded arrays (the `read` fuzz target compares them).
    pub fn set_lean_parsing(&mut self, lean: bool) {
        self.lean = lean;
    }

    fn spectrum_location(&self) -> String {
        match self.last_found.id() {
            Some(id) => format!(
                "in spectrum {} (the one after {id}), before byte {}",
                self.next_index,
                self.bytes_read()
            ),
            None => format!(
                "in the header or the first spectrum, before byte {}",
                self.bytes_read()
            ),
        }
    }

    /// The path (or name) given when opening.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File-level facts.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// Bytes of (decompressed) input consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    fn malformed(&mut self, message: String) -> Error {
        self.malformed_at(message, self.bytes_read())
    }

    /// The limit error for a spectrum (or the XML read for it) larger than
    /// [`ReadLimits::max_spectrum_bytes`]; the reader is finished.
    fn spectrum_too_large(&mut self, location: String) -> Error {
        self.parser = Parser::Finished;
        Error::LimitExceeded {
            path: self.path.clone(),
            location,
            what: "the input read for one spectrum is larger".into(),
            limit: self.limits.max_spectrum_bytes,
            setting: "limits.max_spectrum_bytes",
        }
    }

    /// The next spectrum, `None` at the end, or an error if the file is broken here. After an
    /// error the reader is finished, but for [`Error::BadSpectrum`]: a spectrum that cannot be
    /// read is left behind, and the next call reads on after it.
    pub fn next_raw(&mut self) -> Result<Option<RawSpectrum>> {
        let Some(unparsed) = self.next_found()? else {
            return Ok(None);
        };
        // A spectrum read one at a time may be kept for long: it must not keep the reader's
        // whole buffer alive with it.
        let unparsed = unparsed.detached();
        #[cfg_attr(not(feature = "mzmlb"), allow(unused_mut))]
        let mut raw = unparsed.parse().inspect_err(|error| {
            if !matches!(error, Error::BadSpectrum { .. }) {
                self.parser = Parser::Finished;
            }
        })?;
        #[cfg(feature = "mzmlb")]
        if let (Some(external), Inner::Mzdata(spectrum)) = (&self.external, &mut raw.inner) {
            raw.unresolved = external.resolve(spectrum, &self.limits).err();
        }
        Ok(Some(raw))
    }

    /// The next spectrum, not yet parsed: [`UnparsedSpectrum::parse`] can run on any thread,
    /// so that the parsing of a file's spectra runs in parallel while this reader goes on.
    /// `None` at the end, or an error if the file is broken here (after which the reader is
    /// finished); errors inside one spectrum's XML come from its `parse`.
    ///
    /// An mzML spectrum found here shares the reader's read buffer (1 MiB at a time) instead
    /// of copying its bytes out, and keeps that buffer alive, as does the [`RawSpectrum`]
    /// parsed from it: meant for spectra parsed and decoded soon, as the pipeline does.
    /// Spectra from [`next_raw`](SpectrumReader::next_raw) hold only their own bytes.
    pub fn next_unparsed(&mut self) -> Result<Option<UnparsedSpectrum>> {
        #[cfg(feature = "mzmlb")]
        if self.external.is_some() {
            // Arrays outside the document are read with the spectrum, here; a spectrum that
            // cannot be read is handed on as one, like a split mzML spectrum's.
            return match self.next_raw() {
                Ok(raw) => Ok(raw.map(|raw| UnparsedSpectrum(Unparsed::Parsed(raw)))),
                Err(error @ Error::BadSpectrum { index, .. }) => {
                    Ok(Some(UnparsedSpectrum(Unparsed::Unreadable {
                        index,
                        error,
                    })))
                }
                Err(error) => Err(error),
            };
        }
        self.next_found()
    }

    fn next_found(&mut self) -> Result<Option<UnparsedSpectrum>> {
        let Parser::Split {
            splitter, context, ..
        } = &mut self.parser
        else {
            return self.read_sequential();
        };
        let context = context.clone();
        let found = splitter.next(self.limits.max_spectrum_bytes);
        let xml = match found {
            Ok(Piece::Spectrum(xml)) => xml,
            Ok(Piece::ListEnd) => return self.finish().map(|()| None),
            Err(SplitError::Io(e)) => return Err(self.read_failure(e.to_string())),
            Err(SplitError::Truncated { at }) => {
                let message = if self.closed.load(Ordering::Relaxed) {
                    "the document ends without closing its spectrum list"
                } else {
                    "the file ends in the middle of the document: truncated?"
                };
                return Err(self.malformed_at(message.into(), at));
            }
            Err(SplitError::Unexpected { at, found }) => {
                let message =
                    format!("found {found} where a <spectrum> or </spectrumList> belongs");
                return Err(self.malformed_at(message, at));
            }
            Err(SplitError::TooLarge { start }) => {
                let location = match self.last_found.id() {
                    Some(id) => format!(
                        "in spectrum {} (the one after {id}), from byte {start}",
                        self.next_index
                    ),
                    None => format!("in the first spectrum, from byte {start}"),
                };
                return Err(self.spectrum_too_large(location));
            }
        };
        let index = self.take_index(|index| {
            format!("at spectrum {index} ({}), at byte {}", xml.id(), xml.start)
        })?;
        self.last_found = LastFound::Tag(xml.xml.slice(..xml.start_tag().len()));
        // mzMLb arrays live outside the document: mzdata's spectrum resolves them.
        #[cfg(feature = "mzmlb")]
        let lean = self.lean && self.external.is_none();
        #[cfg(not(feature = "mzmlb"))]
        let lean = self.lean;
        Ok(Some(UnparsedSpectrum(Unparsed::Xml {
            index,
            xml,
            context,
            limits: self.limits,
            lean,
        })))
    }

    /// After the last spectrum: reads the rest of the input, so that a corrupt compressed
    /// stream is noticed even there. The reader is finished.
    fn finish(&mut self) -> Result<()> {
        self.parser = Parser::Finished;
        self.stream
            .drain()
            .map_err(|e| self.read_failure(e.to_string()))
    }

    /// The index of the spectrum found, counted; or, past [`ReadLimits::max_spectra`], the
    /// limit error at the place `location` gives for that index, and the reader is finished.
    fn take_index(&mut self, location: impl FnOnce(u32) -> String) -> Result<u32> {
        let index = self.next_index;
        if u64::from(index) >= self.limits.max_spectra {
            self.parser = Parser::Finished;
            return Err(Error::LimitExceeded {
                path: self.path.clone(),
                location: location(index),
                what: "the file has more spectra".into(),
                limit: self.limits.max_spectra,
                setting: "limits.max_spectra",
            });
        }
        self.next_index += 1;
        Ok(index)
    }

    /// A failed read of the input (of the gzip or bzip2 stream, when compressed).
    fn read_failure(&mut self, failure: String) -> Error {
        let message = match (self.info.gzip, self.info.bzip2) {
            (true, _) => format!("the gzip stream is corrupt: {failure}"),
            (_, true) => format!("the bzip2 stream is corrupt: {failure}"),
            _ => format!("read failed: {failure}"),
        };
        self.malformed(message)
    }

    /// Like [`SpectrumReader::malformed`], at a known byte.
    fn malformed_at(&mut self, message: String, byte: u64) -> Error {
        self.parser = Parser::Finished;
        let location = match self.last_found.id() {
            Some(id) => format!(
                "after spectrum {} ({id}), before byte {byte}",
                self.next_index.saturating_sub(1)
            ),
            None => format!("before the first spectrum, before byte {byte}"),
        };
        Error::Malformed {
            path: self.path.clone(),
            location,
            message,
        }
    }

    /// The next spectrum from mzdata's sequential readers (MGF, and mzML without a spectrum
    /// list to split). An MGF entry that cannot be read is one bad spectrum (its `parse` gives
    /// the [`Error::BadSpectrum`]), and reading goes on at the next `BEGIN IONS`.
    fn read_sequential(&mut self) -> Result<Option<UnparsedSpectrum>> {
        let closed = &self.closed;
        let outcome = catch_unwind(AssertUnwindSafe(|| read_one(&mut self.parser, closed)));
        if self.over_limit.swap(false, Ordering::Relaxed) {
            let location = self.spectrum_location();
            return Err(self.spectrum_too_large(location));
        }
        let read_failure = self.failure.lock().ok().and_then(|slot| slot.clone());
        if let Some(failure) = read_failure {
            if !matches!(outcome, Ok(Ok(Some(_)))) {
                return Err(self.read_failure(failure));
            }
        }
        let spectrum = match outcome {
            Ok(Ok(Some(spectrum))) => spectrum,
            Ok(Ok(None)) => return self.finish().map(|()| None),
            Ok(Err(ReadFailure::Entry(message))) => return self.unreadable_entry(message),
            Ok(Err(ReadFailure::File(message))) => return Err(self.malformed(message)),
            Err(panic) => {
                let message = format!("parser failure: {}", panic_message(panic));
                if self.in_mgf_entry() {
                    return self.unreadable_entry(message);
                }
                return Err(self.malformed(message));
            }
        };
        let byte = self.bytes_read();
        let index = self.take_index(|index| {
            format!(
                "at spectrum {index} ({}), before byte {byte}",
                spectrum.id()
            )
        })?;
        self.stream.start_span(self.limits.max_spectrum_bytes);
        self.last_found = LastFound::Id(spectrum.id().to_owned());
        Ok(Some(UnparsedSpectrum(Unparsed::Parsed(RawSpectrum {
            index,
            inner: Inner::Mzdata(Box::new(spectrum)),
            limits: self.limits,
            unresolved: None,
        }))))
    }

    /// Whether mzdata's MGF reader is inside an entry (after its `BEGIN IONS`).
    fn in_mgf_entry(&self) -> bool {
        matches!(&self.parser, Parser::Mgf(reader)
            if matches!(reader.state, MGFParserState::ScanHeaders | MGFParserState::Peaks))
    }

    /// The MGF entry mzdata could not read, as one bad spectrum; mzdata's reader is set to
    /// look for the next `BEGIN IONS`, passing over the rest of this entry.
    fn unreadable_entry(&mut self, message: String) -> Result<Option<UnparsedSpectrum>> {
        let byte = self.bytes_read();
        let index = self.take_index(|index| format!("at spectrum {index}, before byte {byte}"))?;
        if let Parser::Mgf(reader) = &mut self.parser {
            reader.state = MGFParserState::Between;
        }
        let native_id = match self.last_found.id() {
            Some(id) => format!("the MGF entry after {id}"),
            None => "the first MGF entry".to_owned(),
        };
        let error = Error::BadSpectrum {
            path: self.path.clone(),
            index,
            native_id,
            message: format!("cannot be read, before byte {byte}: {}", in_words(message)),
        };
        self.stream.start_span(self.limits.max_spectrum_bytes);
        Ok(Some(UnparsedSpectrum(Unparsed::Unreadable {
            index,
            error,
        })))
    }
}

impl Iterator for SpectrumReader {
    type Item = Result<RawSpectrum>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_raw().transpose()
    }
}

/// Why mzdata's sequential reader stopped.
enum ReadFailure {
    /// The file cannot be read on from here.
    File(String),
    /// One MGF entry cannot be read; the next one may be.
    Entry(String),
}

impl From<String> for ReadFailure {
    fn from(message: String) -> Self {
        ReadFailure::File(message)
    }
}

impl From<&str> for ReadFailure {
    fn from(message: &str) -> Self {
        ReadFailure::File(message.to_owned())
    }
}

fn read_one(
    parser: &mut Parser,
    closed: &AtomicBool,
) -> std::result::Result<Option<MultiLayerSpectrum>, ReadFailure> {
    match parser {
        Parser::Finished | Parser::Split { .. } => Ok(None),
        Parser::MzML(reader) => {
            if reader.state >= MzMLParserState::SpectrumListDone
                && reader.state != MzMLParserState::EOF
            {
                return Ok(None);
            }
            let mut spectrum = MultiLayerSpectrum::default();
            let result = reader.read_into(&mut spectrum);
            match (result, reader.state) {
                (Ok(_), MzMLParserState::SpectrumDone) => Ok(Some(spectrum)),
                (_, state)
                    if state >= MzMLParserState::SpectrumListDone
                        && state != MzMLParserState::EOF =>
                {
                    Ok(None)
                }
                (Err(mzdata::io::MzMLParserError::SectionOver(_)), _) => Ok(None),
                (_, MzMLParserState::EOF) | (Err(mzdata::io::MzMLParserError::EOF), _) => {
                    if closed.load(Ordering::Relaxed) {
                        // A complete document without (more) spectra, e.g. an empty run.
                        Ok(None)
                    } else {
                        Err("the file ends in the middle of the document: truncated?".into())
                    }
                }
                (Err(err), _) => Err(err.to_string().into()),
                (Ok(_), state) => Err(format!("unexpected parser state {state:?}").into()),
            }
        }
        Parser::Mgf(reader) => {
            let mut spectrum = MultiLayerSpectrum::default();
            match reader.read_into(&mut spectrum) {
                Ok(_) => Ok(Some(spectrum)),
                Err(mzdata::io::MGFError::IOError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    // mzdata stops at a file-header line it does not understand as if the
                    // file ended there: every spectrum after it would be lost without a word.
                    if matches!(
                        reader.state,
                        MGFParserState::Start | MGFParserState::FileHeader
                    ) {
                        Err("a line before the first BEGIN IONS is neither a KEY=value \
                             parameter nor a comment"
                            .into())
                    } else {
                        Ok(None)
                    }
                }
                // Only inside an entry (its header or peak lines).
                Err(
                    err @ (mzdata::io::MGFError::MalformedHeaderLine(_)
                    | mzdata::io::MGFError::MalformedPeakLine
                    | mzdata::io::MGFError::NotEnoughColumnsForPeakLine),
                ) => Err(ReadFailure::Entry(err.to_string())),
                Err(err) => Err(err.to_string().into()),
            }
        }
    }
}

/// What a panic of mzdata's parser said, in words: its messages end in Rust's debug form of
/// the number parser's error (`ParseIntError { kind: PosOverflow }`), which is translated.
fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        return "unknown parser failure".into();
    };
    in_words(message)
}

/// `message` with the debug forms of Rust's and mzdata's number-parsing errors put in words.
fn in_words(mut message: String) -> String {
    const WORDS: [(&str, &str); 8] = [
        // mzdata's `unwrap` of a number it could not parse: the reason is what follows.
        ("called `Result::unwrap()` on an `Err` value: ", ""),
        (
            "ParseIntError { kind: PosOverflow }",
            "the number is too large",
        ),
        (
            "ParseIntError { kind: NegOverflow }",
            "the number is too small",
        ),
        ("ParseIntError { kind: InvalidDigit }", "not a whole number"),
        ("ParseIntError { kind: Empty }", "the value is empty"),
        ("ParseFloatError { kind: Invalid }", "not a number"),
        ("ParseFloatError { kind: Empty }", "the value is empty"),
        ("FailedToExtractInt(Some(\"\"))", "the value is empty"),
    ];
    for (debug, words) in WORDS {
        message = message.replace(debug, words);
    }
    // mzdata's other failures to read an integer: `FailedToExtractInt(Some("x"))`.
    const OPEN: &str = "FailedToExtractInt(Some(\"";
    const CLOSE: &str = "\"))";
    while let Some(at) = message.find(OPEN) {
        let value_at = at + OPEN.len();
        let Some(end) = message[value_at..].find(CLOSE) else {
            break;
        };
        let words = format!(
            "{:?} is not a whole number",
            &message[value_at..value_at + end]
        );
        message.replace_range(at..value_at + end + CLOSE.len(), &words);
    }
    message
}

/// Whether `head` starts a bzip2 stream: `BZh` and a block size digit.
fn is_bzip2(head: &[u8]) -> bool {
    head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3])
}

fn sniff_format(head: &[u8]) -> Option<InputFormat> {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.contains("<mzML") || trimmed.contains("<indexedmzML") {
        return Some(InputFormat::MzML);
    }
    if trimmed.starts_with("<?xml") && !trimmed.contains("<mzML") {
        // XML whose root we did not see in the first 4 KiB: let the mzML parser decide.
        return (text.len() == 4096 || trimmed.contains("mzML")).then_some(InputFormat::MzML);
    }
    let mgf_like = trimmed.lines().take(200).any(|l| l.trim() == "BEGIN IONS");
    let header_like = trimmed.lines().next().is_some_and(|l| {
        let l = l.trim();
        l.is_empty()
            || l.bytes()
                .next()
                .is_some_and(|b| MGF_COMMENT_STARTS.contains(&b))
            || l.starts_with("BEGIN IONS")
            || l.contains('=')
    });
    (mgf_like && header_like).then_some(InputFormat::Mgf)
}

/// Whether an MGF-like head is an msalign file (TopFD's, FLASHDeconv's): ion blocks of
/// deconvolved neutral masses and charges, whose masses read as MGF would pass for m/z values.
/// Its blocks carry keys MGF has not (`PRECURSOR_MASS`, `MS_ONE_ID`, `FRACTION_ID`) and no
/// `PEPMASS`; FLASHDeconv's files also say so in their first comment.
fn is_msalign(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines().map(str::trim);
    let header: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.eq_ignore_ascii_case("BEGIN IONS"))
        .collect();
    if header
        .iter()
        .any(|l| l.starts_with('#') && l.to_ascii_lowercase().contains("msalign"))
    {
        return true;
    }
    let block: Vec<&str> = lines
        .take_while(|l| !l.eq_ignore_ascii_case("END IONS"))
        .collect();
    let key = |name: &str| block.iter().any(|l| l.starts_with(name));
    !key("PEPMASS=") && (key("PRECURSOR_MASS=") || key("MS_ONE_ID=") || key("FRACTION_ID="))
}

/// The version of a pre-1.0 draft mzML document (0.99.x), which mzforge does not read.
fn pre_release_mzml(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let at = text.find("mzML_0.")?;
    let version: String = text[at + 5..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    Some(version)
}

fn describe_head(head: &[u8]) -> String {
    if head.is_empty() {
        return "the file is empty".into();
    }
    if head.starts_with(HDF5_SIGNATURE) {
        return "it is an HDF5 file (mzMLb?), which mzforge reads from a local path only".into();
    }
    // Compressions mzforge does not read: their bytes shown as text would only look like
    // garbage.
    let compressions: [(&[u8], &str); 3] = [
        (b"\xfd7zXZ\x00", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"PK\x03\x04", "zip"),
    ];
    if let Some((_, name)) = compressions
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
    {
        return format!(
            "it is {name}-compressed; mzforge reads plain, gzip- and bzip2-compressed files: \
             decompress it first"
        );
    }
    let shown: String = String::from_utf8_lossy(&head[..head.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!("it starts with {shown:?}")
}

/// One spectrum as found by [`SpectrumReader::next_unparsed`]: an mzML `<spectrum>` element's
/// bytes, or (MGF, mzMLb) a spectrum the reader has parsed already.
pub struct UnparsedSpectrum(Unparsed);

enum Unparsed {
    Parsed(RawSpectrum),
    /// Found, but not readable: its [`Error::BadSpectrum`].
    Unreadable {
        index: u32,
        error: Error,
    },
    Xml {
        index: u32,
        xml: SpectrumXml,
        context: Arc<ParseContext>,
        limits: ReadLimits,
        /// Whether to try the lean parser first.
        lean: bool,
    },
}

impl std::fmt::Debug for UnparsedSpectrum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Unparsed::Parsed(raw) => raw.fmt(f),
            Unparsed::Unreadable { error, .. } => write!(f, "UnparsedSpectrum({error})"),
            Unparsed::Xml { index, xml, .. } => f
                .debug_struct("UnparsedSpectrum")
                .field("index", index)
                .field("start", &xml.start)
                .field("bytes", &xml.xml.len())
                .finish(),
        }
    }
}

impl UnparsedSpectrum {
    /// The same spectrum holding a copy of its bytes instead of a share of the reader's
    /// buffer.
    fn detached(mut self) -> UnparsedSpectrum {
        if let Unparsed::Xml { xml, .. } = &mut self.0 {
            *xml = xml.detached();
        }
        self
    }

    /// Position in the file.
    pub fn index(&self) -> u32 {
        match &self.0 {
            Unparsed::Parsed(raw) => raw.index,
            Unparsed::Unreadable { index, .. } | Unparsed::Xml { index, .. } => *index,
        }
    }

    /// Parses the spectrum's metadata (its arrays stay encoded). A spectrum that cannot be
    /// read (broken XML, a value that is not a number...) is an [`Error::BadSpectrum`] naming
    /// the file, the spectrum and the byte where it starts: the file's other spectra still
    /// read.
    pub fn parse(self) -> Result<RawSpectrum> {
        let (index, xml, context, limits, lean) = match self.0 {
            Unparsed::Parsed(raw) => return Ok(raw),
            Unparsed::Unreadable { error, .. } => return Err(error),
            Unparsed::Xml {
                index,
                xml,
                context,
                limits,
                lean,
            } => (index, xml, context, limits, lean),
        };
        if lean {
            // The lean parser does not panic; were it to, mzdata's parse decides.
            let parsed = catch_unwind(AssertUnwindSafe(|| mzml_lean::parse(&xml.xml, &context)));
            if let Ok(Ok(spectrum)) = parsed {
                return Ok(RawSpectrum {
                    index,
                    inner: Inner::Lean(Box::new(LeanParsed {
                        spectrum,
                        xml,
                        context,
                    })),
                    limits,
                    unresolved: None,
                });
            }
        }
        let message = match catch_unwind(AssertUnwindSafe(|| xml.parse(&context))) {
            Ok(Ok(mut spectrum)) => {
                let repairs = catch_unwind(AssertUnwindSafe(|| {
                    mzml_lean::mzdata_compression_repairs(&xml.xml, &context)
                }));
                if let (Ok(repairs), Some(arrays)) = (repairs, spectrum.arrays.as_mut()) {
                    for (kind, compression) in repairs {
                        if let Some(array) = arrays.get_mut(&kind) {
                            if array.compression == BinaryCompressionType::Zlib {
                                array.compression = compression;
                            }
                        }
                    }
                }
                return Ok(RawSpectrum {
                    index,
                    inner: Inner::Mzdata(Box::new(spectrum)),
                    limits,
                    unresolved: None,
                });
            }
            Ok(Err(message)) => message,
            Err(panic) => format!("parser failure: {}", panic_message(panic)),
        };
        Err(Error::BadSpectrum {
            path: context.path.clone(),
            index,
            native_id: xml.id(),
            message: format!(
                "cannot be read, from byte {}: {}",
                xml.start,
                in_words(message)
            ),
        })
    }
}

/// One spectrum as read, with its arrays still encoded. Decoding it is independent of the
/// reader, so it can run on a worker thread.
pub struct RawSpectrum {
    index: u32,
    inner: Inner,
    limits: ReadLimits,
    /// Why an array stored outside the document (mzMLb) could not be read.
    unresolved: Option<DecodeError>,
}

/// A spectrum as mzdata parsed it, or as the lean parser did.
enum Inner {
    Mzdata(Box<MultiLayerSpectrum>),
    Lean(Box<LeanParsed>),
}

/// What the lean parser read, with the element its arrays point into (and the context to
/// parse it fully, should the whole description be asked for).
struct LeanParsed {
    spectrum: LeanSpectrum,
    xml: SpectrumXml,
    context: Arc<ParseContext>,
}

impl std::fmt::Debug for RawSpectrum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSpectrum")
            .field("index", &self.index)
            .field("id", &self.native_id())
            .finish()
    }
}

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
    /// Position in the file.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Native id.
    pub fn native_id(&self) -> &str {
        match &self.inner {
            Inner::Mzdata(spectrum) => spectrum.id(),
            Inner::Lean(lean) => &lean.spectrum.native_id,
        }
    }

    /// MS level, as in [`RawSpectrum::meta`] (without building the rest of it).
    pub fn ms_level(&self) -> u8 {
        match &self.inner {
            Inner::Mzdata(spectrum) => spectrum.ms_level(),
            Inner::Lean(lean) => lean.spectrum.ms_level,
        }
    }

    /// The metadata (cheap: arrays are not decoded).
    pub fn meta(&self) -> SpectrumMeta {
        match &self.inner {
            Inner::Mzdata(spectrum) => meta_of(self.index, spectrum),
            Inner::Lean(lean) => lean_meta(self.index, &lean.spectrum),
        }
    }

    /// Whether the lean parser read this spectrum (not mzdata's builder).
    #[cfg(test)]
    pub(crate) fn is_lean(&self) -> bool {
        matches!(self.inner, Inner::Lean(_))
    }

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
pub(crate) enum DecodeError {
    NoMzArray,
    Broken(String),
    Limit {
        what: String,
        limit: u64,
        setting: &'static str,
    },
}

pub(crate) fn too_many_points(
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
pub(crate) fn mobility_array_type(kind: IonMobilityKind) -> ArrayType {
    mobility_array_types()
        .into_iter()
        .find(|(_, k)| *k == kind)
        .map_or(ArrayType::Unknown, |(array_type, _)| array_type)
}

/// The ion mobility array of mzdata's arrays, if any (the first of
/// [`mobility_array_types`] when there are several). Nothing is looked up when every array
/// is m/z or intensity, as in files without mobility.
fn mobility_array(
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

use mzdata::spectrum::bindata::{BinaryCompressionType, BinaryDataArrayType, DataArray};
use std::borrow::Cow;

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

/// What [`SpectrumMeta`] is made of, as mzdata's spectrum holds it.
struct MetaParts<'a> {
    native_id: &'a str,
    ms_level: u8,
    /// The first scan's start time, `None` (or NaN, see [`meta_of`]) when the file gives none.
    start_time_minutes: Option<f64>,
    polarity: ScanPolarity,
    continuity: SignalContinuity,
    /// The first precursor: its first ion (m/z, intensity, charge), its isolation window
    /// (target, lower, upper), and the native id of the spectrum it was selected from.
    precursor: Option<(Option<IonValues>, WindowValues, Option<&'a str>)>,
    /// The first scan's first window (lower, upper).
    scan_window: Option<(f32, f32)>,
    /// The ion mobility array's kind and the unit its term names.
    mobility_array: Option<(IonMobilityKind, mzdata::params::Unit)>,
    /// The first scan's ion mobility value.
    scan_mobility: Option<(f64, ScanMobilityKind)>,
}

fn build_meta(index: u32, parts: MetaParts) -> SpectrumMeta {
    let polarity = match parts.polarity {
        ScanPolarity::Positive => Polarity::Positive,
        ScanPolarity::Negative => Polarity::Negative,
        _ => Polarity::Unknown,
    };
    let declared_signal = match parts.continuity {
        SignalContinuity::Profile => Some(SignalKind::Profile),
        SignalContinuity::Centroid => Some(SignalKind::Centroid),
        _ => None,
    };
    let precursor = parts
        .precursor
        .map(|(ion, (target, lower, upper), spectrum_ref)| {
            let finite_pos = |v: f32| (v.is_finite() && v > 0.0).then_some(v as f64);
            Precursor {
                mz: ion.map(|i| i.0).unwrap_or(f64::NAN),
                charge: ion.and_then(|i| i.2),
                intensity: ion.map(|i| i.1).filter(|v| v.is_finite() && *v > 0.0),
                isolation_target_mz: finite_pos(target),
                isolation_lower_mz: finite_pos(lower),
                isolation_upper_mz: finite_pos(upper),
                spectrum_ref: spectrum_ref.map(str::to_owned),
            }
        });
    let scan_window = parts
        .scan_window
        .filter(|(lower, upper)| upper > lower)
        .map(|(lower, upper)| (lower as f64, upper as f64));
    SpectrumMeta {
        index,
        native_id: parts.native_id.to_owned(),
        ms_level: parts.ms_level,
        rt_seconds: parts
            .start_time_minutes
            .map(|minutes| minutes * 60.0)
            .filter(|seconds| seconds.is_finite()),
        polarity,
        precursor,
        scan_window,
        declared_signal,
        ion_mobility_array: parts
            .mobility_array
            .map(|(kind, unit)| IonMobilityArrayInfo {
                kind,
                unit: match unit.for_param().1 {
                    "" => kind.default_unit().map(str::to_owned),
                    name => Some(name.to_owned()),
                },
            }),
        scan_ion_mobility: parts
            .scan_mobility
            .map(|(value, kind)| ScanMobility { value, kind }),
    }
}

pub(crate) fn meta_of(index: u32, s: &MultiLayerSpectrum) -> SpectrumMeta {
    let precursor = s.precursor().map(|p| {
        let window = &p.isolation_window;
        (
            p.ions.first().map(|i| (i.mz, i.intensity, i.charge)),
            (window.target, window.lower_bound, window.upper_bound),
            p.precursor_id.as_deref(),
        )
    });
    let first_scan = s.acquisition().first_scan();
    let scan_window = first_scan
        .and_then(|scan| scan.scan_windows.first())
        .map(|w| (w.lower_bound, w.upper_bound));
    // As `IonMobilityMeasure::ion_mobility`, with the term it found.
    let scan_mobility = first_scan
        .and_then(|scan| scan.ion_mobility_type())
        .and_then(|param| {
            let kind = ScanMobilityKind::ALL
                .into_iter()
                .find(|kind| Some(kind.accession()) == param.accession)?;
            Some((param.value.to_f64().ok()?, kind))
        });
    let mobility_array = s
        .raw_arrays()
        .and_then(mobility_array)
        .map(|(array, kind)| (kind, array.unit));
    build_meta(
        index,
        MetaParts {
            native_id: s.id(),
            ms_level: s.ms_level(),
            // mzdata's model has no "unknown" start time (a scan without one reads as 0):
            // where mzforge reads it through mzdata, an unknown one is set to NaN
            // (`SpectrumXml::parse`, `MgfComments`).
            start_time_minutes: first_scan.map(|scan| scan.start_time),
            polarity: s.polarity(),
            continuity: s.signal_continuity(),
            precursor,
            scan_window,
            mobility_array,
            scan_mobility,
        },
    )
}

pub(crate) fn lean_meta(index: u32, s: &LeanSpectrum) -> SpectrumMeta {
    build_meta(
        index,
        MetaParts {
            native_id: &s.native_id,
            ms_level: s.ms_level,
            start_time_minutes: s.start_time_minutes,
            polarity: s.polarity,
            continuity: s.continuity,
            precursor: s
                .precursor
                .as_ref()
                .map(|p| (p.ion, p.window, s.precursor_ref.as_deref())),
            scan_window: s.scan_window,
            mobility_array: s.mobility.as_ref().map(|(_, kind, unit)| (*kind, *unit)),
            scan_mobility: s.scan_mobility,
        },
    )
}

/// The header of the input file (instruments, software, data processing), kept to write a
/// centroided mzML that describes where its data came from.
#[derive(Clone)]
pub struct SourceMetadata(pub(crate) Arc<mzdata::meta::FileMetadataConfig>);

impl std::fmt::Debug for SourceMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceMetadata")
    }
}

/// The full description of one input spectrum (all its cvParams, scans, precursors), kept to
/// write it back out, with the kind and unit of its ion mobility array, if it has one (to
/// write the mobility of the peaks kept under the same term).
#[derive(Clone)]
pub struct SourceDescription(
    pub(crate) Box<mzdata::spectrum::SpectrumDescription>,
    pub(crate) Option<(ArrayType, mzdata::params::Unit)>,
);

impl std::fmt::Debug for SourceDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SourceDescription")
            .field(&self.0.id)
            .finish()
    }
}

impl PartialEq for SourceDescription {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id && self.0.index == other.0.index
    }
}

/// Opens a local input file; a directory is refused with words (opened, it would fail on its
/// first read with "Is a directory (os error 21)").
fn open_input(path: &Path) -> Result<File> {
    let io_err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(io_err(std::io::Error::other(
            "a directory, not a file (`mzforge run` takes directories and runs every mzML, \
             mzMLb and MGF file under them)",
        )));
    }
    Ok(file)
}

impl SpectrumReader {
    /// The file header, for [`CentroidMzMLWriter`](crate::CentroidMzMLWriter).
    pub fn source_metadata(&self) -> SourceMetadata {
        let mut config = match &self.parser {
            Parser::MzML(reader) | Parser::Split { header: reader, .. } => {
                mzdata::meta::FileMetadataConfig::from(reader.as_ref())
            }
            Parser::Mgf(reader) => mzdata::meta::FileMetadataConfig::from(reader.as_ref()),
            Parser::Finished => mzdata::meta::FileMetadataConfig::default(),
        };
        if config.file_description().source_files.is_empty() {
            config
                .file_description_mut()
                .source_files
                .push(self.input_as_source_file());
        }
        SourceMetadata(Arc::new(config))
    }

    /// The input itself as an mzML `sourceFile`, for a header that names no source file (MGF
    /// has no header; an mzML may leave its `sourceFileList` out): its name, its directory as a
    /// URI, and its format.
    fn input_as_source_file(&self) -> mzdata::meta::SourceFile {
        use mzdata::params::ControlledVocabulary;
        let ms = ControlledVocabulary::MS;
        let text = self.path.to_string_lossy();
        let (directory, name) = match text.rsplit_once('/') {
            Some((directory, name)) => (directory.to_string(), name.to_string()),
            None => (".".to_string(), text.to_string()),
        };
        let location = if directory.contains("://") {
            directory
        } else {
            let absolute = std::fs::canonicalize(if directory.is_empty() {
                "/"
            } else {
                &directory
            })
            .map_or(directory, |p| p.to_string_lossy().into_owned());
            format!("file://{absolute}")
        };
        let (file_format, id_format) = match self.info.format {
            Some(InputFormat::Mgf) => (
                Some(ms.param(1001062, "Mascot MGF format")),
                Some(ms.param(1000774, "multiple peak list nativeID format")),
            ),
            Some(InputFormat::MzMLb) => (Some(ms.param(1002838, "mzMLb format")), None),
            Some(InputFormat::MzML) | None => (Some(ms.param(1000584, "mzML format")), None),
        };
        mzdata::meta::SourceFile {
            name,
            location,
            id: "mzforge_input".into(),
            file_format,
            id_format,
            ..Default::default()
        }
    }
}

impl RawSpectrum {
    /// The full description, for [`CentroidMzMLWriter`](crate::CentroidMzMLWriter). A
    /// spectrum the lean parser read is parsed again, by mzdata, for it (the pipeline asks
    /// for mzdata's parse up front when it keeps every description).
    pub fn source_description(&self) -> SourceDescription {
        let (description, mobility) = match &self.inner {
            Inner::Mzdata(spectrum) => (
                spectrum.description().clone(),
                spectrum
                    .raw_arrays()
                    .and_then(mobility_array)
                    .map(|(array, _)| (array.name.clone(), array.unit)),
            ),
            Inner::Lean(lean) => (
                lean.full_description(self.index),
                lean.spectrum
                    .mobility
                    .as_ref()
                    .map(|(_, kind, unit)| (mobility_array_type(*kind), *unit)),
            ),
        };
        SourceDescription(Box::new(description), mobility)
    }
}

impl LeanParsed {
    /// mzdata's description of the element. The lean parser accepts only elements mzdata
    /// parses too; should mzdata fail all the same, what the lean parser read stands in.
    fn full_description(&self, index: u32) -> mzdata::spectrum::SpectrumDescription {
        match catch_unwind(AssertUnwindSafe(|| self.xml.parse(&self.context))) {
            Ok(Ok(spectrum)) => spectrum.description,
            _ => {
                let lean = &self.spectrum;
                mzdata::spectrum::SpectrumDescription {
                    id: lean.native_id.clone(),
                    index: index as usize,
                    ms_level: lean.ms_level,
                    polarity: lean.polarity,
                    signal_continuity: lean.continuity,
                    ..Default::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes handed over at most `.1` at a time.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// What `MgfComments` passes on of `text`, read `step` bytes at a time, and its notes.
    fn uncommented(text: &str, step: usize) -> (String, MgfNotes) {
        let notes = ReaderNotes::default();
        let mut out = String::new();
        MgfComments::new(Trickle(text.as_bytes(), step), notes.0.clone())
            .read_to_string(&mut out)
            .unwrap();
        (out, notes.mgf())
    }

    #[test]
    fn bytes_that_are_not_utf8_are_read_as_latin1_and_counted() {
        // UTF-8 characters (2, 3 and 4 bytes) kept whole however the reads cut them; lone
        // bytes (a Latin-1 µ, a stray continuation byte, a character cut by the end) as Latin-1.
        let text: &[u8] =
            b"TITLE=\xc2\xb5M \xe2\x82\xac \xf0\x9f\x92\xa7\nTITLE=\xb5M\n\x80x\xe2\x82";
        let expected = "TITLE=\u{b5}M \u{20ac} \u{1f4a7}\nTITLE=\u{b5}M\n\u{80}x\u{e2}\u{82}";
        for step in [1, 2, 3, 5, 4096] {
            let notes = ReaderNotes::default();
            let mut out = String::new();
            Latin1Fallback::new(Trickle(text, step), notes.0.clone())
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, expected, "{step} bytes a read");
            assert_eq!(notes.mgf().latin1_bytes, 4, "{step} bytes a read");
            assert_eq!(
                notes.mgf().first_latin1_byte,
                Some(25),
                "{step} bytes a read"
            );
        }
        let notes = MgfNotes {
            latin1_bytes: 1,
            first_latin1_byte: Some(29),
            ..Default::default()
        };
        assert_eq!(
            notes.warnings(),
            ["1 byte of the file is not UTF-8 (the first at byte 29): read as Latin-1"]
        );
    }

    #[test]
    fn mgf_entries_without_end_ions_are_ended_before_the_next_one_and_noted() {
        // Entry b has no END IONS; c has an indented one; d has none and the next BEGIN IONS
        // is indented (mzdata reads lines trimmed), as are e's comment, charge and peak
        // lines; the last is cut short.
        let text = "BEGIN IONS\nTITLE=a\n100 1\nEND IONS\nBEGIN IONS\r\nTITLE=b\n100 2\n\
                    BEGIN IONS \nTITLE=c\n100 3\n  END IONS\n  BEGIN IONS\nTITLE=d\n100 4\n\
                    \tBEGIN IONS\n  # note\n CHARGE=2+ and 3+\n  100 5\nEND IONS\n\
                    BEGIN IONS\nTITLE=f\n100 6";
        let kept = "BEGIN IONS\nRTINSECONDS=NaN\nTITLE=a\n100 1\nEND IONS\nBEGIN IONS\n\
                    RTINSECONDS=NaN\nTITLE=b\n100 2\nEND IONS\nBEGIN IONS\nRTINSECONDS=NaN\n\
                    TITLE=c\n100 3\n  END IONS\nBEGIN IONS\nRTINSECONDS=NaN\nTITLE=d\n100 4\n\
                    END IONS\nBEGIN IONS\nRTINSECONDS=NaN\n  100 5\nEND IONS\nBEGIN IONS\n\
                    RTINSECONDS=NaN\nTITLE=f\n100 6";
        for step in [1, 2, 3, 7, 11, 4096] {
            let (out, notes) = uncommented(text, step);
            assert_eq!(out, kept, "{step} bytes a read");
            assert_eq!(notes.entries_without_end, 2, "{step} bytes a read");
            assert_eq!(notes.charge_lines_dropped, 1, "{step} bytes a read");
            assert!(notes.ends_inside_an_entry, "{step} bytes a read");
        }
        // A file that ends with END IONS, with or without a line break, is whole.
        for end in ["END IONS", "END IONS\n", "END IONS \r\n\n", "  END IONS"] {
            let (_, notes) = uncommented(&format!("BEGIN IONS\n100 1\n{end}"), 3);
            assert_eq!(notes, MgfNotes::default(), "{end:?}");
        }
        let notes = MgfNotes {
            entries_without_end: 2,
            ends_inside_an_entry: true,
            ..Default::default()
        };
        assert_eq!(
            notes.warnings(),
            [
                "2 MGF entries have no END IONS line: each was read up to the next BEGIN IONS",
                "the file ends inside its last MGF entry (no END IONS line): it may have been cut \
                 short; that entry was read up to the end"
            ]
        );
    }

    #[test]
    fn mgf_charge_lines_without_one_charge_are_left_out_and_counted() {
        let text = "COM=run\nBEGIN IONS\nCHARGE=2+ and 3+\nPEPMASS=500\nCHARGE=2+\nCOMMENT=c\n\
                    C\nCHARGE=\n100 1\nEND IONS\nCHARGE=2+,3+";
        let kept = "COM=run\nBEGIN IONS\nRTINSECONDS=NaN\nPEPMASS=500\nCHARGE=2+\nCOMMENT=c\n\
                    C\n100 1\nEND IONS\n";
        for step in [1, 2, 7, 4096] {
            let (out, notes) = uncommented(text, step);
            assert_eq!(out, kept, "{step} bytes a read");
            assert_eq!(notes.charge_lines_dropped, 3);
            assert_eq!(notes.first_charge_line.as_deref(), Some("CHARGE=2+ and 3+"));
        }
        for one in ["2+", "+2", "3-", "2", " 2+ ", "0"] {
            assert!(is_single_charge(one.as_bytes()), "{one}");
        }
        for not_one in ["", "2+ and 3+", "2+,3+", "+", "2+3", "x"] {
            assert!(!is_single_charge(not_one.as_bytes()), "{not_one}");
        }
        let notes = MgfNotes {
            charge_lines_dropped: 1,
            first_charge_line: Some("CHARGE=2+ and 3+".into()),
            ..Default::default()
        };
        assert_eq!(
            notes.warnings(),
            ["1 MGF entry gives no single precursor charge (the first: `CHARGE=2+ and 3+`): its \
              precursor charge is left unknown"]
        );
        assert!(MgfNotes::default().warnings().is_empty());
    }

    #[test]
    fn mgf_retention_time_ranges_are_read_as_their_start() {
        // Neither a number nor a range (mzdata panicked on them): left out.
        let text = "BEGIN IONS\nRTINSECONDS=12.5-13.5\nRTINSECONDS=1.2e-3\nRTINSECONDS = 7\n\
                    R\nRTINSECONDS=a-b\nRTINSECONDS= 60 - 61.5 \r\nRTINSECONDS=\n\
                    RTINSECONDS= 8 \nRTINSECONDS=abc\nEND IONS\n";
        let kept = "BEGIN IONS\nRTINSECONDS=NaN\nRTINSECONDS=12.5\nRTINSECONDS=1.2e-3\n\
                    RTINSECONDS = 7\nR\nRTINSECONDS=60\nRTINSECONDS= 8 \nEND IONS\n";
        for step in [1, 3, 4096] {
            let (out, notes) = uncommented(text, step);
            assert_eq!(out, kept, "{step} bytes a read");
            assert_eq!(notes.rt_ranges, 2);
            assert_eq!(
                notes.first_rt_range.as_deref(),
                Some("RTINSECONDS=12.5-13.5")
            );
            assert_eq!(notes.rt_values_dropped, 3);
            assert_eq!(notes.charge_lines_dropped, 0);
            assert_eq!(
                notes.warnings(),
                [
                    "2 MGF entries give a retention time range (the first: \
                     `RTINSECONDS=12.5-13.5`): their rt_seconds is the range's start",
                    "3 MGF entries give a retention time that is not a number (the first: \
                     `RTINSECONDS=a-b`): their rt_seconds is unknown"
                ]
            );
        }
    }

    /// Compressions mzforge does not read are named, with what to do, instead of their bytes.
    #[test]
    fn unread_compressions_are_named() {
        for (head, name) in [
            (&b"\xfd7zXZ\x00\x00\x04"[..], "xz"),
            (&b"\x28\xb5\x2f\xfd\x00"[..], "zstd"),
            (&b"PK\x03\x04\x14\x00"[..], "zip"),
        ] {
            let said = describe_head(head);
            assert!(
                said.starts_with(&format!("it is {name}-compressed")),
                "{said}"
            );
            assert!(said.ends_with("decompress it first"), "{said}");
        }
        assert!(describe_head(b"hello").contains("\"hello\""));
    }

    #[test]
    fn debug_forms_of_number_errors_are_put_in_words() {
        assert_eq!(
            in_words(
                "Failed to parse integer from `order`: ParseIntError { kind: PosOverflow }".into()
            ),
            "Failed to parse integer from `order`: the number is too large"
        );
        assert_eq!(
            in_words("Failed to parse ms level: FailedToExtractInt(Some(\"\"))".into()),
            "Failed to parse ms level: the value is empty"
        );
        assert_eq!(
            in_words("Failed to parse ms level: FailedToExtractInt(Some(\"two\")) here".into()),
            "Failed to parse ms level: \"two\" is not a whole number here"
        );
        assert_eq!(
            in_words("FailedToExtractInt(Some(\"x".into()),
            "FailedToExtractInt(Some(\"x"
        );
    }

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

    #[test]
    fn instrument_models_leave_out_attributes_repeats_and_the_bare_model_term() {
        use mzdata::params::ControlledVocabulary::{MS, UO};
        let params = [
            MS.param(1000448u32, "LTQ FT"),
            MS.param_val(1000529u32, "instrument serial number", "SN06061F"),
            MS.param(1000032u32, "customization"),
            // A second configuration sharing the first one's parameter group.
            MS.param(1000448u32, "LTQ FT"),
            MS.param(1000031u32, "instrument model"),
            MS.param_val(1000031u32, "instrument model", " Orbitrap Astral "),
            UO.param(31u32, "minute"),
            mzdata::Param::new_key_value("instrument", "a user's name for it"),
        ];
        assert_eq!(
            instrument_models(params.iter()),
            ["LTQ FT", "Orbitrap Astral"]
        );
        assert!(instrument_models([MS.param(1000031u32, "instrument model")].iter()).is_empty());
    }

    /// Every mzML file of `../shared/data` (plain, gzip or bzip2), but the broken ones of `edge/`.
    fn shared_mzml_files() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
        if !root.is_dir() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} is missing: tests need ../shared/data in CI",
                root.display()
            );
            eprintln!("skipping: {} not found", root.display());
            return Vec::new();
        }
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_lowercase();
                if path.is_dir() {
                    dirs.push(path);
                } else if name.ends_with(".mzml")
                    || name.ends_with(".mzml.gz")
                    || name.ends_with(".mzml.bz2")
                {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    /// mzdata's own sequential reading of a file: each spectrum's description and encoded
    /// arrays, or `None` when mzdata cannot read the whole file.
    fn read_with_mzdata(path: &Path) -> Option<Vec<MultiLayerSpectrum>> {
        let file: DynRead = Box::new(File::open(path).unwrap());
        let (head, file) = peek(file, 2).unwrap();
        let stream: DynRead = if head == [0x1f, 0x8b] {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        } else if head == *b"BZ" {
            Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(file)))
        } else {
            file
        };
        catch_unwind(AssertUnwindSafe(|| {
            let mut reader = MzMLReaderType::<DynRead>::with_buffer_capacity_and_detail_level(
                stream,
                READ_BUFFER,
                DetailLevel::Lazy,
            );
            let mut spectra = Vec::new();
            loop {
                let mut spectrum = MultiLayerSpectrum::default();
                match reader.read_into(&mut spectrum) {
                    Ok(_) if reader.state == MzMLParserState::SpectrumDone => {
                        spectra.push(spectrum)
                    }
                    _ if reader.state >= MzMLParserState::SpectrumListDone
                        && reader.state != MzMLParserState::EOF =>
                    {
                        return Some(spectra)
                    }
                    _ => return None,
                }
            }
        }))
        .ok()
        .flatten()
    }

    /// Each array's kind, encoding and bytes (summed), sorted (the map's order is a hash's).
    fn arrays(s: &MultiLayerSpectrum) -> Vec<String> {
        let mut arrays: Vec<String> = s
            .raw_arrays()
            .map(|map| {
                map.iter()
                    .map(|(which, a)| {
                        format!(
                            "{which:?} {:?} {:?} {:?} {} bytes, sum {}",
                            a.dtype,
                            a.compression,
                            a.params,
                            a.data.len(),
                            a.data.iter().map(|&b| b as u64).sum::<u64>()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        arrays.sort();
        arrays
    }

    /// Every spectrum of `path` as mzforge reads it (lean parsing on or off), and whether the
    /// spectra were split out for parsing; `None` for a corrupt file of `edge/` that mzdata reads
    /// without checking all of it.
    fn read_ours(path: &Path, lean: bool) -> Option<(Vec<RawSpectrum>, bool)> {
        let read = || -> Result<(Vec<RawSpectrum>, bool)> {
            let mut reader = SpectrumReader::open(path)?;
            reader.set_lean_parsing(lean);
            let split = matches!(reader.parser, Parser::Split { .. });
            let found =
                std::iter::from_fn(|| reader.next_raw().transpose()).collect::<Result<_>>()?;
            Ok((found, split))
        };
        match read() {
            Ok(found) => Some(found),
            Err(e) if path.parent().is_some_and(|p| p.ends_with("edge")) => {
                eprintln!("{}: {e}", path.display());
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn split_parsing_equals_mzdata_reading_on_every_real_file() {
        let mut compared = 0;
        for path in shared_mzml_files() {
            let Some(expected) = read_with_mzdata(&path) else {
                continue;
            };
            let name = path.display();
            let Some((found, split)) = read_ours(&path, false) else {
                continue;
            };
            assert_eq!(found.len(), expected.len(), "{name}");
            for (ours, theirs) in found.iter().zip(&expected) {
                let Inner::Mzdata(ours) = &ours.inner else {
                    panic!("{name}: a lean parse")
                };
                let unknown = ours
                    .acquisition()
                    .first_scan()
                    .is_some_and(|scan| scan.start_time.is_nan());
                let theirs = &start_time_unknown(theirs, unknown);
                // NaN is no NaN's equal: compared by their text.
                assert_eq!(
                    format!("{:?}", ours.description()),
                    format!("{:?}", theirs.description()),
                    "{name}"
                );
                assert_eq!(arrays(ours), arrays(theirs), "{name}");
            }
            if split && !expected.is_empty() {
                compared += 1;
            }
        }
        // Most of the 40-odd files hold a spectrum list to split.
        assert!(
            compared >= 30 || shared_mzml_files().is_empty(),
            "{compared}"
        );
    }

    /// mzdata's spectrum with its first scan's start time unknown (NaN), as mzforge reads a
    /// scan without one, if `unknown`: mzdata's reading must then have made it 0 (or have no
    /// scan).
    fn start_time_unknown(theirs: &MultiLayerSpectrum, unknown: bool) -> MultiLayerSpectrum {
        let mut theirs = theirs.clone();
        if let (true, Some(scan)) = (unknown, theirs.description.acquisition.first_scan_mut()) {
            assert_eq!(scan.start_time, 0.0, "{}", theirs.description.id);
            scan.start_time = f64::NAN;
        }
        theirs
    }

    /// Decoded arrays (bit for bit) with their repairs, or the error's text.
    type Decoded = std::result::Result<(Vec<u64>, Vec<u32>, Repairs), String>;

    fn decoded(raw: &RawSpectrum, path: &Path) -> Decoded {
        raw.decode(path)
            .map(|(s, repairs)| {
                (
                    s.mz.iter().map(|v| v.to_bits()).collect(),
                    s.intensity.iter().map(|v| v.to_bits()).collect(),
                    repairs,
                )
            })
            .map_err(|e| e.to_string())
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

    #[test]
    fn lean_parsing_equals_mzdata_reading_on_every_real_file() {
        let (mut lean_total, mut all_total, mut bsa1) = (0usize, 0usize, None);
        let mut report = Vec::new();
        for path in shared_mzml_files() {
            let Some(expected) = read_with_mzdata(&path) else {
                continue;
            };
            let name = path.display();
            let Some((found, _)) = read_ours(&path, true) else {
                continue;
            };
            assert_eq!(found.len(), expected.len(), "{name}");
            let mut lean = 0;
            for (k, (ours, theirs)) in found.iter().zip(&expected).enumerate() {
                let index = k as u32;
                let theirs = &start_time_unknown(theirs, ours.meta().rt_seconds.is_none());
                assert_eq!(
                    format!("{:?}", ours.meta()),
                    format!("{:?}", meta_of(index, theirs)),
                    "{name}, spectrum {k}"
                );
                let reference = RawSpectrum {
                    index,
                    inner: Inner::Mzdata(Box::new(theirs.clone())),
                    limits: ReadLimits::default(),
                    unresolved: None,
                };
                assert_eq!(
                    decoded(ours, &path),
                    decoded(&reference, &path),
                    "{name}, spectrum {k}"
                );
                lean += usize::from(ours.is_lean());
            }
            report.push(format!("{name}: {lean} of {} lean", found.len()));
            if path.ends_with("runs/BSA1.mzML") {
                bsa1 = Some((lean, found.len()));
            }
            lean_total += lean;
            all_total += found.len();
        }
        eprintln!("{}", report.join("\n"));
        if shared_mzml_files().is_empty() {
            return;
        }
        eprintln!("lean: {lean_total} of {all_total} spectra");
        let (lean, all) = bsa1.expect("BSA1.mzML is read");
        assert_eq!(lean, all, "BSA1.mzML: every spectrum lean");
        assert!(
            lean_total * 10 >= all_total * 9,
            "only {lean_total} of {all_total} spectra lean"
        );
    }
}
