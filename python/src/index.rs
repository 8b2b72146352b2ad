//! Random access to plain (uncompressed) mzML files.
//!
//! The engine's reader is sequential. For `reader[i]` and `reader["scan=42"]` the binding
//! builds, on first use, an offset index: the file's own `<indexList>` when it is present and
//! every offset in it points at the spectrum it names, otherwise a byte scan of the file for
//! `<spectrum` tags. One spectrum is then read by feeding the engine's reader the file header
//! followed by that spectrum's bytes, so parsing and decoding are exactly those of iteration.
//! Gzip-compressed mzML and MGF cannot seek; the reader falls back to a sequential scan.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memchr::memmem;
use mzforge::{Error, RawSpectrum, SpectrumReader};

/// Where each spectrum of a plain mzML file starts and ends.
#[derive(Debug)]
pub struct OffsetIndex {
    path: PathBuf,
    header: Vec<u8>,
    starts: Vec<u64>,
    ends: Vec<u64>,
    ids: Vec<String>,
    by_id: HashMap<String, u32>,
    embedded_index_problem: Option<String>,
}

const SCAN_CHUNK: usize = 8 << 20;
const TAG_PEEK: usize = 4096;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

impl OffsetIndex {
    /// Builds the index, or `None` when the file cannot be indexed (gzip, MGF, no mzML
    /// spectrum list).
    pub fn build(path: &Path) -> Result<Option<OffsetIndex>, Error> {
        let file = File::open(path).map_err(io_err(path))?;
        let mut head = vec![0u8; 4096];
        let n = read_at_most(&file, &mut head, 0).map_err(io_err(path))?;
        head.truncate(n);
        if head.starts_with(&[0x1f, 0x8b]) || memmem::find(&head, b"<mzML").is_none() {
            return Ok(None);
        }
        let len = file.metadata().map_err(io_err(path))?.len();
        let embedded = embedded_index(&file, len);
        let embedded_index_problem = match &embedded {
            Some(entries) => embedded_index_problem(&file, entries, len).map_err(io_err(path))?,
            None => None,
        };
        let entries = match embedded {
            Some(entries) if embedded_index_problem.is_none() => entries,
            _ => scan(&file, len).map_err(io_err(path))?,
        };
        let Some(&(first, _)) = entries.first() else {
            return Ok(None);
        };
        let &(last, _) = entries.last().unwrap_or(&(first, String::new()));
        let list_end = find_from(&file, last, b"</spectrumList>", len)
            .map_err(io_err(path))?
            .unwrap_or(len);
        let mut header = vec![0u8; first as usize];
        file.read_exact_at(&mut header, 0).map_err(io_err(path))?;
        let mut starts = Vec::with_capacity(entries.len());
        let mut ids = Vec::with_capacity(entries.len());
        for (start, id) in entries {
            starts.push(start);
            ids.push(unescape(&id));
        }
        let ends = starts[1..]
            .iter()
            .copied()
            .chain(std::iter::once(list_end))
            .collect();
        let mut by_id = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            by_id.entry(id.clone()).or_insert(i as u32);
        }
        Ok(Some(OffsetIndex {
            path: path.to_owned(),
            header,
            starts,
            ends,
            ids,
            by_id,
            embedded_index_problem,
        }))
    }

    /// Why the file's own `<indexList>` was not used (the spectra were found by scanning the
    /// file instead), when the file has one and it is wrong.
    pub fn embedded_index_problem(&self) -> Option<&str> {
        self.embedded_index_problem.as_deref()
    }

    /// Number of spectra.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Position of the spectrum with this native id.
    pub fn position(&self, native_id: &str) -> Option<u32> {
        self.by_id.get(native_id).copied()
    }

    /// Native id of spectrum `i`.
    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// Reads spectrum `i` (arrays still encoded).
    pub fn read(&self, i: usize) -> Result<RawSpectrum, Error> {
        let path = &self.path;
        let mut file = File::open(path).map_err(io_err(path))?;
        file.seek(SeekFrom::Start(self.starts[i]))
            .map_err(io_err(path))?;
        let body = file.take(self.ends[i] - self.starts[i]);
        let stream = Cursor::new(self.header.clone())
            .chain(body)
            .chain(Cursor::new(&b"\n</spectrumList></run></mzML>\n"[..]));
        let mut reader = SpectrumReader::from_reader(path, Box::new(stream))?;
        let found = match reader.next_raw() {
            // Read alone, the spectrum is the stream's first, after the header: its place and
            // byte are the file's.
            Err(Error::BadSpectrum {
                path,
                native_id,
                message,
                ..
            }) => {
                let reason = message
                    .strip_prefix("cannot be read, from byte ")
                    .and_then(|rest| rest.split_once(": "))
                    .map_or(message.as_str(), |(_, reason)| reason);
                return Err(Error::BadSpectrum {
                    message: format!("cannot be read, from byte {}: {reason}", self.starts[i]),
                    path,
                    index: i as u32,
                    native_id,
                });
            }
            other => other?,
        };
        match found {
            Some(raw) if raw.native_id() == self.ids[i] => Ok(raw),
            other => Err(Error::Malformed {
                path: path.to_owned(),
                location: format!("at byte {}", self.starts[i]),
                message: format!(
                    "spectrum {i} ({}) is not where the index says (found {})",
                    self.ids[i],
                    other.as_ref().map_or("nothing", |r| r.native_id())
                ),
            }),
        }
    }
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The `<index name="spectrum">` of an indexed mzML, as (offset, escaped id).
fn embedded_index(file: &File, len: u64) -> Option<Vec<(u64, String)>> {
    let tail_start = len.saturating_sub(1024);
    let mut tail = vec![0u8; (len - tail_start) as usize];
    read_at_most(file, &mut tail, tail_start).ok()?;
    let tag = b"<indexListOffset>";
    let at = memmem::rfind(&tail, tag)? + tag.len();
    let end = at + memchr::memchr(b'<', &tail[at..])?;
    let offset: u64 = std::str::from_utf8(&tail[at..end])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if offset >= len {
        return None;
    }
    let mut list = vec![0u8; (len - offset) as usize];
    read_at_most(file, &mut list, offset).ok()?;
    let start = memmem::find(&list, b"<index name=\"spectrum\"")?;
    let list = &list[start..];
    let list = &list[..memmem::find(list, b"</index>")?];
    let mut entries = Vec::new();
    for piece in memmem::find_iter(list, b"<offset") {
        let rest = &list[piece..];
        let close = memchr::memchr(b'>', rest)?;
        let id = attribute(&rest[..close], b"idRef")?;
        let value_end = close + 1 + memchr::memchr(b'<', &rest[close + 1..])?;
        let value: u64 = std::str::from_utf8(&rest[close + 1..value_end])
            .ok()?
            .trim()
            .parse()
            .ok()?;
        entries.push((value, id));
    }
    let ascending = entries.windows(2).all(|w| w[0].0 < w[1].0);
    (ascending && !entries.is_empty()).then_some(entries)
}

/// What is wrong with an embedded index, if anything: each offset must point at the start tag
/// of the spectrum it names, whose `index` attribute (when it has one) is its position in the
/// index, and no spectrum may follow the last one listed (an index that leaves spectra out
/// would hide them from `len()` and `reader[i]`).
fn embedded_index_problem(
    file: &File,
    entries: &[(u64, String)],
    len: u64,
) -> std::io::Result<Option<String>> {
    let mut buf = vec![0u8; TAG_PEEK];
    for (position, (offset, id)) in entries.iter().enumerate() {
        let n = read_at_most(file, &mut buf, *offset)?;
        let Some(tag) = spectrum_tag(&buf[..n]) else {
            return Ok(Some(format!(
                "its offset of spectrum {id} points at no spectrum"
            )));
        };
        if attribute(tag, b"id").as_ref() != Some(id) {
            return Ok(Some(format!(
                "its offset of spectrum {id} points at another spectrum"
            )));
        }
        let index = attribute(tag, b"index").and_then(|i| i.trim().parse::<usize>().ok());
        if let Some(index) = index.filter(|&index| index != position) {
            return Ok(Some(format!(
                "it lists spectrum {id} (index {index}) in position {position}: it leaves \
                 spectra out"
            )));
        }
    }
    let Some((last, last_id)) = entries.last() else {
        return Ok(None);
    };
    let list_end = find_from(file, *last, b"</spectrumList>", len)?.unwrap_or(len);
    let mut from = last + 1;
    while let Some(at) = find_from(file, from, b"<spectrum", list_end)?.filter(|&at| at < list_end)
    {
        let n = read_at_most(file, &mut buf, at)?;
        if let Some(id) = spectrum_tag(&buf[..n]).and_then(|tag| attribute(tag, b"id")) {
            return Ok(Some(format!(
                "it lists {}, but spectrum {id} follows the last one listed ({last_id})",
                mzforge::wording::spectra(entries.len() as u64)
            )));
        }
        from = at + 1;
    }
    Ok(None)
}

/// If `bytes` starts with a `<spectrum ...>` start tag, the inside of that tag.
fn spectrum_tag(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(b"<spectrum")?;
    if !rest.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let close = memchr::memchr(b'>', rest)?;
    Some(&rest[..close])
}

/// The raw value of attribute `name` in the inside of a start tag.
fn attribute(tag: &[u8], name: &[u8]) -> Option<String> {
    let mut from = 0;
    while let Some(at) = memmem::find(&tag[from..], name) {
        let at = from + at;
        let preceded = at > 0 && tag[at - 1].is_ascii_whitespace();
        let mut k = at + name.len();
        while k < tag.len() && tag[k].is_ascii_whitespace() {
            k += 1;
        }
        if preceded && tag.get(k) == Some(&b'=') {
            k += 1;
            while k < tag.len() && tag[k].is_ascii_whitespace() {
                k += 1;
            }
            let quote = *tag.get(k)?;
            if quote == b'"' || quote == b'\'' {
                let value_end = k + 1 + memchr::memchr(quote, &tag[k + 1..])?;
                return Some(String::from_utf8_lossy(&tag[k + 1..value_end]).into_owned());
            }
        }
        from = at + name.len();
    }
    None
}

/// Every `<spectrum` start tag of the file, as (offset, escaped id), by reading it once.
fn scan(file: &File, len: u64) -> std::io::Result<Vec<(u64, String)>> {
    let finder = memmem::Finder::new(b"<spectrum");
    let mut entries = Vec::new();
    let mut buf = vec![0u8; SCAN_CHUNK + TAG_PEEK];
    let mut offset = 0u64;
    while offset < len {
        let n = read_at_most(file, &mut buf, offset)?;
        let searchable = n.min(SCAN_CHUNK);
        for at in finder.find_iter(&buf[..n]) {
            if at >= searchable {
                break;
            }
            if let Some(id) = spectrum_tag(&buf[at..n]).and_then(|tag| attribute(tag, b"id")) {
                entries.push((offset + at as u64, id));
            }
        }
        if n <= SCAN_CHUNK {
            break;
        }
        offset += SCAN_CHUNK as u64;
    }
    Ok(entries)
}

/// Offset of the first `needle` at or after `from`.
fn find_from(file: &File, from: u64, needle: &[u8], len: u64) -> std::io::Result<Option<u64>> {
    let finder = memmem::Finder::new(needle);
    let mut buf = vec![0u8; SCAN_CHUNK + needle.len()];
    let mut offset = from;
    while offset < len {
        let n = read_at_most(file, &mut buf, offset)?;
        if let Some(at) = finder.find(&buf[..n]) {
            return Ok(Some(offset + at as u64));
        }
        if n <= SCAN_CHUNK {
            break;
        }
        offset += SCAN_CHUNK as u64;
    }
    Ok(None)
}

/// XML attribute text with the predefined entities and character references resolved.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
