//! The size and SHA-256 of an input, as `run.json` records it.
//!
//! [`SpectrumReader::open_digested`](crate::SpectrumReader::open_digested) hashes the file's
//! bytes as the reader reads them: no second pass over a file that may be gigabytes on a
//! network disk, and the checksum is of exactly the bytes that were processed.
//! [`file_digest`] reads a file once for its digest alone.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Size in bytes and SHA-256 (lower-case hex) of a file, as `run.json` records its input.
pub fn file_digest(path: &Path) -> std::io::Result<(u64, String)> {
    let digest = InputDigest::default();
    let mut reader = digest.wrap(File::open(path)?);
    let mut buffer = vec![0u8; 1 << 20];
    while reader.read(&mut buffer)? > 0 {}
    digest
        .finish()
        .ok_or_else(|| std::io::Error::other("the file was not read to its end"))
}

/// `bytes` (a digest) as lower-case hex, as checksums are written.
pub fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of a stream being read elsewhere: a handle on the state that
/// [`InputDigest::wrap`]'s reader updates with every read.
#[derive(Clone, Default)]
pub struct InputDigest(Arc<Mutex<DigestState>>);

#[derive(Default)]
struct DigestState {
    hasher: Sha256,
    bytes: u64,
    /// The stream has returned end of input: the digest covers all of it.
    whole: bool,
}

impl std::fmt::Debug for InputDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (bytes, whole) = self
            .0
            .lock()
            .map(|s| (s.bytes, s.whole))
            .unwrap_or_default();
        f.debug_struct("InputDigest")
            .field("bytes", &bytes)
            .field("whole", &whole)
            .finish()
    }
}

impl InputDigest {
    /// A reader that hashes everything read through it into this digest.
    pub fn wrap<R: Read>(&self, inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            digest: self.clone(),
        }
    }

    /// Size and SHA-256 (lower-case hex) of the stream, once it has been read to its end;
    /// `None` while only part of it has (a reader that stopped early, or an mzMLb file, which
    /// is read through the HDF5 library instead).
    pub fn finish(&self) -> Option<(u64, String)> {
        let state = self.0.lock().ok()?;
        if !state.whole {
            return None;
        }
        Some((state.bytes, lower_hex(&state.hasher.clone().finalize())))
    }

    /// [`finish`](InputDigest::finish), or, where the stream was not read whole, the digest
    /// of a separate pass over the file at `path`.
    pub fn finish_or_hash_file(&self, path: &Path) -> std::io::Result<(u64, String)> {
        match self.finish() {
            Some(digest) => Ok(digest),
            None => file_digest(path),
        }
    }
}

/// A reader that adds every byte it reads to an [`InputDigest`].
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    digest: InputDigest,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut state) = self.digest.0.lock() {
            if n == 0 {
                state.whole |= !buf.is_empty();
            } else {
                state.hasher.update(&buf[..n]);
                state.bytes += n as u64;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_stream_read_to_its_end_has_the_sha256_of_its_bytes() {
        let digest = InputDigest::default();
        let mut reader = digest.wrap(&b"abc"[..]);
        let mut one = [0u8; 1];
        reader.read_exact(&mut one).unwrap();
        assert_eq!(digest.finish(), None, "only one byte read");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(digest.finish(), Some((3, ABC_SHA256.to_string())));
    }

    #[test]
    fn file_digest_reads_the_whole_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"abc").unwrap();
        assert_eq!(
            file_digest(file.path()).unwrap(),
            (3, ABC_SHA256.to_string())
        );
    }
}
