//! MGF as mzdata's reader can take it: the stream adapters that read what Mascot's format
//! allows and mzdata does not (comments anywhere, several charges, retention time ranges,
//! entries without `END IONS`, indented lines, Latin-1 bytes), and what they mended.

use std::collections::VecDeque;
use std::io::{BufReader, Read};
use std::sync::{Arc, Mutex};

use crate::wording::{agree, count};

/// The first bytes of the comment lines of MGF (Mascot's format allows them anywhere).
pub(super) const MGF_COMMENT_STARTS: [u8; 4] = [b'#', b';', b'!', b'/'];

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
pub(super) struct MgfComments<R> {
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
    /// Lines of the input consumed whole so far.
    lines: u64,
    marks: MgfLines,
    /// Lines ended outside the entries by the bytes being passed on: where each ends in them,
    /// and its number among the lines they end (from 1).
    outside: Vec<(usize, u64)>,
    notes: Arc<Mutex<MgfNotes>>,
}

/// Where lines of an MGF stream are in the input, for naming the place of an entry or line
/// that cannot be read: a handle shared between [`MgfComments`], which marks each `BEGIN IONS`
/// line it passes on and each line outside the entries, and the reader, which knows how much
/// of what was passed on mzdata has read (mzdata reads ahead, up to its buffer's 8 KiB, so the
/// bytes read from the input say little about where it stopped).
#[derive(Clone, Default)]
pub(super) struct MgfLines(Arc<Mutex<LineMarks>>);

#[derive(Default)]
struct LineMarks {
    /// Bytes passed on so far.
    passed: u64,
    /// The latest marks, oldest first.
    marks: VecDeque<LineMark>,
}

#[derive(Clone, Copy)]
struct LineMark {
    /// The position just past the line in what was passed on.
    past: u64,
    /// The line's number in the input (from 1).
    line: u64,
    /// A `BEGIN IONS` line (else a line outside the entries).
    begins_entry: bool,
}

/// Marks remembered: far more than mzdata's buffer can hold (a line passed on is at least one
/// byte, but an entry at least 36 bytes, and lines outside entries are a file's few header
/// lines and blank lines between entries).
const LINE_MARKS_KEPT: usize = 1024;

impl MgfLines {
    /// The input line of the `BEGIN IONS` of the entry that the first `read` bytes of what
    /// was passed on end in; `None` before the first entry (or an entry no longer
    /// remembered).
    pub(super) fn line_of_entry_at(&self, read: u64) -> Option<u64> {
        let marks = self.0.lock().ok()?;
        let after = marks.marks.partition_point(|mark| mark.past <= read);
        let mark = marks
            .marks
            .range(..after)
            .rev()
            .find(|mark| mark.begins_entry)?;
        Some(mark.line)
    }

    /// The input line of the line outside the entries that the first `read` bytes of what was
    /// passed on end with (mzdata reads whole lines, so a line it failed on); `None` if they
    /// end elsewhere.
    pub(super) fn line_ending_at(&self, read: u64) -> Option<u64> {
        let marks = self.0.lock().ok()?;
        let after = marks.marks.partition_point(|mark| mark.past <= read);
        let mark = marks.marks.get(after.checked_sub(1)?)?;
        (mark.past == read && !mark.begins_entry).then_some(mark.line)
    }

    /// Bytes passed on so far.
    pub(super) fn passed(&self) -> u64 {
        self.0.lock().map_or(0, |marks| marks.passed)
    }

    fn mark(&self, past: u64, line: u64, begins_entry: bool) {
        if let Ok(mut marks) = self.0.lock() {
            if marks.marks.len() == LINE_MARKS_KEPT {
                marks.marks.pop_front();
            }
            marks.marks.push_back(LineMark {
                past,
                line,
                begins_entry,
            });
        }
    }

    fn pass(&self, n: usize) {
        if let Ok(mut marks) = self.0.lock() {
            marks.passed += n as u64;
        }
    }
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

/// What a [`SpectrumReader`](super::SpectrumReader) has left out of its file (see
/// [`SpectrumReader::notes`](super::SpectrumReader::notes)).
#[derive(Debug, Default, Clone)]
pub struct ReaderNotes(pub(super) Arc<Mutex<MgfNotes>>);

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
    pub(super) fn new(inner: R, notes: Arc<Mutex<MgfNotes>>) -> Self {
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
            lines: 0,
            marks: MgfLines::default(),
            outside: Vec::new(),
            notes,
        }
    }

    /// Where the entries and the lines outside them that it passes on are in the input.
    pub(super) fn line_marks(&self) -> MgfLines {
        self.marks.clone()
    }

    /// Judges the held line: passed on as it is, unless it is a `CHARGE` line without a
    /// single charge (left out), an `RTINSECONDS` range (passed on as its start), a
    /// `BEGIN IONS` line (followed by [`UNKNOWN_RT`], and after an `END IONS` line if the
    /// entry before has none) or an indented comment (left out).
    fn judge_held(&mut self) {
        let line_ended = self.held.ends_with(b"\n");
        let (was_in_entry, pending) = (self.in_entry, self.pending.len());
        self.judge_held_line();
        // A line kept outside the entries (a `BEGIN IONS` line marks its entry instead).
        if !was_in_entry && !self.in_entry && self.pending.len() > pending {
            let past = self.marks.passed() + self.pending.len() as u64;
            self.marks
                .mark(past, self.lines + u64::from(!line_ended), false);
        }
    }

    fn judge_held_line(&mut self) {
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
            // The held line's newline is counted, unless the input ended without one.
            let number = self.lines + u64::from(!line.ends_with(b"\n"));
            let past = self.marks.passed() + self.pending.len() as u64;
            self.marks.mark(past, number, true);
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
/// which mzdata trims as well, comes here.) `outside` gets the lines ended outside the entries
/// (but `BEGIN IONS` lines): where each ends in `passed`, and its number among the lines ended.
fn up_to_begin_ions(
    line: &mut Vec<u8>,
    passed: &[u8],
    in_entry: &mut bool,
    outside: &mut Vec<(usize, u64)>,
) -> (usize, bool) {
    // One byte past the limit marks a line too long to be `BEGIN IONS`.
    let keep = |line: &mut Vec<u8>, bytes: &[u8]| {
        let room = (LINE_START + 1).saturating_sub(line.len());
        line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    };
    let mut start = 0;
    for (number, end) in (1..).zip(memchr::memchr_iter(b'\n', passed)) {
        keep(line, &passed[start..end]);
        let text = line.trim_ascii();
        let begins = text == BEGIN_IONS;
        if !*in_entry && !begins {
            outside.push((end + 1, number));
        }
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

/// The lines `bytes` end.
fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
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
                let n = hand_over(&mut self.pending, out);
                self.marks.pass(n);
                return Ok(n);
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
                self.lines += newlines(&buf[..taken]);
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
                self.lines += newlines(&buf[..skipped]);
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
            self.outside.clear();
            let (n, begins) = up_to_begin_ions(
                &mut self.line,
                &buf[..n],
                &mut self.in_entry,
                &mut self.outside,
            );
            let (lines, passed) = (self.lines, self.marks.passed());
            for &(end, number) in &self.outside {
                self.marks.mark(passed + end as u64, lines + number, false);
            }
            self.lines += newlines(&buf[..n]);
            if begins {
                // The `BEGIN IONS` line ends these bytes.
                self.marks.mark(passed + n as u64, self.lines, true);
                self.pending.extend_from_slice(UNKNOWN_RT);
            }
            out[..n].copy_from_slice(&buf[..n]);
            self.line_start = buf[n - 1] == b'\n';
            self.inner.consume(n);
            self.marks.pass(n);
            return Ok(n);
        }
    }
}

/// An MGF stream made valid UTF-8: a byte that is not part of a UTF-8 character is read as
/// Latin-1 (as mzdata reads such bytes in mzML attribute values) and counted in [`MgfNotes`].
/// mzdata's MGF reader reads lines into `String`s, and stopped the whole file at the first
/// such byte (a `µ` written in a title by a tool using a Windows code page).
pub(super) struct Latin1Fallback<R> {
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
    pub(super) fn new(inner: R, notes: Arc<Mutex<MgfNotes>>) -> Self {
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
    fn entries_and_lines_outside_them_are_found_by_their_line_in_the_input() {
        // Comment lines left out, a `CHARGE` line dropped, an `RTINSECONDS` line added after
        // each `BEGIN IONS`, an indented `BEGIN IONS`, one without `END IONS` before it, a
        // `BEGIN IONS` after other white space (passed on unjudged) and a last one without a
        // line break: what is passed on has other lines than the input.
        let text = "# made by hand\nMASS=Monoisotopic\nBEGIN IONS\nTITLE=a\n; note\n\
                    CHARGE=2+ and 3+\n100 1\nEND IONS\n\n  BEGIN IONS\nTITLE=b\n200 2\n\
                    BEGIN IONS\nTITLE=c\n# inside\n300 3\nEND IONS\n\x0cBEGIN IONS\n\
                    TITLE=d\nEND IONS\nBEGIN IONS";
        let begin_lines = [3, 10, 13, 18, 21];
        for step in [1, 2, 5, 13, 64, 8192] {
            let notes = ReaderNotes::default();
            let mut comments = MgfComments::new(Trickle(text.as_bytes(), step), notes.0.clone());
            let marks = comments.line_marks();
            let mut out = String::new();
            comments.read_to_string(&mut out).unwrap();
            assert_eq!(marks.passed(), out.len() as u64);
            // Each entry from just past its `BEGIN IONS` line to the next one's.
            let pasts: Vec<u64> = out
                .match_indices("BEGIN IONS\n")
                .map(|(at, line)| (at + line.len()) as u64)
                .chain([out.len() as u64 + 1])
                .collect();
            assert_eq!(pasts.len() - 1, begin_lines.len(), "step {step}: {out:?}");
            assert_eq!(
                marks.line_of_entry_at(pasts[0] - 1),
                None,
                "before the first"
            );
            // The header's lines that are passed on, each where it ends ("MASS=..." is line
            // 2); a position inside an entry or a line is none of them.
            let mass_line_end = out.find('\n').unwrap() as u64 + 1;
            assert_eq!(marks.line_ending_at(mass_line_end), Some(2), "step {step}");
            assert_eq!(marks.line_ending_at(mass_line_end - 1), None);
            assert_eq!(marks.line_ending_at(pasts[0] + 3), None);
            // The blank line after the first entry's `END IONS` is line 9.
            let blank = out.find("END IONS\n\n").unwrap() as u64 + 10;
            assert_eq!(marks.line_ending_at(blank), Some(9), "step {step}");
            for (i, window) in pasts.windows(2).enumerate() {
                for read in [window[0], window[1] - 1] {
                    let line = marks.line_of_entry_at(read);
                    assert_eq!(line, Some(begin_lines[i]), "step {step}, entry {i}, {read}");
                }
            }
        }
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
}
