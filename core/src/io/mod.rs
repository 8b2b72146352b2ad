//! Reading mzML, mzMLb and MGF. With `mzml_output` (the writer), the only modules that touch
//! `mzdata`: its types never leave them.
//!
//! Reading is split in three so it can be parallel: [`SpectrumReader`] finds each spectrum in
//! the input sequentially ([`SpectrumReader::next_unparsed`]: for mzML only where each
//! `<spectrum>` element starts and ends, see `mzml_split`); [`UnparsedSpectrum::parse`] parses
//! its XML into a [`RawSpectrum`] whose arrays are still encoded, and [`RawSpectrum::decode`]
//! (base64, zlib, Numpress, byte order) decodes them, both on any thread. The parse reads
//! only what the pipeline needs (`mzml_lean`) and hands any element it is not sure of to
//! mzdata's own spectrum builder.
//! [`SpectrumReader::next_raw`] does the first two steps in one.
//!
//! Here: the reader (formats, compression, limits, errors that name the file and the
//! spectrum). Beside it: `mzml_split` finds the `<spectrum>` elements, `mzml_lean` parses
//! them, `mgf` mends MGF for mzdata's reader, `mzmlb` reads mzMLb's HDF5 side, `decode` decodes
//! arrays and `meta` turns what was parsed into [`SpectrumMeta`] and keeps the source's full
//! description for the mzML writer.

mod decode;
mod meta;
mod mgf;
mod mzml_lean;
mod mzml_split;
#[cfg(feature = "mzmlb")]
mod mzmlb;

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
use mzdata::spectrum::bindata::BinaryCompressionType;
use mzdata::spectrum::MultiLayerSpectrum;

use crate::digest::InputDigest;
use crate::error::{Error, Result};
use crate::spectrum::SpectrumMeta;
use mzml_lean::LeanSpectrum;
pub(crate) use mzml_split::ChunkPool;
use mzml_split::{ParseContext, Piece, SpectrumXml, SplitError, Splitter};

use decode::DecodeError;
pub use decode::Repairs;
use meta::instrument_models;
use meta::{lean_meta, meta_of};
pub use meta::{SourceDescription, SourceMetadata};
use mgf::{Latin1Fallback, MgfComments, MgfLines, MGF_COMMENT_STARTS};
pub use mgf::{MgfNotes, ReaderNotes};

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
    Mgf {
        reader: Box<MGFReaderType<DynRead>>,
        /// Where its entries and the lines outside them are in the input.
        lines: MgfLines,
    },
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
            LastFound::Tag(tag) => Some(mzml_split::id_of(tag)),
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
    external: Option<mzmlb::ExternalArrays>,
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
        let (external, document) = mzmlb::open(path)?;
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
                            mzml_split::self_close_params(header).unwrap_or_else(|| header.clone()),
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
                let uncommented = MgfComments::new(text, notes.0.clone());
                let lines = uncommented.line_marks();
                let mut reader = MGFReaderType::<DynRead>::new(Box::new(uncommented));
                reader.detail_level = DetailLevel::Lazy;
                Parser::Mgf {
                    reader: Box::new(reader),
                    lines,
                }
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

    /// Reads the rest of the input into chunks taken from (and handed back to) `pool`
    /// (mzML whose spectra are split out; other inputs are read as before).
    pub(crate) fn share_chunks(&mut self, pool: &ChunkPool) {
        if let Parser::Split { splitter, .. } = &mut self.parser {
            splitter.use_pool(pool);
        }
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

    /// Like [`SpectrumReader::malformed`], at a known byte (in MGF, at the line mzdata stopped
    /// at, when it is one outside the entries).
    fn malformed_at(&mut self, message: String, byte: u64) -> Error {
        let line = self
            .mgf_read()
            .and_then(|(lines, read)| lines.line_ending_at(read));
        self.parser = Parser::Finished;
        let after = match self.last_found.id() {
            Some(id) => format!(
                "after spectrum {} ({id})",
                self.next_index.saturating_sub(1)
            ),
            None => "before the first spectrum".to_owned(),
        };
        let location = match line {
            Some(line) => format!("at line {line}, {after}"),
            None => format!("{after}, before byte {byte}"),
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

    /// For MGF: where the input's lines are, and how much of what was passed on to mzdata's
    /// reader it has read (what was passed on less what its buffer holds ahead).
    fn mgf_read(&self) -> Option<(&MgfLines, u64)> {
        match &self.parser {
            Parser::Mgf { reader, lines } => {
                let ahead = reader.handle.buffer().len() as u64;
                Some((lines, lines.passed().saturating_sub(ahead)))
            }
            _ => None,
        }
    }

    /// Whether mzdata's MGF reader is inside an entry (after its `BEGIN IONS`).
    fn in_mgf_entry(&self) -> bool {
        matches!(&self.parser, Parser::Mgf { reader, .. }
            if matches!(reader.state, MGFParserState::ScanHeaders | MGFParserState::Peaks))
    }

    /// The MGF entry mzdata could not read, as one bad spectrum; mzdata's reader is set to
    /// look for the next `BEGIN IONS`, passing over the rest of this entry.
    fn unreadable_entry(&mut self, message: String) -> Result<Option<UnparsedSpectrum>> {
        let byte = self.bytes_read();
        let index = self.take_index(|index| format!("at spectrum {index}, before byte {byte}"))?;
        let line = self
            .mgf_read()
            .and_then(|(lines, read)| lines.line_of_entry_at(read));
        if let Parser::Mgf { reader, .. } = &mut self.parser {
            reader.state = MGFParserState::Between;
        }
        // Named by the line of its `BEGIN IONS`; without it (not seen), by the last spectrum
        // read before it.
        let native_id = match (line, self.last_found.id()) {
            (Some(line), _) => format!("the MGF entry at line {line}"),
            (None, Some(id)) => format!("the MGF entry after {id}"),
            (None, None) => "the first MGF entry".to_owned(),
        };
        let message = match line {
            Some(_) => format!("cannot be read: {}", in_words(message)),
            None => format!("cannot be read, before byte {byte}: {}", in_words(message)),
        };
        let error = Error::BadSpectrum {
            path: self.path.clone(),
            index,
            native_id,
            message,
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
        Parser::Mgf { reader, .. } => {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Every mzML file of `../shared/data` (plain, gzip or bzip2), but the broken ones of `edge/`.
    pub(super) fn shared_mzml_files() -> Vec<PathBuf> {
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
    pub(super) fn read_with_mzdata(path: &Path) -> Option<Vec<MultiLayerSpectrum>> {
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
