//! mzML parsing in parallel. The reader thread only finds where each `<spectrum>` element
//! starts and ends (a byte search for `<`, no XML parsing) and hands the element's bytes on;
//! each element is then parsed on a worker thread by mzdata's own spectrum builder
//! ([`MzMLSpectrumBuilder`]), driven here over those bytes exactly as mzdata's reader drives
//! it over the file. The header is still parsed by mzdata's reader, once.
//!
//! The search knows just enough XML to be right on valid documents: comments, CDATA sections
//! and processing instructions are skipped, quoted attribute values may hold `>`. Anything
//! else about an element's content is left to the parser.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use memchr::{memchr, memmem};
use mzdata::io::mzml::{MzMLParserState, MzMLSAX, MzMLSpectrumBuilder, SpectrumBuilding};
use mzdata::io::DetailLevel;
use mzdata::params::Param;
use mzdata::spectrum::MultiLayerSpectrum;
use quick_xml::events::{BytesStart, Event};

/// How much is read from the stream at a time, at least: as much as the input's `BufReader`
/// holds, so that it reads the file straight into the chunk instead of through its own buffer.
const CHUNK: usize = 1 << 20;

/// Room in a chunk, beyond [`CHUNK`], for the start of an element that the previous chunk
/// ended in the middle of (larger elements get a larger chunk of their own).
const CARRIED: usize = 256 << 10;

/// Chunks that no element refers to any more, kept for the next reads: their memory is
/// already mapped and initialised, so a read goes into it without zeroing or page faults
/// (taking fresh memory for every mebibyte of input cost a page fault per 4 KiB, a third of a
/// run's page faults on `BSA1.mzML`). About as many chunks are in use at once as the
/// pipeline's queued and in-flight batches span.
const POOLED_CHUNKS: usize = 4;

/// The largest chunk the pool keeps: chunks grow with elements larger than [`CHUNK`] (profile
/// spectra of several megabytes), and are reused for the next such elements, but a chunk grown
/// for one huge element is let go.
const POOLED_CHUNK_MAX: usize = 16 << 20;

/// What every spectrum's parse needs from the file header.
pub(crate) struct ParseContext {
    /// The input, for messages.
    pub(crate) path: PathBuf,
    pub(crate) param_groups: HashMap<String, Vec<Param>>,
    run_data_processing: Option<Box<str>>,
    /// Instrument configuration ids in the order mzdata numbers them while reading the
    /// header, so that a scan's `instrumentConfigurationRef` gets the same number here.
    instrument_ids: Vec<String>,
}

impl ParseContext {
    pub(crate) fn new(
        path: PathBuf,
        header: &[u8],
        param_groups: HashMap<String, Vec<Param>>,
        run_data_processing: Option<Box<str>>,
    ) -> ParseContext {
        ParseContext {
            path,
            param_groups,
            run_data_processing,
            instrument_ids: instrument_ids(header),
        }
    }
}

/// The `id`s of `<instrumentConfiguration>` elements and the run's
/// `defaultInstrumentConfigurationRef`, in document order: the order in which mzdata's header
/// parser assigns their numbers.
fn instrument_ids(header: &[u8]) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_reader(header);
    let mut ids = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(element)) | Ok(Event::Empty(element)) => {
                let key: &[u8] = match element.name().as_ref() {
                    b"instrumentConfiguration" => b"id",
                    b"run" => b"defaultInstrumentConfigurationRef",
                    _ => continue,
                };
                if let Some(value) = attribute(&element, key) {
                    ids.push(value);
                }
            }
            Ok(Event::Eof) | Err(_) => return ids,
            _ => {}
        }
    }
}

fn attribute(element: &BytesStart, key: &[u8]) -> Option<String> {
    let attr = element.try_get_attribute(key).ok()??;
    attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .ok()
        .map(|v| v.into_owned())
}

/// One `<spectrum>` element's bytes, not yet parsed.
pub(crate) struct SpectrumXml {
    /// Byte offset of the element in the (decompressed) input.
    pub(crate) start: u64,
    /// A share of the splitter's read buffer (no copy): it keeps that buffer's allocation
    /// (up to [`CHUNK`] and more) alive until dropped; [`SpectrumXml::detached`] copies it out.
    pub(crate) xml: Bytes,
}

impl SpectrumXml {
    /// The same element in an allocation of its own, for a spectrum that may be kept long.
    pub(crate) fn detached(&self) -> SpectrumXml {
        SpectrumXml {
            start: self.start,
            xml: Bytes::copy_from_slice(&self.xml),
        }
    }

    /// The element's `id` attribute, read from its start tag without parsing the rest.
    pub(crate) fn id(&self) -> String {
        id_of(self.start_tag())
    }

    /// The element's start tag, `<spectrum ...>`.
    pub(crate) fn start_tag(&self) -> &[u8] {
        let mut quote = None;
        let end = self
            .xml
            .iter()
            .position(|&b| match quote {
                Some(q) => {
                    if b == q {
                        quote = None;
                    }
                    false
                }
                None if b == b'"' || b == b'\'' => {
                    quote = Some(b);
                    false
                }
                None => b == b'>',
            })
            .map_or(self.xml.len(), |end| end + 1);
        &self.xml[..end]
    }

    /// Parses the element as mzdata's reader would (arrays left encoded). Errors are
    /// mzdata's messages; a panic inside mzdata is the caller's to catch.
    pub(crate) fn parse(&self, context: &ParseContext) -> Result<MultiLayerSpectrum, String> {
        let mut reader = quick_xml::Reader::from_reader(&self.xml[..]);
        reader.config_mut().trim_text(true);
        let mut builder: MzMLSpectrumBuilder =
            MzMLSpectrumBuilder::with_detail_level(DetailLevel::Lazy);
        let mut instruments = Default::default();
        builder.instrument_id_map = Some(&mut instruments);
        if let Some(map) = builder.instrument_id_map.as_mut() {
            for id in &context.instrument_ids {
                map.get(id);
            }
        }
        builder.reference_param_groups = Some(&context.param_groups);
        builder.set_run_data_processing(context.run_data_processing.clone());
        let mut state = MzMLParserState::SpectrumList;
        // mzdata reads a scan without a start time as one at 0: whether the first scan states
        // one is followed here, as mzdata's builder routes parameters.
        let mut scans = 0usize;
        let mut start_time_stated = false;
        loop {
            let event = match reader.read_event().map_err(|e| e.to_string())? {
                // The same element as `<cvParam .../>`, which is the only form mzdata reads.
                Event::Start(e) if is_param_tag(e.name().as_ref()) => Event::Empty(e),
                Event::End(e) if is_param_tag(e.name().as_ref()) => continue,
                event => event,
            };
            match &event {
                Event::Start(e) if e.name().as_ref() == b"scan" => scans += 1,
                Event::Empty(e) if scans == 1 && state == MzMLParserState::Scan => {
                    start_time_stated |= states_start_time(e, context);
                }
                _ => {}
            }
            let next = match &event {
                Event::Start(e) => builder.start_element(e, state),
                Event::End(e) => builder.end_element(e, state),
                Event::Text(e) => builder.text(e, state),
                Event::Empty(e) => {
                    builder.empty_element(e, state, reader.buffer_position() as usize)
                }
                Event::Eof => return Err("the spectrum element ends before it is closed".into()),
                _ => Ok(state),
            };
            state = next.map_err(|e| e.to_string())?;
            match state {
                MzMLParserState::SpectrumDone => break,
                MzMLParserState::ParserError => {
                    return Err("the spectrum element could not be parsed".into())
                }
                _ => {}
            }
        }
        let mut spectrum = MultiLayerSpectrum::default();
        builder.into_spectrum(&mut spectrum);
        if !start_time_stated {
            // Unknown, not 0: see `io::meta_of`.
            if let Some(scan) = spectrum.description.acquisition.first_scan_mut() {
                scan.start_time = f64::NAN;
            }
        }
        Ok(spectrum)
    }
}

/// Whether a parameter element inside a `<scan>` gives its start time, as mzdata reads one: a
/// `cvParam` or `userParam` named "scan start time", or a `referenceableParamGroupRef` to a
/// group holding one.
fn states_start_time(element: &BytesStart, context: &ParseContext) -> bool {
    const NAME: &str = "scan start time";
    match element.name().as_ref() {
        b"cvParam" | b"userParam" => attribute(element, b"name").is_some_and(|n| n == NAME),
        b"referenceableParamGroupRef" => attribute(element, b"ref")
            .and_then(|id| context.param_groups.get(&id))
            .is_some_and(|params| params.iter().any(|p| p.name == NAME)),
        _ => false,
    }
}

/// The `id` attribute of a `<spectrum ...>` start tag (empty if it has none).
pub(crate) fn id_of(start_tag: &[u8]) -> String {
    let inner = start_tag.strip_prefix(b"<").unwrap_or(start_tag);
    let inner = inner.strip_suffix(b">").unwrap_or(inner);
    let inner = inner.strip_suffix(b"/").unwrap_or(inner);
    let tag = BytesStart::from_content(String::from_utf8_lossy(inner), "spectrum".len());
    attribute(&tag, b"id").unwrap_or_default()
}

/// The elements that carry parameters and have no content: mzML writes them self-closed
/// (`<cvParam .../>`), but `<cvParam ...></cvParam>` is the same element in XML, and mzdata
/// reads only the first form.
pub(crate) const PARAM_TAGS: [&[u8]; 3] = [b"cvParam", b"userParam", b"referenceableParamGroupRef"];

pub(crate) fn is_param_tag(name: &[u8]) -> bool {
    PARAM_TAGS.contains(&name)
}

/// `xml` with every parameter element written with an end tag and nothing but white space
/// inside (`<cvParam ...></cvParam>`) rewritten self-closed (`<cvParam .../>`), the form
/// mzdata's header reader understands; `None` when there is none (no copy). Anything else
/// around such an end tag (text inside, a start tag of another name) is left as it is, for the
/// parser to judge.
pub(crate) fn self_close_params(xml: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for at in memmem::find_iter(xml, b"</") {
        let rest = &xml[at + 2..];
        let Some(name) = PARAM_TAGS.iter().find(|name| rest.starts_with(name)) else {
            continue;
        };
        let after_name = at + 2 + name.len();
        let Some(close) = xml[after_name..].iter().position(|&b| !is_space(b)) else {
            continue;
        };
        let end = after_name + close;
        if xml[end] != b'>' {
            continue;
        }
        // The start tag's `>`: the last byte before the end tag that is not white space.
        let Some(gt) = xml[..at].iter().rposition(|&b| !is_space(b)) else {
            continue;
        };
        if xml[gt] != b'>' || gt == 0 || xml[gt - 1] == b'/' || gt < copied {
            continue;
        }
        // `<` cannot occur inside an attribute value, so the last one opens the start tag.
        let Some(lt) = memchr::memrchr(b'<', &xml[copied..gt]).map(|k| copied + k) else {
            continue;
        };
        let opens_same = xml[lt + 1..]
            .strip_prefix(*name)
            .and_then(|tail| tail.first())
            .is_some_and(|&b| is_space(b) || b == b'>');
        if !opens_same {
            continue;
        }
        let out = out.get_or_insert_with(|| Vec::with_capacity(xml.len()));
        out.extend_from_slice(&xml[copied..gt]);
        out.extend_from_slice(b"/>");
        copied = end + 1;
    }
    let mut out = out?;
    out.extend_from_slice(&xml[copied..]);
    Some(out)
}

/// What the search found next in the spectrum list.
pub(crate) enum Piece {
    Spectrum(SpectrumXml),
    /// `</spectrumList>`: no more spectra.
    ListEnd,
}

/// Why the search stopped.
#[derive(Debug)]
pub(crate) enum SplitError {
    Io(std::io::Error),
    /// The input ended inside an element, or before the spectrum list closed.
    Truncated {
        at: u64,
    },
    /// Something other than a spectrum where one belongs.
    Unexpected {
        at: u64,
        found: String,
    },
    /// One element (or the header) runs past the byte limit, from `start`.
    TooLarge {
        start: u64,
    },
}

impl From<std::io::Error> for SplitError {
    fn from(e: std::io::Error) -> Self {
        SplitError::Io(e)
    }
}

/// Finds elements in an mzML byte stream: first the end of the header (the
/// `<spectrumList>` start tag), then one `<spectrum>` element after another.
pub(crate) struct Splitter<R> {
    stream: R,
    /// The bytes of the chunk being searched: a chunk is read whole, then elements are shared
    /// out of it without a copy ([`Bytes::slice`]); an element it ends in the middle of is
    /// carried to the start of the next chunk.
    buffer: Bytes,
    /// Where the unconsumed bytes start; offsets below are relative to it.
    pos: usize,
    /// Offset in the stream of `buffer[0]`.
    base: u64,
    eof: bool,
    /// A read error met after part of a chunk was read: the next fill reports it, so that the
    /// elements read before it are found first.
    deferred: Option<std::io::Error>,
    end_tag: memmem::Finder<'static>,
    pool: ChunkPool,
}

/// Chunks handed back by the elements that shared them (see [`POOLED_CHUNKS`]). Every
/// [`Pipeline`](crate::Pipeline) of a process reads into [`ChunkPool::shared`], so that the
/// next input is read into memory the last one mapped.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChunkPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl ChunkPool {
    /// The process's pool: at most [`POOLED_CHUNKS`] chunks, of the usual size between runs
    /// ([`ChunkPool::keep_usual`]).
    pub(crate) fn shared() -> ChunkPool {
        static SHARED: OnceLock<ChunkPool> = OnceLock::new();
        SHARED.get_or_init(ChunkPool::default).clone()
    }

    /// Whether `other` is a handle on this same pool.
    #[cfg(test)]
    pub(crate) fn is_same_pool(&self, other: &ChunkPool) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Lets go of the chunks grown for elements larger than [`CHUNK`]: between inputs the
    /// pool keeps at most [`POOLED_CHUNKS`] chunks of the usual size.
    pub(crate) fn keep_usual(&self) {
        if let Ok(mut pool) = self.0.lock() {
            pool.retain(|chunk| chunk.len() <= CHUNK + CARRIED);
        }
    }

    /// A chunk of `len` initialised bytes (whatever they hold): a pooled one if it is large
    /// enough, else a new one.
    fn take(&self, len: usize) -> Vec<u8> {
        // A pooled chunk too small for `len` is let go: the pool then fills with larger ones.
        let pooled = match self.0.lock() {
            Ok(mut pool) => pool.pop(),
            Err(_) => None,
        };
        match pooled {
            Some(chunk) if chunk.len() >= len => chunk,
            _ => vec![0; len.max(CHUNK + CARRIED)],
        }
    }

    /// The first `filled` bytes of `chunk`, shared; the chunk comes back to the pool once the
    /// last share is dropped.
    fn share(&self, chunk: Vec<u8>, filled: usize) -> Bytes {
        let mut shared = Bytes::from_owner(PooledChunk {
            bytes: chunk,
            pool: Arc::downgrade(&self.0),
        });
        shared.truncate(filled);
        shared
    }
}

/// A chunk's bytes, owned by the [`Bytes`] shared out of it.
struct PooledChunk {
    bytes: Vec<u8>,
    pool: Weak<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for PooledChunk {
    /// Back to the pool, if the splitter is still reading and the pool has room (see
    /// [`POOLED_CHUNK_MAX`]).
    fn drop(&mut self) {
        if self.bytes.len() > POOLED_CHUNK_MAX {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            if let Ok(mut pool) = pool.lock() {
                if pool.len() < POOLED_CHUNKS {
                    pool.push(std::mem::take(&mut self.bytes));
                }
            }
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Whether `bytes` starts with the tag name `name` (followed by a space, `>` or `/`).
fn starts_tag(bytes: &[u8], name: &[u8]) -> bool {
    bytes.starts_with(name)
        && bytes
            .get(name.len())
            .is_some_and(|&b| is_space(b) || b == b'>' || b == b'/')
}

impl<R: Read> Splitter<R> {
    pub(crate) fn new(stream: R) -> Splitter<R> {
        Splitter {
            stream,
            buffer: Bytes::new(),
            pos: 0,
            base: 0,
            eof: false,
            deferred: None,
            end_tag: memmem::Finder::new(b"</spectrum"),
            pool: ChunkPool::default(),
        }
    }

    /// Takes its chunks from `pool` from now on.
    pub(crate) fn use_pool(&mut self, pool: &ChunkPool) {
        self.pool = pool.clone();
    }

    /// Offset in the stream of the relative offset `k`.
    fn offset(&self, k: usize) -> u64 {
        self.base + (self.pos + k) as u64
    }

    fn available(&self) -> usize {
        self.buffer.len() - self.pos
    }

    /// Reads the next chunk, carrying over the unconsumed bytes; false at the end of the
    /// stream. The chunk is filled before anything is searched in it (streams that return
    /// less than asked, such as decompressors, are read again).
    fn fill(&mut self) -> std::io::Result<bool> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        if self.eof {
            return Ok(false);
        }
        let carried = self.available();
        // At least twice what is carried: an element many chunks long is copied into each
        // next chunk, so they grow geometrically and the copies stay linear in its size.
        let mut chunk = self.pool.take((carried + CHUNK).max(2 * carried));
        chunk[..carried].copy_from_slice(&self.buffer[self.pos..]);
        let mut filled = carried;
        while filled < chunk.len() {
            match self.stream.read(&mut chunk[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if filled > carried => {
                    self.deferred = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        self.base += self.pos as u64;
        self.pos = 0;
        self.buffer = self.pool.share(chunk, filled);
        Ok(filled > carried)
    }

    /// Makes `need` bytes available if the stream has them; false if it ends first.
    fn ensure(&mut self, need: usize) -> std::io::Result<bool> {
        while self.available() < need {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The byte at relative offset `k`, reading as needed; `None` at the end of the stream.
    fn byte_at(&mut self, k: usize) -> std::io::Result<Option<u8>> {
        Ok(self.ensure(k + 1)?.then(|| self.buffer[self.pos + k]))
    }

    fn starts_with(&mut self, k: usize, pattern: &[u8]) -> std::io::Result<bool> {
        self.ensure(k + pattern.len() + 1)?;
        Ok(self.buffer[self.pos + k..].starts_with(pattern))
    }

    fn starts_tag(&mut self, k: usize, name: &[u8]) -> std::io::Result<bool> {
        self.ensure(k + name.len() + 1)?;
        Ok(starts_tag(&self.buffer[self.pos + k..], name))
    }

    /// The relative offset of the next `<` at or after `k`, outside comments, CDATA sections
    /// and processing instructions. `keep` says whether the bytes before it are still
    /// needed (inside an element) or may be dropped (between elements); `limit` bounds how
    /// far from `pos` the search may go.
    fn next_markup(&mut self, mut k: usize, keep: bool, limit: u64) -> Result<usize, SplitError> {
        loop {
            match memchr(b'<', &self.buffer[self.pos + k..]) {
                Some(j) => k += j,
                None => {
                    if keep {
                        k = self.available();
                        if k as u64 > limit {
                            return Err(SplitError::TooLarge {
                                start: self.offset(0),
                            });
                        }
                    } else {
                        self.pos = self.buffer.len();
                        k = 0;
                    }
                    if !self.fill()? {
                        return Err(SplitError::Truncated { at: self.offset(k) });
                    }
                    continue;
                }
            }
            // Most markup is a plain tag: one byte tells.
            if !self.ensure(k + 2)? || !matches!(self.buffer[self.pos + k + 1], b'!' | b'?') {
                return Ok(k);
            }
            let skip_to: &[u8] = if self.starts_with(k, b"<!--")? {
                b"-->"
            } else if self.starts_with(k, b"<![CDATA[")? {
                b"]]>"
            } else if self.starts_with(k, b"<?")? {
                b"?>"
            } else {
                return Ok(k);
            };
            k = self.skip_past(k + 2, skip_to, limit)?;
        }
    }

    /// The relative offset of the next `</spectrum` at or after `k` among the bytes read, if
    /// no comment, CDATA section or processing instruction (`<!`, `<?`) comes before it: one
    /// search over the element's content instead of a stop at every tag. `None` sends the
    /// caller markup by markup ([`Splitter::next_markup`]) for the rest of the element.
    fn end_tag_read(&self, k: usize) -> Option<usize> {
        let from = self.pos + k;
        let found = from + self.end_tag.find(&self.buffer[from..])?;
        let declaration = memchr::memchr2_iter(b'!', b'?', &self.buffer[from..found])
            .any(|i| self.buffer[from + i - 1] == b'<');
        (!declaration).then_some(found - self.pos)
    }

    /// The relative offset just after the next `pattern` at or after `k`.
    fn skip_past(&mut self, mut k: usize, pattern: &[u8], limit: u64) -> Result<usize, SplitError> {
        let finder = memmem::Finder::new(pattern);
        loop {
            if let Some(j) = finder.find(&self.buffer[self.pos + k..]) {
                return Ok(k + j + pattern.len());
            }
            k = self.available().saturating_sub(pattern.len() - 1).max(k);
            if self.available() as u64 > limit {
                return Err(SplitError::TooLarge {
                    start: self.offset(0),
                });
            }
            if !self.fill()? {
                return Err(SplitError::Truncated {
                    at: self.offset(self.available()),
                });
            }
        }
    }

    /// The relative offset just after the `>` closing the start tag that begins at `k`
    /// (quoted attribute values may hold `>`), and whether the tag closes itself (`/>`).
    fn end_of_start_tag(&mut self, mut k: usize, limit: u64) -> Result<(usize, bool), SplitError> {
        let mut quote = None;
        loop {
            // Jump to the next byte that matters: a quote, or `>`.
            let wanted = match quote {
                Some(q) => memchr(q, &self.buffer[self.pos + k..]),
                None => memchr::memchr3(b'>', b'"', b'\'', &self.buffer[self.pos + k..]),
            };
            k = match wanted {
                Some(j) => k + j,
                None => self.available().max(k),
            };
            let Some(b) = self.byte_at(k)? else {
                return Err(SplitError::Truncated { at: self.offset(k) });
            };
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b == b'>' => {
                    let closes = k > 0 && self.buffer[self.pos + k - 1] == b'/';
                    return Ok((k + 1, closes));
                }
                None => {}
            }
            k += 1;
            if k as u64 > limit {
                return Err(SplitError::TooLarge {
                    start: self.offset(0),
                });
            }
        }
    }

    /// Reads up to the end of the `<spectrumList>` start tag and returns everything before
    /// and including it: the header, for mzdata's header parser. `None` (with nothing
    /// consumed) when the run holds no spectrum list to split, or an empty one
    /// (`<spectrumList/>`); then the whole stream is for mzdata's sequential reader.
    pub(crate) fn header(&mut self, limit: u64) -> Result<Option<Vec<u8>>, SplitError> {
        let mut k = 0;
        loop {
            k = match self.next_markup(k, true, limit) {
                Ok(k) => k,
                // Let the sequential reader say what is wrong with such a file.
                Err(SplitError::Truncated { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            if self.starts_tag(k, b"<spectrumList")? {
                let (end, closes) = self.end_of_start_tag(k, limit)?;
                if closes {
                    return Ok(None);
                }
                let header = self.buffer[self.pos..self.pos + end].to_vec();
                self.pos += end;
                return Ok(Some(header));
            }
            if self.starts_tag(k, b"<chromatogramList")? || self.starts_tag(k, b"</run")? {
                return Ok(None);
            }
            k += 1;
        }
    }

    /// The next spectrum element, or the end of the list. `limit` bounds one element's size.
    pub(crate) fn next(&mut self, limit: u64) -> Result<Piece, SplitError> {
        let k = self.next_markup(0, false, limit)?;
        self.pos += k;
        if self.starts_tag(0, b"</spectrumList")? {
            return Ok(Piece::ListEnd);
        }
        if !self.starts_tag(0, b"<spectrum")? {
            let shown = &self.buffer[self.pos..self.buffer.len().min(self.pos + 40)];
            let shown: String = String::from_utf8_lossy(shown)
                .chars()
                .take_while(|&c| !c.is_whitespace() && c != '>')
                .collect();
            return Err(SplitError::Unexpected {
                at: self.offset(0),
                found: shown,
            });
        }
        let (mut k, closes) = self.end_of_start_tag(1, limit)?;
        if !closes {
            let mut markup_by_markup = false;
            k = loop {
                // (Once markup by markup, no more searches to the end of the bytes read.)
                let candidate = match markup_by_markup {
                    true => None,
                    false => self.end_tag_read(k),
                };
                k = match candidate {
                    Some(candidate) => candidate,
                    None => {
                        markup_by_markup = true;
                        self.next_markup(k, true, limit)?
                    }
                };
                if k as u64 > limit {
                    return Err(SplitError::TooLarge {
                        start: self.offset(0),
                    });
                }
                if self.byte_at(k + 1)? == Some(b'/') && self.starts_with(k, b"</spectrum")? {
                    let mut q = k + b"</spectrum".len();
                    while self.byte_at(q)?.is_some_and(is_space) {
                        q += 1;
                    }
                    if self.byte_at(q)? == Some(b'>') {
                        break q + 1;
                    }
                }
                k += 1;
            };
        }
        if k as u64 > limit {
            return Err(SplitError::TooLarge {
                start: self.offset(0),
            });
        }
        let start = self.offset(0);
        let xml = self.buffer.slice(self.pos..self.pos + k);
        self.pos += k;
        Ok(Piece::Spectrum(SpectrumXml { start, xml }))
    }

    /// The bytes read but not consumed, and the stream: what follows the last piece.
    pub(crate) fn into_rest(self) -> (Vec<u8>, R) {
        let rest = self.buffer[self.pos..].to_vec();
        (rest, self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_with_end_tags_and_only_space_inside_are_self_closed() {
        let closed =
            |xml: &str| self_close_params(xml.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            closed(
                r#"<a><cvParam x="1"></cvParam><userParam name="n" value="a>b">
                </userParam ><referenceableParamGroupRef ref="g"></referenceableParamGroupRef></a>"#
            )
            .as_deref(),
            Some(
                r#"<a><cvParam x="1"/><userParam name="n" value="a>b"/><referenceableParamGroupRef ref="g"/></a>"#
            )
        );
        // Already self-closed, text or markup inside, another element's end tag: left alone.
        assert_eq!(closed(r#"<a><cvParam x="1"/></a>"#), None);
        assert_eq!(closed(r#"<cvParam x="1">text</cvParam>"#), None);
        assert_eq!(closed(r#"<cvParam x="1"><!-- c --></cvParam>"#), None);
        assert_eq!(closed(r#"<cvParamX x="1"></cvParam>"#), None);
        assert_eq!(closed(r#"<cvParam x="1"/></cvParam>"#), None);
        assert_eq!(closed("</cvParam>"), None);
        assert_eq!(closed(r#"<a x="1"></cvParam"#), None);
    }

    fn pieces(doc: &str, chunk_reads: bool) -> Result<Vec<String>, SplitError> {
        // One byte per read, to cross every buffer boundary, or all at once.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let mut run = |splitter: &mut Splitter<Box<dyn Read + '_>>| -> Result<(), SplitError> {
            let header = splitter.header(1 << 20)?.expect("a spectrum list");
            out.push(String::from_utf8(header).unwrap());
            loop {
                match splitter.next(1 << 20)? {
                    Piece::Spectrum(s) => out.push(format!(
                        "{}@{}:{}",
                        s.id(),
                        s.start,
                        String::from_utf8(s.xml.to_vec()).unwrap()
                    )),
                    Piece::ListEnd => return Ok(()),
                }
            }
        };
        let stream: Box<dyn Read> = if chunk_reads {
            Box::new(Trickle(doc.as_bytes()))
        } else {
            Box::new(doc.as_bytes())
        };
        run(&mut Splitter::new(stream))?;
        Ok(out)
    }

    const DOC: &str = r#"<mzML><!-- <spectrumList> in a comment --><run id="r">
<spectrumList count="3">
  <spectrum id="a>1" index="0"><cvParam name="x"/><!-- </spectrum> --><binary>QUJD</binary></spectrum >
  <?pi </spectrum> ?><spectrum index="1" id='b'/>
  <spectrum
     id="c" index="2"><![CDATA[</spectrum>]]></spectrum>
</spectrumList></run></mzML>"#;

    #[test]
    fn elements_are_cut_at_their_tags_whatever_the_reads() {
        for trickle in [false, true] {
            let found = pieces(DOC, trickle).unwrap();
            assert!(
                found[0].ends_with(r#"<spectrumList count="3">"#),
                "{found:?}"
            );
            assert!(!found[0].contains("\n  <spectrum"), "{found:?}");
            let a = &found[1];
            assert!(a.starts_with("a>1@"), "{a}");
            assert!(a.ends_with("<binary>QUJD</binary></spectrum >"), "{a}");
            let offset: usize = a[4..a.find(':').unwrap()].parse().unwrap();
            assert!(DOC[offset..].starts_with(r#"<spectrum id="a>1""#));
            assert!(found[2].starts_with("b@") && found[2].ends_with("id='b'/>"));
            assert!(found[3].starts_with("c@") && found[3].ends_with("]]></spectrum>"));
            assert_eq!(found.len(), 4);
        }
    }

    /// Byte ranges of the `<spectrum>` elements in `doc`, by quick-xml's own parse.
    fn spectra_by_quick_xml(doc: &str) -> Vec<(usize, usize)> {
        let mut reader = quick_xml::Reader::from_str(doc);
        let mut ranges = Vec::new();
        let mut open = None;
        loop {
            let before = reader.buffer_position() as usize;
            match reader.read_event().unwrap() {
                Event::Start(e) if e.name().as_ref() == b"spectrum" => open = Some(before),
                Event::Empty(e) if e.name().as_ref() == b"spectrum" => {
                    ranges.push((before, reader.buffer_position() as usize))
                }
                Event::End(e) if e.name().as_ref() == b"spectrum" => {
                    ranges.push((open.take().unwrap(), reader.buffer_position() as usize))
                }
                Event::Eof => return ranges,
                _ => {}
            }
        }
    }

    /// Markup that can sit between spectra (or inside one, with `inside`) that the search
    /// must step over: comments, processing instructions, quoted `>` and look-alike tags.
    fn filler(inside: bool) -> impl proptest::strategy::Strategy<Value = String> {
        let element = if inside {
            // (`<` may not appear in attribute values; `>` may.)
            "<cvParam name=\"a>b\" value='>'/><![CDATA[</spectrum>]]>"
        } else {
            " "
        };
        proptest::prop_oneof![
            proptest::strategy::Just(String::new()),
            proptest::strategy::Just("\n  ".to_string()),
            proptest::strategy::Just("<!-- </spectrum> <spectrum id=\"x\"> -->".to_string()),
            proptest::strategy::Just("<?pi </spectrum>?>".to_string()),
            proptest::strategy::Just(element.to_string()),
            // mzML 1.0: an end tag that begins like the spectrum's own.
            proptest::strategy::Just(if inside {
                "<spectrumDescription><cvParam name=\"y\"/></spectrumDescription>".to_string()
            } else {
                String::new()
            }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn the_search_finds_the_elements_quick_xml_finds(
            spectra in proptest::collection::vec(
                (filler(false), filler(true), 0usize..3, proptest::bool::ANY, 0usize..40),
                0..12,
            ),
            trickle in proptest::bool::ANY,
        ) {
            let mut doc = String::from("<mzML><run><spectrumList count=\"0\">");
            for (k, (before, inside, closing, empty, text)) in spectra.iter().enumerate() {
                doc.push_str(before);
                if *empty {
                    doc.push_str(&format!("<spectrum id=\"s{k}\" index='{k}'/>"));
                    continue;
                }
                doc.push_str(&format!("<spectrum index=\"{k}\" id=\"s>{k}\">"));
                doc.push_str(inside);
                if *text > 0 {
                    doc.push_str(&format!("<binary>{}</binary>", "QUJD".repeat(*text)));
                }
                doc.push_str(&format!("</spectrum{}>", " ".repeat(*closing)));
            }
            doc.push_str("\n</spectrumList></run></mzML>");
            let expected: Vec<String> = spectra_by_quick_xml(&doc)
                .into_iter()
                .enumerate()
                .map(|(k, (from, to))| {
                    let id = if spectra[k].3 { format!("s{k}") } else { format!("s>{k}") };
                    format!("{id}@{from}:{}", &doc[from..to])
                })
                .collect();
            let found = pieces(&doc, trickle).unwrap();
            proptest::prop_assert_eq!(&found[1..], &expected[..]);
        }
    }

    /// A document of `count` spectra of varied sizes (`k % cycle` base64 quads each), with
    /// the spectra's elements.
    fn many_spectra(count: usize, cycle: usize) -> (String, Vec<String>) {
        let spectra: Vec<String> = (0..count)
            .map(|k| {
                let filler = "QUJD".repeat(k % cycle);
                format!(r#"<spectrum id="s{k}" index="{k}"><binary>{filler}</binary></spectrum>"#)
            })
            .collect();
        let doc = format!(
            "<mzML><run><spectrumList count=\"{}\">\n{}\n</spectrumList></run></mzML>",
            spectra.len(),
            spectra.join("\n")
        );
        (doc, spectra)
    }

    #[test]
    fn a_shared_pool_hands_one_inputs_chunks_to_the_next() {
        let (doc, spectra) = many_spectra(16000, 211);
        // Reads the document into chunks from `pool` (after the header's, which comes from
        // the splitter's own pool), checking every element and holding them all to the end
        // if asked; the chunks, in order of use.
        let chunks_from = |pool: &ChunkPool, hold: bool| {
            let mut splitter = Splitter::new(doc.as_bytes());
            splitter.header(1 << 20).unwrap().unwrap();
            splitter.use_pool(pool);
            let (mut chunks, mut held, mut k) = (Vec::new(), Vec::new(), 0);
            while let Piece::Spectrum(xml) = splitter.next(1 << 20).unwrap() {
                assert_eq!(&xml.xml[..], spectra[k].as_bytes());
                let chunk = splitter.buffer.as_ptr();
                if chunks.last() != Some(&chunk) {
                    chunks.push(chunk);
                }
                if hold {
                    held.push(xml);
                }
                k += 1;
            }
            assert_eq!(k, spectra.len());
            chunks
        };
        let pool = ChunkPool::default();
        // Every element held: every chunk is memory of its own.
        let first = chunks_from(&pool, true);
        assert!(
            first.len() >= 6,
            "the document spans {} chunks",
            first.len()
        );
        let mut distinct = first.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), first.len());
        // Let go, they came back to the pool, which keeps as many as it may (so none of these
        // was freed and its memory taken again below).
        assert_eq!(pool.0.lock().unwrap().len(), POOLED_CHUNKS);
        let second = chunks_from(&pool, false);
        assert!(second.len() >= 6);
        assert!(
            second[1..].iter().all(|chunk| first.contains(chunk)),
            "the second input was read into new memory: {second:?} after {first:?}"
        );
        // Chunks grown for a large element are let go between inputs.
        pool.0.lock().unwrap().push(vec![0; CHUNK + CARRIED + 1]);
        pool.keep_usual();
        let kept = pool.0.lock().unwrap();
        assert!(!kept.is_empty());
        assert!(kept.iter().all(|chunk| chunk.len() <= CHUNK + CARRIED));
    }

    #[test]
    fn chunks_are_reused_once_their_elements_are_dropped_and_not_before() {
        let (doc, spectra) = many_spectra(12000, 211);
        // Reads the document, holding the elements `keep` picks to the end; the number of
        // chunks read, the allocations they were read into, and the elements held.
        let split = |keep: &dyn Fn(usize) -> bool| {
            let mut splitter = Splitter::new(doc.as_bytes());
            splitter.header(1 << 20).unwrap().unwrap();
            let (mut chunks, mut kept, mut k) = (Vec::new(), Vec::new(), 0);
            while let Piece::Spectrum(xml) = splitter.next(1 << 20).unwrap() {
                let chunk = splitter.buffer.as_ptr();
                if chunks.last() != Some(&chunk) {
                    chunks.push(chunk);
                }
                if keep(k) {
                    kept.push((k, xml));
                }
                k += 1;
            }
            assert_eq!(k, spectra.len());
            let read = chunks.len();
            chunks.sort();
            chunks.dedup();
            (read, chunks.len(), kept)
        };

        let (read, allocations, _) = split(&|_| false);
        assert!(read >= 5, "the document spans {read} chunks");
        // The next chunk is taken before the current one is let go: two allocations in turn.
        assert_eq!(
            allocations, 2,
            "{read} chunks read into {allocations} allocations"
        );

        // The first chunk stays out of the pool while its first element is held.
        let (read, allocations, kept) = split(&|k| k == 0);
        assert_eq!(
            allocations, 3,
            "{read} chunks read into {allocations} allocations"
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(&kept[0].1.xml[..], spectra[0].as_bytes());
    }

    #[test]
    fn an_element_many_chunks_long_is_read_in_few_growing_chunks() {
        // Counts the reads, each of which fills what it is given.
        struct Counted<'a>(&'a [u8], usize);
        impl Read for Counted<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1 += 1;
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let huge = format!(
            r#"<spectrum id="huge"><binary>{}</binary></spectrum>"#,
            "QUJD".repeat(10 << 20)
        );
        let doc = format!(
            "<mzML><run><spectrumList count=\"2\">{huge}<spectrum id=\"next\"></spectrum>\
             </spectrumList></run></mzML>"
        );
        let mut splitter = Splitter::new(Counted(doc.as_bytes(), 0));
        splitter.header(1 << 30).unwrap().unwrap();
        match splitter.next(1 << 30) {
            Ok(Piece::Spectrum(xml)) => assert!(xml.xml == huge.as_bytes(), "the element's bytes"),
            _ => panic!("the huge spectrum"),
        }
        match splitter.next(1 << 30) {
            Ok(Piece::Spectrum(xml)) => assert_eq!(xml.id(), "next"),
            _ => panic!("the spectrum after it"),
        }
        // 40 MiB in chunks that double: about log2(40) reads, not 40.
        let reads = splitter.stream.1;
        assert!(reads <= 10, "{reads} reads");
    }

    #[test]
    fn the_elements_read_before_a_read_error_come_before_it() {
        // A stream that fails after the second element (a corrupt gzip member, a lost
        // connection): both elements are found, then the error.
        struct FailingAfter<'a>(&'a [u8]);
        impl Read for FailingAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("corrupt stream"));
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let doc = "<mzML><run><spectrumList count=\"3\"><spectrum id=\"a\"></spectrum>\
                   <spectrum id=\"b\"></spectrum><spectrum id=\"c\"></spec";
        let mut splitter = Splitter::new(FailingAfter(doc.as_bytes()));
        splitter.header(1 << 20).unwrap().unwrap();
        for id in ["a", "b"] {
            match splitter.next(1 << 20) {
                Ok(Piece::Spectrum(xml)) => assert_eq!(xml.id(), id),
                _ => panic!("spectrum {id} is found before the error"),
            }
        }
        match splitter.next(1 << 20) {
            Err(SplitError::Io(e)) => assert_eq!(e.to_string(), "corrupt stream"),
            _ => panic!("the stream's error comes next"),
        }
    }

    #[test]
    fn elements_kept_while_reading_goes_on_keep_their_bytes() {
        // Several read chunks of elements, all held until the end: each must still hold
        // its own bytes after the buffer they were split from was refilled and replaced.
        let (doc, spectra) = many_spectra(8000, 197);
        assert!(doc.len() > 3 * CHUNK, "the elements span several chunks");
        let mut splitter = Splitter::new(doc.as_bytes());
        splitter.header(1 << 20).unwrap().unwrap();
        let mut kept = Vec::new();
        while let Piece::Spectrum(xml) = splitter.next(1 << 20).unwrap() {
            kept.push(xml);
        }
        assert_eq!(kept.len(), spectra.len());
        for (xml, expected) in kept.iter().zip(&spectra) {
            assert_eq!(&xml.xml[..], expected.as_bytes());
            let start = xml.start as usize;
            assert_eq!(
                &doc.as_bytes()[start..start + xml.xml.len()],
                expected.as_bytes()
            );
            let detached = xml.detached();
            assert_eq!((detached.start, &detached.xml), (xml.start, &xml.xml));
            assert_ne!(detached.xml.as_ptr(), xml.xml.as_ptr(), "a copy of its own");
        }
    }

    #[test]
    fn a_cut_document_is_truncated_at_its_end() {
        let cut = &DOC[..DOC.find("<binary>").unwrap() + 5];
        for trickle in [false, true] {
            match pieces(cut, trickle) {
                Err(SplitError::Truncated { at }) => assert_eq!(at, cut.len() as u64),
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
        let no_list_end = &DOC[..DOC.find("</spectrumList>").unwrap()];
        assert!(matches!(
            pieces(no_list_end, false),
            Err(SplitError::Truncated { .. })
        ));
    }

    #[test]
    fn a_stranger_in_the_list_and_an_oversized_element_are_named() {
        let doc = DOC.replace("<spectrum index=\"1\" id='b'/>", "<chromatogram id='b'/>");
        match pieces(&doc, false) {
            Err(SplitError::Unexpected { found, .. }) => assert_eq!(found, "<chromatogram"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        let mut splitter = Splitter::new(DOC.as_bytes());
        splitter.header(1 << 20).unwrap().unwrap();
        assert!(matches!(
            splitter.next(20),
            Err(SplitError::TooLarge { .. })
        ));
    }

    #[test]
    fn without_a_spectrum_list_nothing_is_split() {
        for doc in [
            "<mzML><run><spectrumList count=\"0\"/></run></mzML>",
            "<mzML><run><chromatogramList count=\"0\"></chromatogramList></run></mzML>",
            "<mzML><run>",
        ] {
            let mut splitter = Splitter::new(doc.as_bytes());
            assert!(splitter.header(1 << 20).unwrap().is_none(), "{doc}");
            let (rest, _) = splitter.into_rest();
            assert_eq!(rest, doc.as_bytes(), "nothing consumed");
        }
    }
}
