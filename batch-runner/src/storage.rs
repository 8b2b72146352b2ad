//! Local paths and `s3://bucket/key` URLs behind one [`Location`], and blocking adapters over
//! `object_store` for the engine, which reads any `Read` and writes any `Write`:
//!
//! - [`ObjectReader`] streams an object while it is parsed: a download task fills a bounded
//!   queue (at most [`READ_QUEUE_CHUNKS`] × [`READ_CHUNK_BYTES`] in memory), the parser drains
//!   it. A connection that breaks mid-object is resumed with a ranged GET from the byte where it
//!   broke, pinned to the object's ETag so that a changed object is never spliced. When the
//!   object carries its SHA-256 in its metadata ([`SHA256_METADATA`], `x-amz-meta-sha256`),
//!   [`ReadProgress::verify`] checks the bytes read against it.
//! - [`ObjectWriter`] buffers one part; an output larger than a part becomes a multipart upload
//!   (parts upload in the background, at most [`PARTS_IN_FLIGHT`] at once) that is completed only
//!   by [`ObjectWriter::complete`]. Dropped without completing, it aborts the upload: nothing
//!   becomes visible.
//!
//! Credentials, region and endpoint come from the usual AWS environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, the ECS/Batch task role,
//! web identity) and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` for S3-compatible stores
//! (plain `http://` endpoints are allowed).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::ClientConfigKey;
use object_store::{
    Attribute, GetOptions, GetRange, GetResult, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use crate::error::{Error, Result};

/// Bytes per message from the download task to the parser: below glibc's threshold for
/// allocating with `mmap` (128 KiB), so chunk buffers come from and go back to the heap. With
/// 1 MiB chunks every chunk was mapped, page-faulted in and unmapped (with a TLB shootdown),
/// about a third of the CPU of reading a 14 MB object.
pub const READ_CHUNK_BYTES: usize = 64 << 10;
/// Messages queued between the download task and the parser (2 MiB).
pub const READ_QUEUE_CHUNKS: usize = 32;
/// Default multipart part size (`MZFORGE_S3_PART_BYTES` overrides it; S3 needs ≥ 5 MiB).
pub const DEFAULT_PART_BYTES: usize = 8 << 20;
/// Parts uploading at once per object.
pub const PARTS_IN_FLIGHT: usize = 4;
/// Times in a row a broken download is resumed without progress before giving up.
const RESUMES: u32 = 4;

/// Where an input or output lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path.
    Local(PathBuf),
    /// An object (or prefix) in an S3 bucket.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key (for a prefix: without a trailing `/`; empty for the bucket root).
        key: String,
    },
}

impl Location {
    /// `s3://bucket/key` (or `s3a://`) is an object; anything else is a local path.
    pub fn parse(text: &str) -> Result<Location> {
        let rest = text
            .strip_prefix("s3://")
            .or_else(|| text.strip_prefix("s3a://"));
        let Some(rest) = rest else {
            if text.contains("://") {
                return Err(Error::invalid(
                    "location",
                    format!("{text}: only s3:// URLs and local paths are supported"),
                ));
            }
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::invalid("location", format!("{text}: no bucket")));
        }
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            key: key.trim_end_matches('/').to_string(),
        })
    }

    /// Whether `text` names object storage.
    pub fn is_remote(text: &str) -> bool {
        text.starts_with("s3://") || text.starts_with("s3a://")
    }

    /// A child: `dir/name` or `s3://bucket/prefix/name`.
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(path) => Location::Local(path.join(name)),
            Location::S3 { bucket, key } => Location::S3 {
                bucket: bucket.clone(),
                key: if key.is_empty() {
                    name.to_string()
                } else {
                    format!("{key}/{name}")
                },
            },
        }
    }

    /// The last path segment.
    pub fn file_name(&self) -> String {
        match self {
            Location::Local(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Location::S3 { key, .. } => key.rsplit('/').next().unwrap_or_default().to_string(),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// What looking `key` up failed with: [`Error::Missing`] if there is no such object.
fn look_up_error(bucket: &str, key: &str, source: object_store::Error) -> Error {
    match source {
        object_store::Error::NotFound { .. } => Error::Missing {
            url: s3_url(bucket, key),
        },
        source => Error::Storage {
            operation: "look up",
            url: s3_url(bucket, key),
            source,
        },
    }
}

/// A URL for messages.
pub fn s3_url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Object stores per bucket, on one tokio runtime. Every method blocks; call them from plain
/// threads (or `spawn_blocking`), never from async code.
#[derive(Debug, Clone)]
pub struct Storage {
    handle: Handle,
    stores: Arc<Mutex<HashMap<String, Arc<dyn ObjectStore>>>>,
    part_bytes: usize,
    /// A download already started by [`Storage::look_up_and_start`], waiting for its reader.
    started: Arc<Mutex<Option<Started>>>,
}

/// A GET whose answer (headers) has arrived and whose body is not read yet.
struct Started {
    url: String,
    e_tag: Option<String>,
    result: GetResult,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// An object's identity after a read or write.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectInfo {
    /// `s3://bucket/key`.
    pub url: String,
    /// Size in bytes.
    pub bytes: u64,
    /// ETag as the store reports it.
    pub e_tag: Option<String>,
}

/// Makes ring rustls's process-wide crypto provider (reqwest is built without one, see
/// Cargo.toml), once; a provider already installed by the embedding process is kept.
///
/// rustls 0.23.48 deprecates the ring provider because it offers no post-quantum key
/// exchange; its classical key exchange is what S3 and moto accept, and the provider that has
/// one (aws-lc-rs) is the large C build Cargo.toml keeps out. So the deprecation is allowed here.
fn install_tls_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Storage {
    /// Stores are built lazily, per bucket, from the environment.
    pub fn new(handle: Handle) -> Storage {
        let part_bytes = std::env::var("MZFORGE_S3_PART_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(DEFAULT_PART_BYTES);
        Storage {
            handle,
            stores: Arc::new(Mutex::new(HashMap::new())),
            part_bytes,
            started: Arc::new(Mutex::new(None)),
        }
    }

    /// The runtime the stores run on.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The store of `bucket`.
    pub fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut stores = self
            .stores
            .lock()
            .map_err(|_| Error::Internal("store cache poisoned".into()))?;
        if let Some(store) = stores.get(bucket) {
            return Ok(store.clone());
        }
        install_tls_provider();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(RetryConfig {
                max_retries: 6,
                retry_timeout: Duration::from_secs(90),
                ..Default::default()
            });
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            // Plain HTTP (a local or in-VPC S3-compatible store): no TLS, so no trust store to
            // load; loading the system's takes ~10 ms of CPU at every start.
            builder = builder.with_allow_http(true).with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::NoSystemCertificates),
                "true",
            );
        }
        let store: Arc<dyn ObjectStore> =
            Arc::new(builder.build().map_err(|source| Error::StorageConfig {
                url: format!("s3://{bucket}"),
                source,
            })?);
        stores.insert(bucket.to_string(), store.clone());
        Ok(store)
    }

    /// Size and ETag of an object; [`Error::Missing`] if there is none.
    pub fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let store = self.store(bucket)?;
        let path = object_path(bucket, key)?;
        self.handle
            .block_on(store.head(&path))
            .map_err(|source| look_up_error(bucket, key, source))
    }

    /// Size and ETag of an object, like [`Storage::head`], but by starting its download: the
    /// answer to the GET carries them, and [`Storage::open_read`] of the same object from offset
    /// 0 then continues that GET instead of sending another, which saves a round trip per input
    /// (a HEAD) where one object is processed, as in a Batch array job. Only one download is
    /// kept started at a time: while one waits, this is a HEAD. A started download that is never
    /// read (the result exists already) is dropped, closing its connection.
    pub fn look_up_and_start(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let mut slot = self
            .started
            .lock()
            .map_err(|_| Error::Internal("started download poisoned".into()))?;
        if slot.is_some() {
            drop(slot);
            return self.head(bucket, key);
        }
        let store = self.store(bucket)?;
        let path = object_path(bucket, key)?;
        let result = self
            .handle
            .block_on(store.get_opts(&path, GetOptions::default()))
            .map_err(|source| look_up_error(bucket, key, source))?;
        let meta = result.meta.clone();
        *slot = Some(Started {
            url: s3_url(bucket, key),
            e_tag: meta.e_tag.clone(),
            result,
        });
        Ok(meta)
    }

    /// The started download of `url` at `e_tag`, if that is the one waiting. Another one
    /// waiting is stale (inputs are read in order, so its input was skipped): it is dropped.
    fn take_started(&self, url: &str, e_tag: &Option<String>) -> Option<GetResult> {
        let started = self.started.lock().ok()?.take()?;
        (started.url == url && &started.e_tag == e_tag).then_some(started.result)
    }

    /// Drops a started download that will not be read (its input was skipped).
    pub fn forget_started(&self) {
        if let Ok(mut slot) = self.started.lock() {
            slot.take();
        }
    }

    /// A whole (small) object, or `None` if there is none.
    pub fn get_bytes(&self, bucket: &str, key: &str) -> Result<Option<Bytes>> {
        let store = self.store(bucket)?;
        let path = object_path(bucket, key)?;
        let fetched = self
            .handle
            .block_on(async { store.get(&path).await?.bytes().await });
        match fetched {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(Error::Storage {
                operation: "read",
                url: s3_url(bucket, key),
                source,
            }),
        }
    }

    /// A JSON object, or `None` if there is none.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<T>> {
        match self.get_bytes(bucket, key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::invalid(s3_url(bucket, key), e)),
        }
    }

    /// Writes a small object in one PUT.
    pub fn put_bytes(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<ObjectInfo> {
        let store = self.store(bucket)?;
        let path = object_path(bucket, key)?;
        let size = bytes.len() as u64;
        let result = self
            .handle
            .block_on(store.put(&path, PutPayload::from(bytes)))
            .map_err(|source| Error::Storage {
                operation: "write",
                url: s3_url(bucket, key),
                source,
            })?;
        Ok(ObjectInfo {
            url: s3_url(bucket, key),
            bytes: size,
            e_tag: result.e_tag,
        })
    }

    /// Writes a value as pretty JSON.
    pub fn put_json<T: serde::Serialize>(
        &self,
        bucket: &str,
        key: &str,
        value: &T,
    ) -> Result<ObjectInfo> {
        let bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| Error::Internal(format!("cannot serialise {key}: {e}")))?;
        self.put_bytes(bucket, key, bytes)
    }

    /// Deletes an object (no error if it does not exist).
    pub fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let store = self.store(bucket)?;
        let path = object_path(bucket, key)?;
        match self.handle.block_on(store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::Storage {
                operation: "delete",
                url: s3_url(bucket, key),
                source,
            }),
        }
    }

    /// Every object under `prefix/` (recursively), sorted by key.
    pub fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let store = self.store(bucket)?;
        let path = (!prefix.is_empty())
            .then(|| object_path(bucket, prefix))
            .transpose()?;
        let listed: Vec<_> = self
            .handle
            .block_on(store.list(path.as_ref()).collect::<Vec<_>>());
        let mut objects = listed
            .into_iter()
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|source| Error::Storage {
                operation: "list",
                url: s3_url(bucket, prefix),
                source,
            })?;
        objects.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
        Ok(objects)
    }

    /// Streams `meta`'s object from `offset`; see [`ObjectReader`].
    pub fn open_read(&self, bucket: &str, meta: &ObjectMeta, offset: u64) -> Result<ObjectReader> {
        let store = self.store(bucket)?;
        let url = s3_url(bucket, meta.location.as_ref());
        let (sender, receiver) = tokio::sync::mpsc::channel(READ_QUEUE_CHUNKS);
        let progress = Arc::new(ReadProgress::default());
        let started = if offset == 0 {
            self.take_started(&url, &meta.e_tag)
        } else {
            None
        };
        let task = Download {
            store,
            path: meta.location.clone(),
            url: url.clone(),
            e_tag: meta.e_tag.clone(),
            size: meta.size,
            offset,
            progress: progress.clone(),
            started,
        };
        let abort = self.handle.spawn(task.run(sender)).abort_handle();
        Ok(ObjectReader {
            receiver,
            current: Bytes::new(),
            progress,
            url,
            abort,
        })
    }

    /// A writer for `key`; see [`ObjectWriter`].
    pub fn create(&self, bucket: &str, key: &str) -> Result<ObjectWriter> {
        Ok(ObjectWriter {
            storage: self.clone(),
            store: self.store(bucket)?,
            path: object_path(bucket, key)?,
            url: s3_url(bucket, key),
            buffer: Vec::new(),
            upload: None,
            bytes: 0,
        })
    }
}

fn object_path(bucket: &str, key: &str) -> Result<ObjectPath> {
    ObjectPath::parse(key)
        .map_err(|e| Error::invalid("object key", format!("{}: {e}", s3_url(bucket, key))))
}

/// The user-metadata key (`x-amz-meta-sha256` on S3) under which an uploader may store an
/// object's SHA-256 (lowercase hex); downloads are then checked against it.
pub const SHA256_METADATA: &str = "sha256";

/// What an [`ObjectReader`] has seen, shared with whoever gave the reader away: bytes, SHA-256,
/// the object's own SHA-256 if its metadata has one, and the download failure, if any (to tell
/// a network failure from a broken file).
#[derive(Debug, Default)]
pub struct ReadProgress {
    bytes: AtomicU64,
    sha256: Mutex<Sha256>,
    expected_sha256: Mutex<Option<String>>,
    failure: Mutex<Option<String>>,
}

impl ReadProgress {
    /// Bytes delivered so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The download failure, if the stream broke.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Hashes bytes that did not go through the reader (the rest of an object the parser did
    /// not need).
    pub fn update(&self, bytes: &[u8]) {
        if let Ok(mut hasher) = self.sha256.lock() {
            hasher.update(bytes);
        }
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    /// The SHA-256 the object's metadata declares, if any.
    pub fn expected_sha256(&self) -> Option<String> {
        self.expected_sha256.lock().ok().and_then(|e| e.clone())
    }

    /// Checks the whole object's bytes (all of them delivered or [`update`](Self::update)d)
    /// against the SHA-256 its metadata declares; objects without one pass. A mismatch is a
    /// download failure (the bytes were damaged on the way), worth a retry.
    pub fn verify(&self, url: &str) -> Result<()> {
        let Some(expected) = self.expected_sha256() else {
            return Ok(());
        };
        let actual = self.sha256_hex();
        if actual.eq_ignore_ascii_case(expected.trim()) {
            return Ok(());
        }
        Err(Error::Download {
            url: url.to_owned(),
            message: format!(
                "the {} bytes read have SHA-256 {actual}, the object's metadata says {expected}: \
                 damaged on the way",
                self.bytes()
            ),
        })
    }

    /// The SHA-256 of everything delivered, in hex.
    pub fn sha256_hex(&self) -> String {
        let digest = self
            .sha256
            .lock()
            .map(|h| h.clone().finalize().to_vec())
            .unwrap_or_default();
        mzforge::digest::lower_hex(&digest)
    }
}

/// The I/O error of a stop signal. Not `ErrorKind::Interrupted`: `read_exact` and `write_all`
/// retry those forever.
fn stopped() -> std::io::Error {
    std::io::Error::other("stopped by a stop signal")
}

/// A blocking `Read` over an object being downloaded; see the module docs.
#[derive(Debug)]
pub struct ObjectReader {
    receiver: tokio::sync::mpsc::Receiver<std::result::Result<Bytes, String>>,
    current: Bytes,
    progress: Arc<ReadProgress>,
    url: String,
    abort: tokio::task::AbortHandle,
}

impl ObjectReader {
    /// The shared progress (bytes, hash, failure).
    pub fn progress(&self) -> Arc<ReadProgress> {
        self.progress.clone()
    }

    /// The object's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            if crate::signals::stop_requested() {
                return Err(stopped());
            }
            match self.receiver.blocking_recv() {
                None => return Ok(0),
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(message)) => {
                    if let Ok(mut slot) = self.progress.failure.lock() {
                        slot.get_or_insert_with(|| message.clone());
                    }
                    return Err(std::io::Error::other(message));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        let chunk = self.current.split_to(n);
        buf[..n].copy_from_slice(&chunk);
        self.progress.update(&chunk);
        Ok(n)
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

struct Download {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    url: String,
    e_tag: Option<String>,
    size: u64,
    offset: u64,
    /// Where the object's declared SHA-256 goes.
    progress: Arc<ReadProgress>,
    /// The GET already answered for this object (from offset 0), to read first.
    started: Option<GetResult>,
}

type ChunkSender = tokio::sync::mpsc::Sender<std::result::Result<Bytes, String>>;

impl Download {
    async fn run(mut self, sender: ChunkSender) {
        let mut resumes = 0;
        let mut pending = BytesMut::with_capacity(READ_CHUNK_BYTES);
        while self.offset + (pending.len() as u64) < self.size || self.size == 0 {
            let from = self.offset + pending.len() as u64;
            let options = GetOptions {
                range: (from > 0).then_some(GetRange::Offset(from)),
                if_match: self.e_tag.clone(),
                ..Default::default()
            };
            let answer = match self.started.take() {
                Some(result) => Ok(result),
                None => self.store.get_opts(&self.path, options).await,
            };
            let failure = match answer {
                Ok(result) => {
                    let declared = result
                        .attributes
                        .get(&Attribute::Metadata(SHA256_METADATA.into()))
                        .map(|v| v.to_string());
                    if let (Some(declared), Ok(mut slot)) =
                        (declared, self.progress.expected_sha256.lock())
                    {
                        slot.get_or_insert(declared);
                    }
                    let mut stream = result.into_stream();
                    let mut failure = None;
                    while let Some(chunk) = stream.next().await {
                        match chunk {
                            Ok(chunk) => {
                                pending.extend_from_slice(&chunk);
                                if pending.len() >= READ_CHUNK_BYTES {
                                    let full = pending.split().freeze();
                                    self.offset += full.len() as u64;
                                    if sender.send(Ok(full)).await.is_err() {
                                        return; // the reader is gone
                                    }
                                }
                            }
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
                        }
                    }
                    match failure {
                        None => break,
                        Some(e) => e,
                    }
                }
                Err(e) => e,
            };
            // Not found or changed: resuming cannot help.
            let permanent = matches!(
                failure,
                object_store::Error::NotFound { .. }
                    | object_store::Error::Precondition { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            );
            // Only failures in a row without a byte of progress count: a long download is cut
            // by the client's request timeout (30 s, object_store's default, whose own body
            // retries stop 90 s after a GET) whenever the parser holds it back, and an input
            // taking more than a few minutes to process must still be read to its end.
            if self.offset + pending.len() as u64 > from {
                resumes = 0;
            }
            resumes += 1;
            if permanent || resumes > RESUMES {
                let _ = sender
                    .send(Err(format!(
                        "{} after {} bytes: {failure}",
                        self.url,
                        self.offset + pending.len() as u64
                    )))
                    .await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(200 << resumes)).await;
        }
        if !pending.is_empty() {
            let _ = sender.send(Ok(pending.freeze())).await;
        }
    }
}

/// A blocking `Write` into an object; see the module docs. Nothing is visible until
/// [`ObjectWriter::complete`].
#[derive(Debug)]
pub struct ObjectWriter {
    storage: Storage,
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    url: String,
    buffer: Vec<u8>,
    upload: Option<WriteMultipart>,
    bytes: u64,
}

impl ObjectWriter {
    fn storage_error(&self, operation: &'static str, source: object_store::Error) -> Error {
        Error::Storage {
            operation,
            url: self.url.clone(),
            source,
        }
    }

    fn start_upload(&mut self) -> Result<()> {
        let handle = self.storage.handle.clone();
        let upload = handle
            .block_on(self.store.put_multipart(&self.path))
            .map_err(|e| self.storage_error("start multipart upload of", e))?;
        let mut upload = WriteMultipart::new_with_chunk_size(upload, self.storage.part_bytes);
        let _guard = handle.enter();
        upload.put(Bytes::from(std::mem::take(&mut self.buffer)));
        self.upload = Some(upload);
        Ok(())
    }

    /// Makes the object visible (completes the multipart upload, or PUTs a small object).
    pub fn complete(mut self) -> Result<ObjectInfo> {
        let handle = self.storage.handle.clone();
        let result = match self.upload.take() {
            Some(upload) => handle
                .block_on(upload.finish())
                .map_err(|e| self.storage_error("complete upload of", e))?,
            None => {
                let bytes = std::mem::take(&mut self.buffer);
                handle
                    .block_on(self.store.put(&self.path, PutPayload::from(bytes)))
                    .map_err(|e| self.storage_error("write", e))?
            }
        };
        Ok(ObjectInfo {
            url: self.url.clone(),
            bytes: self.bytes,
            e_tag: result.e_tag,
        })
    }

    /// Copies a local file in (streaming, multipart when large); complete it afterwards.
    pub fn write_file(&mut self, path: &std::path::Path) -> Result<()> {
        let io_err = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io_err)?;
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut chunk).map_err(io_err)?;
            if n == 0 {
                return Ok(());
            }
            self.write_all(&chunk[..n]).map_err(|source| Error::Io {
                path: self.url.clone(),
                source,
            })?;
        }
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if crate::signals::stop_requested() {
            return Err(stopped());
        }
        self.bytes += buf.len() as u64;
        match self.upload.as_mut() {
            None => {
                self.buffer.extend_from_slice(buf);
                if self.buffer.len() >= self.storage.part_bytes {
                    self.start_upload().map_err(std::io::Error::other)?;
                }
            }
            Some(upload) => {
                let handle = self.storage.handle.clone();
                let _guard = handle.enter();
                upload.write(buf);
                handle
                    .block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT))
                    .map_err(std::io::Error::other)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            // Never completed: abort, so the parts are discarded and nothing becomes visible.
            let _ = self.storage.handle.block_on(upload.abort());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://b/a/k.mzML").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                key: "a/k.mzML".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b/p/").unwrap().join("x").to_string(),
            "s3://b/p/x"
        );
        assert_eq!(
            Location::parse("s3://b").unwrap().join("x").to_string(),
            "s3://b/x"
        );
        assert!(matches!(
            Location::parse("out/dir").unwrap(),
            Location::Local(_)
        ));
        assert!(Location::parse("gs://b/k").is_err());
        assert!(Location::parse("s3:///k").is_err());
    }

    /// reqwest is built without a TLS provider (Cargo.toml): a store for an HTTPS endpoint, as
    /// on AWS, builds its TLS client with the one `store` installs, without a network.
    #[test]
    fn stores_for_https_endpoints_have_a_tls_provider() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let storage = Storage::new(runtime.handle().clone());
        let store = storage.store("mzforge-test-bucket");
        assert!(store.is_ok(), "{:?}", store.err());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
