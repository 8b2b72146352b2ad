//! The cloud edge against real local services: a moto S3 server on 127.0.0.1 (started here, on a
//! free port), the `mzforge` CLI s3→s3 on real files from `../shared/data`, `mzforge batch`
//! array children, and the `mzforge-lambda` binary driven through the Lambda Runtime API
//! protocol by an in-test runtime endpoint, for every step.
//!
//! Needs `moto_server` (`pip install 'moto[server]'`) and python's `jsonschema`; with `CI` set,
//! a missing server or missing data is a failure, not a skip.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{json, Value};

// ---- the S3 server -------------------------------------------------------------------------

struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn required(what: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required in CI");
    }
    eprintln!("skipping: {what} is not available");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts moto (multipart parts may be as small as 64 KiB, to exercise multipart uploads on
/// small outputs) on a port the system picks when moto binds it, read back from moto's banner.
/// (A port found free beforehand could be handed to two tests at once: the second moto then
/// failed to bind, and its test talked to the first one's server until that test ended.)
fn moto() -> Option<Moto> {
    if Command::new("moto_server").arg("--help").output().is_err() {
        required("moto_server (pip install 'moto[server]')");
        return None;
    }
    let mut child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", "0"])
        .env("S3_UPLOAD_PART_MIN_SIZE", (64 * 1024).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moto_server");
    let stderr = child.stderr.take().expect("moto's standard error");
    let (port_found, port_read) = mpsc::channel();
    // moto logs every request to standard error, so the pipe is drained for the server's life.
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(port) = banner_port(&line) {
                let _ = port_found.send(port);
                break;
            }
        }
        lines.for_each(drop);
    });
    let port = port_read
        .recv_timeout(Duration::from_secs(30))
        .expect("moto_server did not say which port it listens on");
    let moto = Moto { child, port };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok((200, _)) = http(port, "GET", "/", &[]) {
            return Some(moto);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto_server did not answer on port {port}");
}

/// The port in werkzeug's " * Running on http://127.0.0.1:PORT".
fn banner_port(line: &str) -> Option<u16> {
    let address = line.split("Running on http://127.0.0.1:").nth(1)?;
    address.trim().trim_end_matches('/').parse().ok()
}

/// moto does not check signatures, but treats requests without credentials as anonymous (and
/// anonymous reads of objects written with credentials are denied).
const AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// One plain HTTP/1.1 request.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    http_with(port, method, path, &[], body)
}

fn http_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{AUTH}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..head_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = response[(head_end + 4).min(response.len())..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 4 + size..];
    }
}

impl Moto {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn bucket(&self, name: &str) {
        let (status, _) = http(self.port, "PUT", &format!("/{name}"), &[]).unwrap();
        assert_eq!(status, 200, "create bucket {name}");
    }

    fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let (status, _) = http(self.port, "PUT", &format!("/{bucket}/{key}"), body).unwrap();
        assert_eq!(status, 200, "put {bucket}/{key}");
    }

    /// Puts an object carrying its SHA-256 in its metadata (`x-amz-meta-sha256`).
    fn put_with_sha256(&self, bucket: &str, key: &str, body: &[u8]) {
        let digest = sha256_hex(body);
        let headers = [("x-amz-meta-sha256", digest.as_str())];
        let (status, _) = http_with(
            self.port,
            "PUT",
            &format!("/{bucket}/{key}"),
            &headers,
            body,
        )
        .unwrap();
        assert_eq!(status, 200, "put {bucket}/{key}");
    }

    fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = http(self.port, "GET", &format!("/{bucket}/{key}"), &[]).unwrap();
        (status == 200).then_some(body)
    }

    fn json(&self, bucket: &str, key: &str) -> Value {
        let body = self
            .get(bucket, key)
            .unwrap_or_else(|| panic!("s3://{bucket}/{key} is missing"));
        serde_json::from_slice(&body).unwrap()
    }

    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, body) = http(
            self.port,
            "GET",
            &format!("/{bucket}?list-type=2&prefix={prefix}"),
            &[],
        )
        .unwrap();
        assert_eq!(status, 200);
        tags(&String::from_utf8_lossy(&body), "Key")
    }

    /// Multipart uploads started and neither completed nor aborted.
    fn pending_uploads(&self, bucket: &str) -> Vec<String> {
        let (_, body) = http(self.port, "GET", &format!("/{bucket}?uploads"), &[]).unwrap();
        tags(&String::from_utf8_lossy(&body), "Key")
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("MZFORGE_S3_PART_BYTES", (256 * 1024).to_string()),
        ]
    }
}

fn tags(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next())
        .map(str::to_string)
        .collect()
}

// ---- data and binaries ---------------------------------------------------------------------

fn shared(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    if path.exists() {
        return Some(path);
    }
    required(&format!("{} (../shared/data)", path.display()));
    None
}

fn mzforge(moto: &Moto, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mzforge"));
    command.args(args).env_remove("AWS_PROFILE");
    for (k, v) in moto.env() {
        command.env(k, v);
    }
    for (k, v) in extra_env {
        command.env(k, v);
    }
    command.output().expect("run mzforge")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn parquet_rows(bytes: Vec<u8>) -> i64 {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    reader.metadata().file_metadata().num_rows()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn validate(schema: &str, documents: &[Value]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate_schema.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .arg(schema)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    {
        let stdin = child.stdin.as_mut().unwrap();
        for d in documents {
            writeln!(stdin, "{d}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{schema}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- mzforge run: s3 -> s3 -----------------------------------------------------------------

#[test]
fn run_s3_to_s3_on_real_files_is_complete_and_idempotent() {
    let (Some(moto), Some(bsa), Some(gz)) = (
        moto(),
        shared("runs/BSA1.mzML"),
        shared("encodings/small.mzML.gz"),
    ) else {
        return;
    };
    moto.bucket("inputs");
    moto.bucket("outputs");
    let bsa_bytes = std::fs::read(&bsa).unwrap();
    moto.put("inputs", "raw/BSA1.mzML", &bsa_bytes);
    moto.put("inputs", "raw/small.mzML.gz", &std::fs::read(&gz).unwrap());
    moto.put("inputs", "raw/notes.txt", b"not an input");
    // An earlier result kept under the prefix: its mzML is no input.
    moto.put("inputs", "raw/results/old/centroided.mzML", b"<mzML/>");
    moto.put("inputs", "raw/results/old/manifest.json", b"{}");

    // A prefix as input: every mzML/MGF under it.
    let output = mzforge(
        &moto,
        &[
            "run",
            "s3://inputs/raw/",
            "--out",
            "s3://outputs/res/",
            "--json",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2, "{}", text(&output));
    assert!(
        lines.iter().all(|l| l["status"] == "ok"),
        "{}",
        text(&output)
    );

    let mut keys = moto.keys("outputs", "res/");
    keys.sort();
    assert_eq!(
        keys,
        [
            "res/BSA1/features.parquet",
            "res/BSA1/manifest.json",
            "res/BSA1/peaks.parquet",
            "res/BSA1/run.json",
            "res/BSA1/spectra.parquet",
            "res/small/features.parquet",
            "res/small/manifest.json",
            "res/small/peaks.parquet",
            "res/small/run.json",
            "res/small/spectra.parquet",
        ]
    );
    assert!(moto.pending_uploads("outputs").is_empty());

    // The same run locally, from disk: the tables must agree.
    let local = tempfile::tempdir().unwrap();
    let local_out = mzforge(
        &moto,
        &[
            "run",
            bsa.to_str().unwrap(),
            "--out",
            local.path().to_str().unwrap(),
            "-q",
        ],
        &[],
    );
    assert!(local_out.status.success(), "{}", text(&local_out));
    let local_spectra = std::fs::read(local.path().join("BSA1/spectra.parquet")).unwrap();
    let local_peaks = std::fs::read(local.path().join("BSA1/peaks.parquet")).unwrap();
    let s3_spectra = moto.get("outputs", "res/BSA1/spectra.parquet").unwrap();
    let s3_peaks = moto.get("outputs", "res/BSA1/peaks.parquet").unwrap();
    assert_eq!(parquet_rows(s3_spectra.clone()), 1684);
    assert_eq!(parquet_rows(s3_spectra), parquet_rows(local_spectra));
    assert_eq!(parquet_rows(s3_peaks.clone()), parquet_rows(local_peaks));
    // Larger than a part (256 KiB here): this table went up as a multipart upload.
    assert!(
        s3_peaks.len() > 256 * 1024,
        "peaks {} bytes",
        s3_peaks.len()
    );

    let manifest = moto.json("outputs", "res/BSA1/manifest.json");
    assert_eq!(manifest["complete"], true);
    assert_eq!(manifest["input"]["path"], "s3://inputs/raw/BSA1.mzML");
    assert_eq!(manifest["input"]["bytes"], bsa_bytes.len() as u64);
    assert_eq!(manifest["input"]["sha256"], sha256_hex(&bsa_bytes));
    assert_eq!(manifest["qc"]["spectra_written"], 1684);
    assert!(manifest["qc"]["tic_total"].as_f64().unwrap() > 0.0);
    let local_features = std::fs::read(local.path().join("BSA1/features.parquet")).unwrap();
    assert_eq!(
        manifest["qc"]["features"].as_i64().unwrap(),
        parquet_rows(local_features)
    );
    assert_eq!(
        manifest["qc"]["peaks"].as_i64().unwrap(),
        parquet_rows(moto.get("outputs", "res/BSA1/peaks.parquet").unwrap())
    );
    let run_json = moto.json("outputs", "res/BSA1/run.json");
    assert_eq!(run_json["summary"]["spectra_written"], 1684);
    validate("result-manifest.json", std::slice::from_ref(&manifest));

    // Same input, same parameters: skipped, nothing rewritten.
    let again = mzforge(
        &moto,
        &[
            "run",
            "s3://inputs/raw/BSA1.mzML",
            "--out",
            "s3://outputs/res",
            "--json",
        ],
        &[],
    );
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(json_lines(&again)[0]["status"], "skipped");
    assert_eq!(moto.json("outputs", "res/BSA1/manifest.json"), manifest);

    // Other parameters: redone, consistently (the new manifest names the new parameters).
    let other = mzforge(
        &moto,
        &[
            "run",
            "s3://inputs/raw/BSA1.mzML",
            "--out",
            "s3://outputs/res",
            "--json",
            "--min-intensity",
            "1000",
        ],
        &[],
    );
    assert!(other.status.success(), "{}", text(&other));
    assert_eq!(json_lines(&other)[0]["status"], "ok");
    let redone = moto.json("outputs", "res/BSA1/manifest.json");
    assert_ne!(redone["params_sha256"], manifest["params_sha256"]);
    assert!(redone["qc"]["peaks"].as_u64() < manifest["qc"]["peaks"].as_u64());
    assert_eq!(
        redone["qc"]["peaks"].as_i64().unwrap(),
        parquet_rows(moto.get("outputs", "res/BSA1/peaks.parquet").unwrap())
    );

    // Local input to S3 and S3 input to a local directory work the same way.
    let up = mzforge(
        &moto,
        &[
            "run",
            gz.to_str().unwrap(),
            "--out",
            "s3://outputs/fromdisk/",
            "-q",
        ],
        &[],
    );
    assert!(up.status.success(), "{}", text(&up));
    assert!(moto
        .get("outputs", "fromdisk/small/manifest.json")
        .is_some());
    let down_dir = tempfile::tempdir().unwrap();
    let down = mzforge(
        &moto,
        &[
            "run",
            "s3://inputs/raw/small.mzML.gz",
            "--out",
            down_dir.path().to_str().unwrap(),
            "-q",
        ],
        &[],
    );
    assert!(down.status.success(), "{}", text(&down));
    assert!(down_dir.path().join("small/spectra.parquet").is_file());
    assert!(down_dir.path().join("small/run.json").is_file());
}

#[test]
fn corrupt_and_missing_inputs_leave_no_result_prefix() {
    let (Some(moto), Some(corrupt), Some(invalid)) = (
        moto(),
        shared("edge/MzMLFile_6_uncompresscor.MzML.gz"),
        shared("edge/1min.mzML"),
    ) else {
        return;
    };
    moto.bucket("inputs");
    moto.bucket("outputs");
    moto.put(
        "inputs",
        "corrupt.mzML.gz",
        &std::fs::read(&corrupt).unwrap(),
    );
    moto.put("inputs", "old.mzML", &std::fs::read(&invalid).unwrap());
    moto.put("inputs", "text.mzML", b"hello, this is not mzML at all\n");

    for (input, expect) in [
        ("s3://inputs/corrupt.mzML.gz", "gzip"),
        ("s3://inputs/old.mzML", "pre-1.0"),
        ("s3://inputs/text.mzML", "not an mzML or MGF file"),
        ("s3://inputs/nope.mzML", "no such object"),
    ] {
        let output = mzforge(&moto, &["run", input, "--out", "s3://outputs/bad/"], &[]);
        assert_eq!(output.status.code(), Some(1), "{input}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expect), "{input}: {stderr}");
        assert!(
            stderr.contains(input.trim_start_matches("s3://inputs/")),
            "{input}: {stderr}"
        );
        assert!(
            moto.keys("outputs", "bad/").is_empty(),
            "{input} left {:?}",
            moto.keys("outputs", "bad/")
        );
        assert!(moto.pending_uploads("outputs").is_empty());
    }
    // Unreachable store: transient, exit 75 (retry).
    let down = Command::new(env!("CARGO_BIN_EXE_mzforge"))
        .args(["run", "s3://inputs/text.mzML", "--out", "/tmp/never"])
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_ne!(down.status.code(), Some(0), "{}", text(&down));
}

/// `--inputs-at-once` with object storage: the reports in input order, the bad input failing
/// alone, and every table equal, byte for byte, to one input at a time's.
#[test]
fn inputs_at_once_from_s3_give_the_same_tables_in_input_order() {
    let (Some(moto), Some(bsa), Some(gz)) = (
        moto(),
        shared("runs/BSA1.mzML"),
        shared("encodings/small.mzML.gz"),
    ) else {
        return;
    };
    moto.bucket("inputs");
    moto.bucket("outputs");
    moto.put("inputs", "BSA1.mzML", &std::fs::read(&bsa).unwrap());
    moto.put("inputs", "text.mzML", b"hello, this is not mzML at all\n");
    moto.put("inputs", "small.mzML.gz", &std::fs::read(&gz).unwrap());
    moto.put("inputs", "sim.mzML", &fixture_bytes());
    // The longest input first: it finishes last when the others run beside it.
    let inputs = [
        "s3://inputs/BSA1.mzML",
        "s3://inputs/text.mzML",
        "s3://inputs/small.mzML.gz",
        "s3://inputs/sim.mzML",
    ];
    let run = |out: &str, at_once: &str| {
        let mut args = vec!["run", "--out", out, "--json", "--inputs-at-once", at_once];
        args.extend(inputs);
        mzforge(&moto, &args, &[])
    };
    for (out, at_once) in [("s3://outputs/one/", "1"), ("s3://outputs/three/", "3")] {
        let output = run(out, at_once);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let lines = json_lines(&output);
        let reported: Vec<_> = lines.iter().map(|l| l["input"].as_str().unwrap()).collect();
        assert_eq!(reported, inputs, "{}", text(&output));
        let statuses: Vec<_> = lines
            .iter()
            .map(|l| l["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["ok", "error", "ok", "ok"], "{}", text(&output));
    }
    assert!(moto.pending_uploads("outputs").is_empty());
    assert!(moto.keys("outputs", "three/text/").is_empty());
    for stem in ["BSA1", "small", "sim"] {
        let one = tables_at(&moto, "outputs", &format!("one/{stem}/"));
        let three = tables_at(&moto, "outputs", &format!("three/{stem}/"));
        assert_eq!(one.len(), 3, "{stem}: {:?}", one.keys());
        assert!(one == three, "{stem}: the tables differ");
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stop signal (Spot interruption) mid-run aborts the uploads: no manifest, no object, no
/// pending multipart upload; exit 75. A hard kill leaves no visible object either.
#[test]
fn interrupted_runs_publish_nothing() {
    let (Some(moto), Some(bsa)) = (moto(), shared("runs/BSA1.mzML")) else {
        return;
    };
    moto.bucket("inputs");
    moto.bucket("outputs");
    moto.put("inputs", "BSA1.mzML", &std::fs::read(&bsa).unwrap());

    for signal in ["TERM", "KILL"] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mzforge"));
        command
            .args([
                "run",
                "s3://inputs/BSA1.mzML",
                "--out",
                "s3://outputs/int/",
                "--threads",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in moto.env() {
            command.env(k, v);
        }
        // Small parts so that uploads start early; a batch at a time so it takes a while.
        command.env("MZFORGE_S3_PART_BYTES", (64 * 1024).to_string());
        let mut guard = KillOnDrop(command.spawn().unwrap());
        let child = &mut guard.0;
        let started = Instant::now();
        while moto.pending_uploads("outputs").is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no multipart upload started"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "finished before it could be interrupted"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(
            moto.keys("outputs", "int/").is_empty(),
            "{signal}: {:?}",
            moto.keys("outputs", "int/")
        );
        if signal == "TERM" {
            assert_eq!(status.code(), Some(75), "{stderr}");
            assert!(stderr.contains("interrupted"), "{stderr}");
            assert!(
                moto.pending_uploads("outputs").is_empty(),
                "uploads not aborted"
            );
        }
    }
    // A re-run after the interruptions completes normally.
    let output = mzforge(
        &moto,
        &[
            "run",
            "s3://inputs/BSA1.mzML",
            "--out",
            "s3://outputs/int/",
            "-q",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(moto.get("outputs", "int/BSA1/manifest.json").is_some());
}

// ---- AWS Batch array jobs ------------------------------------------------------------------

#[test]
fn batch_array_children_pick_their_input_and_exit_by_failure_class() {
    let (Some(moto), Some(a), Some(b), Some(corrupt)) = (
        moto(),
        shared("profile/three_test_scans.mzML"),
        shared("mgf/small.mgf"),
        shared("edge/MzMLFile_6_uncompresscor.MzML.gz"),
    ) else {
        return;
    };
    moto.bucket("uploads-b");
    moto.bucket("results-b");
    moto.put(
        "uploads-b",
        "a/three_test_scans.mzML",
        &std::fs::read(&a).unwrap(),
    );
    moto.put("uploads-b", "a/small.mgf", &std::fs::read(&b).unwrap());
    moto.put(
        "uploads-b",
        "a/corrupt.mzML.gz",
        &std::fs::read(&corrupt).unwrap(),
    );
    let entry = |index: usize, key: &str, stem: &str| {
        json!({
            "index": index, "url": format!("s3://uploads-b/{key}"), "bytes": 1, "eTag": null,
            "stem": stem, "format": "mzml", "gzip": false, "scan": "full", "spectra": 0,
            "spectraPerLevel": {}, "profileSpectra": 0, "centroidSpectra": 0, "declaredSpectra": null,
        })
    };
    let manifest = json!({
        "analysisId": "job1",
        "params": {"centroid": {"min_snr": 1.0}},
        "mzml": false,
        "output": "s3://results-b/analyses/job1/results",
        "route": "batch",
        "routing": {},
        "inputs": [
            entry(0, "a/three_test_scans.mzML", "three_test_scans"),
            entry(1, "a/small.mgf", "small"),
            entry(2, "a/corrupt.mzML.gz", "corrupt"),
            entry(3, "a/gone.mzML", "gone"),
        ],
    });
    moto.put(
        "results-b",
        "analyses/job1/analysis.json",
        manifest.to_string().as_bytes(),
    );
    let env = [
        ("MZFORGE_RESULTS_BUCKET", "results-b"),
        ("MZFORGE_MANIFEST_KEY", "analyses/job1/analysis.json"),
    ];
    let child = |index: &str| {
        let mut e = env.to_vec();
        e.push(("AWS_BATCH_JOB_ARRAY_INDEX", index));
        mzforge(&moto, &["batch"], &e)
    };

    let one = child("1");
    assert!(one.status.success(), "{}", text(&one));
    assert!(moto
        .get("results-b", "analyses/job1/results/small/manifest.json")
        .is_some());
    assert!(moto
        .keys("results-b", "analyses/job1/results/three_test_scans")
        .is_empty());
    // A retried child skips what is done.
    let again = child("1");
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(json_lines(&again)[0]["status"], "skipped");
    // An input's own failure (broken, missing) is recorded in its result prefix and the child
    // exits 0, so that the array job, and the analysis, go on (it exited 65 / 66, failing the
    // whole array job); no result is published for it.
    for (index, stem, error) in [
        ("2", "corrupt", "Mzforge.BadInput"),
        ("3", "gone", "Mzforge.MissingInput"),
    ] {
        let failed = child(index);
        assert!(failed.status.success(), "{}", text(&failed));
        assert_eq!(json_lines(&failed)[0]["status"], "failed");
        let prefix = format!("analyses/job1/results/{stem}");
        assert_eq!(
            moto.keys("results-b", &prefix),
            vec![format!("{prefix}/failure.json")]
        );
        let record = moto.json("results-b", &format!("{prefix}/failure.json"));
        validate("input-failure.json", std::slice::from_ref(&record));
        assert_eq!(record["error"], error);
        assert!(record["cause"].as_str().unwrap().contains(stem), "{record}");
    }
    // Permanent failures of the job itself: index out of range 78.
    assert_eq!(child("9").status.code(), Some(78));
    let no_manifest = mzforge(
        &moto,
        &["batch", "--manifest", "s3://results-b/none.json"],
        &[],
    );
    assert_eq!(
        no_manifest.status.code(),
        Some(78),
        "{}",
        text(&no_manifest)
    );
    // Child 0, with the parameters of the manifest.
    let zero = child("0");
    assert!(zero.status.success(), "{}", text(&zero));
    let run = moto.json(
        "results-b",
        "analyses/job1/results/three_test_scans/run.json",
    );
    assert_eq!(run["params"]["centroid"]["min_snr"], 1.0);
}

/// The project's own generated input (no shared data needed).
fn fixture_bytes() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data/sim_profile.mzML"))
        .unwrap()
}

/// A job without an array index runs every input: one that fails is recorded and the others
/// still run; a manifest naming one result prefix twice is refused before anything is written.
#[test]
fn batch_single_job_goes_on_past_a_failed_input() {
    let Some(moto) = moto() else { return };
    moto.bucket("uploads-s");
    moto.bucket("results-s");
    moto.put("uploads-s", "a/broken.mzML", b"this is not mzML");
    moto.put("uploads-s", "a/good.mzML", &fixture_bytes());
    let entry = |index: usize, key: &str, stem: &str| {
        json!({
            "index": index, "url": format!("s3://uploads-s/{key}"), "bytes": 1, "eTag": null,
            "stem": stem, "format": "mzml", "gzip": false, "scan": "full", "spectra": 0,
            "spectraPerLevel": {}, "profileSpectra": 0, "centroidSpectra": 0, "declaredSpectra": null,
        })
    };
    let manifest = |id: &str, inputs: Vec<Value>| {
        json!({
            "analysisId": id, "params": {}, "mzml": false,
            "output": format!("s3://results-s/analyses/{id}/results"),
            "route": "batch", "routing": {}, "inputs": inputs,
        })
    };
    let single = manifest(
        "one",
        vec![
            entry(0, "a/broken.mzML", "broken"),
            entry(1, "a/good.mzML", "good"),
        ],
    );
    moto.put("results-s", "one.json", single.to_string().as_bytes());
    let run = mzforge(
        &moto,
        &["batch", "--manifest", "s3://results-s/one.json"],
        &[],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let lines = json_lines(&run);
    assert_eq!(lines.len(), 2, "{}", text(&run));
    assert_eq!(lines[0]["index"], 0);
    assert_eq!(lines[0]["status"], "failed");
    assert_eq!(lines[0]["error"], "Mzforge.BadInput");
    assert_eq!(lines[1]["status"], "ok");
    assert!(moto
        .get("results-s", "analyses/one/results/good/manifest.json")
        .is_some());
    assert_eq!(
        moto.keys("results-s", "analyses/one/results/broken"),
        vec!["analyses/one/results/broken/failure.json".to_string()]
    );
    // Once the input is fixed, a re-run publishes its result and the record goes.
    moto.put("uploads-s", "a/broken.mzML", &fixture_bytes());
    let fixed = mzforge(
        &moto,
        &["batch", "--manifest", "s3://results-s/one.json"],
        &[],
    );
    assert!(fixed.status.success(), "{}", text(&fixed));
    let keys = moto.keys("results-s", "analyses/one/results/broken");
    assert!(
        keys.iter().any(|k| k.ends_with("/manifest.json")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.ends_with("/failure.json")),
        "{keys:?}"
    );

    let twice = manifest(
        "two",
        vec![
            entry(0, "a/good.mzML", "good"),
            entry(1, "a/good.mzML", "good"),
        ],
    );
    moto.put("results-s", "two.json", twice.to_string().as_bytes());
    let refused = mzforge(
        &moto,
        &["batch", "--manifest", "s3://results-s/two.json"],
        &[],
    );
    assert_eq!(refused.status.code(), Some(78), "{}", text(&refused));
    assert!(
        text(&refused).contains("input 1") && text(&refused).contains("\"good-2\""),
        "{}",
        text(&refused)
    );
    assert!(moto.keys("results-s", "analyses/two/").is_empty());

    // Two objects of one name, each under the result name preprocess gives it: both published.
    moto.put("uploads-s", "b/good.mzML", &fixture_bytes());
    let numbered = manifest(
        "three",
        vec![
            entry(0, "a/good.mzML", "good"),
            entry(1, "b/good.mzML", "good-2"),
        ],
    );
    moto.put("results-s", "three.json", numbered.to_string().as_bytes());
    let both = mzforge(
        &moto,
        &["batch", "--manifest", "s3://results-s/three.json"],
        &[],
    );
    assert!(both.status.success(), "{}", text(&both));
    for (stem, key) in [("good", "a/good.mzML"), ("good-2", "b/good.mzML")] {
        let run = moto.json(
            "results-s",
            &format!("analyses/three/results/{stem}/run.json"),
        );
        assert_eq!(
            run["input"]["path"],
            format!("s3://uploads-s/{key}"),
            "{run}"
        );
    }
}

/// A plate per folder, a well per file, on S3: without --keep-folders the two `A1.mzML` are
/// refused before anything is written (the message says how); with it each result keeps its
/// folder below the prefix, from S3 to S3, from S3 to a local directory and from a local
/// directory to S3.
#[test]
fn keep_folders_runs_same_named_objects_of_several_folders() {
    let Some(moto) = moto() else { return };
    moto.bucket("plates-k");
    moto.bucket("out-k");
    let data = fixture_bytes();
    for key in [
        "plates/plate1/A1.mzML",
        "plates/plate2/A1.mzML",
        "plates/loose.mzML",
    ] {
        moto.put("plates-k", key, &data);
    }
    let refused = mzforge(
        &moto,
        &[
            "run",
            "s3://plates-k/plates/",
            "--out",
            "s3://out-k/res",
            "-q",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("plate2/A1.mzML") && text(&refused).contains("--keep-folders"),
        "{}",
        text(&refused)
    );
    assert!(moto.keys("out-k", "res").is_empty());

    let kept = mzforge(
        &moto,
        &[
            "run",
            "s3://plates-k/plates",
            "--out",
            "s3://out-k/res",
            "--keep-folders",
            "--json",
            "--no-deconvolve",
        ],
        &[],
    );
    assert!(kept.status.success(), "{}", text(&kept));
    for (rel, key) in [
        ("plate1/A1", "plates/plate1/A1.mzML"),
        ("plate2/A1", "plates/plate2/A1.mzML"),
        ("loose", "plates/loose.mzML"),
    ] {
        let manifest = moto.json("out-k", &format!("res/{rel}/manifest.json"));
        assert_eq!(manifest["input"]["path"], format!("s3://plates-k/{key}"));
    }

    let local_out = tempfile::tempdir().unwrap();
    let to_local = mzforge(
        &moto,
        &[
            "run",
            "s3://plates-k/plates/",
            "--out",
            local_out.path().to_str().unwrap(),
            "--keep-folders",
            "-q",
            "--no-deconvolve",
        ],
        &[],
    );
    assert!(to_local.status.success(), "{}", text(&to_local));
    for rel in ["plate1/A1", "plate2/A1", "loose"] {
        assert!(
            local_out.path().join(rel).join("run.json").is_file(),
            "{rel}"
        );
    }

    let local_in = tempfile::tempdir().unwrap();
    for rel in ["p1/B2.mzML", "p2/B2.mzML"] {
        let path = local_in.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &data).unwrap();
    }
    let from_local = mzforge(
        &moto,
        &[
            "run",
            local_in.path().to_str().unwrap(),
            "--out",
            "s3://out-k/fromlocal",
            "--keep-folders",
            "-q",
            "--no-deconvolve",
        ],
        &[],
    );
    assert!(from_local.status.success(), "{}", text(&from_local));
    for rel in ["p1/B2", "p2/B2"] {
        assert!(moto
            .get("out-k", &format!("fromlocal/{rel}/manifest.json"))
            .is_some());
    }
}

/// What an operator types: keys with spaces, brackets, unicode, `+`, `%` and `=`; a prefix
/// without its slash; a re-run with other options into a prefix holding a result; a bucket
/// that does not exist; credentials half set. Permanent mistakes must not ask for a retry.
#[test]
fn operator_keys_prefixes_reruns_and_configuration_errors() {
    let Some(moto) = moto() else { return };
    moto.bucket("raw-o");
    moto.bucket("out-o");
    let data = fixture_bytes();
    // The helper sends keys as given: `%` and spaces are escaped for the request line.
    let keys = [
        ("deep/a/b/odd names/run [rep1].mzML", "run [rep1]"),
        ("deep/a/b/odd names/ünï+x%y=z.mzML", "ünï+x%y=z"),
    ];
    for (key, _) in keys {
        let escaped = key.replace('%', "%25").replace(' ', "%20");
        moto.put("raw-o", &escaped, &data);
    }
    // A key whose name holds `[` is that object, not a pattern matching nothing.
    let literal = mzforge(
        &moto,
        &[
            "run",
            "s3://raw-o/deep/a/b/odd names/run [rep1].mzML",
            "--out",
            "s3://out-o/one/",
            "-q",
        ],
        &[],
    );
    assert!(literal.status.success(), "{}", text(&literal));
    // A prefix named without its trailing slash is a prefix, as a local directory is.
    let prefix = mzforge(
        &moto,
        &[
            "run",
            "s3://raw-o/deep/a/b/odd names",
            "--out",
            "s3://out-o/all",
            "--json",
        ],
        &[],
    );
    assert!(prefix.status.success(), "{}", text(&prefix));
    assert_eq!(json_lines(&prefix).len(), 2, "{}", text(&prefix));
    for (_, stem) in keys {
        let manifest = moto.json(
            "out-o",
            &format!("all/{stem}/manifest.json")
                .replace('%', "%25")
                .replace(' ', "%20"),
        );
        assert_eq!(manifest["complete"], true);
    }

    // A re-run with other options replaces the whole result: no mzML of the old one is left.
    moto.put("raw-o", "plain/rerun.mzML", &data);
    let input = "s3://raw-o/plain/rerun.mzML";
    let first = mzforge(
        &moto,
        &["run", input, "--out", "s3://out-o/rerun/", "--mzml", "-q"],
        &[],
    );
    assert!(first.status.success(), "{}", text(&first));
    assert!(moto.get("out-o", "rerun/rerun/centroided.mzML").is_some());
    let second = mzforge(
        &moto,
        &[
            "run",
            input,
            "--out",
            "s3://out-o/rerun/",
            "--min-snr",
            "7",
            "-q",
        ],
        &[],
    );
    assert!(second.status.success(), "{}", text(&second));
    let left: Vec<String> = moto
        .keys("out-o", "rerun/")
        .into_iter()
        .map(|k| k.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        [
            "features.parquet",
            "manifest.json",
            "peaks.parquet",
            "run.json",
            "spectra.parquet"
        ],
        "{left:?}"
    );

    // A damaged manifest (or one of another version) marks no result: it is replaced.
    moto.put(
        "out-o",
        "damaged/rerun/manifest.json",
        b"{\"complete\": tru",
    );
    let over = mzforge(
        &moto,
        &["run", input, "--out", "s3://out-o/damaged/", "-q"],
        &[],
    );
    assert!(over.status.success(), "{}", text(&over));
    assert_eq!(
        moto.json("out-o", "damaged/rerun/manifest.json")["complete"],
        true
    );

    // Permanent mistakes: a bucket that does not exist, a secret key not set.
    let no_bucket = mzforge(
        &moto,
        &["run", "s3://no-such-bucket-o/", "--out", "s3://out-o/x/"],
        &[],
    );
    assert_eq!(no_bucket.status.code(), Some(1), "{}", text(&no_bucket));
    let mut half = Command::new(env!("CARGO_BIN_EXE_mzforge"));
    half.args(["batch", "--manifest", "s3://out-o/analysis.json"])
        .env_remove("AWS_PROFILE");
    for (k, v) in moto.env() {
        half.env(k, v);
    }
    let half = half
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("run mzforge");
    assert_eq!(half.status.code(), Some(78), "{}", text(&half));
    assert!(text(&half).contains("SecretAccessKey"), "{}", text(&half));
}

// ---- Lambda: the real binary through the Runtime API ---------------------------------------

/// A Lambda Runtime API endpoint: hands out queued events on `/next`, collects responses and
/// errors (as AWS Lambda does for a provided.al2023 function).
struct RuntimeApi {
    port: u16,
    events: mpsc::Sender<(String, Value)>,
    results: mpsc::Receiver<(String, Result<Value, Value>, Instant)>,
    first_poll: mpsc::Receiver<Instant>,
}

fn runtime_api() -> RuntimeApi {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (event_tx, event_rx) = mpsc::channel::<(String, Value)>();
    let (result_tx, result_rx) = mpsc::channel();
    let (poll_tx, poll_rx) = mpsc::channel();
    let event_rx = std::sync::Arc::new(std::sync::Mutex::new(event_rx));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (event_rx, result_tx, poll_tx) =
                (event_rx.clone(), result_tx.clone(), poll_tx.clone());
            std::thread::spawn(move || serve(stream, &event_rx, &result_tx, &poll_tx));
        }
    });
    RuntimeApi {
        port,
        events: event_tx,
        results: result_rx,
        first_poll: poll_rx,
    }
}

type Results = mpsc::Sender<(String, Result<Value, Value>, Instant)>;

fn serve(
    stream: TcpStream,
    events: &std::sync::Mutex<mpsc::Receiver<(String, Value)>>,
    results: &Results,
    polls: &mpsc::Sender<Instant>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = polls.send(Instant::now());
            let next = events.lock().unwrap().recv();
            let Ok((id, payload)) = next else { return };
            let body = payload.to_string();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 120_000;
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:mzforge\r\nLambda-Runtime-Trace-Id: Root=1-0-0\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        } else {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let id = path.split('/').nth(4).unwrap_or("").to_string();
            let outcome = if path.ends_with("/response") {
                Ok(value)
            } else {
                Err(value)
            };
            let _ = results.send((id, outcome, Instant::now()));
            write!(
                writer,
                "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{{}}"
            )
            .unwrap();
        }
        let _ = writer.flush();
    }
}

struct LambdaProcess {
    child: Child,
    api: RuntimeApi,
    spawned: Instant,
    counter: usize,
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LambdaProcess {
    fn start(moto: &Moto, step: Option<&str>) -> LambdaProcess {
        let api = runtime_api();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mzforge-lambda"));
        command
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", api.port))
            .env("AWS_LAMBDA_FUNCTION_NAME", "mzforge")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("MZFORGE_UPLOADS_BUCKET", "uploads")
            .env("MZFORGE_RESULTS_BUCKET", "results")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(step) = step {
            command.env("MZFORGE_STEP", step);
        }
        for (k, v) in moto.env() {
            command.env(k, v);
        }
        let spawned = Instant::now();
        let child = command.spawn().unwrap();
        LambdaProcess {
            child,
            api,
            spawned,
            counter: 0,
        }
    }

    fn invoke(&mut self, event: Value) -> Result<Value, Value> {
        self.counter += 1;
        let id = format!("req-{}", self.counter);
        self.api.events.send((id.clone(), event)).unwrap();
        let (got, outcome, _) = self
            .api
            .results
            .recv_timeout(Duration::from_secs(120))
            .expect("no answer from mzforge-lambda");
        assert_eq!(got, id);
        outcome
    }
}

#[test]
fn lambda_steps_run_an_analysis_end_to_end_with_typed_errors() {
    let (Some(moto), Some(a), Some(b), Some(corrupt)) = (
        moto(),
        shared("profile/three_test_scans.mzML"),
        shared("runs/MS3_nonHierarchical.mzML"),
        shared("edge/MzMLFile_6_uncompresscor.MzML.gz"),
    ) else {
        return;
    };
    moto.bucket("uploads");
    moto.bucket("results");
    moto.put(
        "uploads",
        "data/an1/three_test_scans.mzML",
        &std::fs::read(&a).unwrap(),
    );
    moto.put(
        "uploads",
        "data/an1/MS3_nonHierarchical.mzML",
        &std::fs::read(&b).unwrap(),
    );
    moto.put(
        "uploads",
        "data/bad/corrupt.mzML.gz",
        &std::fs::read(&corrupt).unwrap(),
    );
    let request = json!({"inputs": ["data/an1/"], "params": {"centroid": {"min_snr": 1.0}},
                         "mzml": true, "mzmlPeaks": "deconvolved"});
    validate("request.json", std::slice::from_ref(&request));
    moto.put(
        "uploads",
        "requests/an1.json",
        request.to_string().as_bytes(),
    );

    // One process serves every step (the step comes with the event), as a warm container would.
    let mut lambda = LambdaProcess::start(&moto, None);
    let start_event =
        json!({"analysisId": "an1", "request": {"bucket": "uploads", "key": "requests/an1.json"}});
    validate("preprocess-input.json", std::slice::from_ref(&start_event));
    let mut event = start_event.clone();
    event["step"] = json!("preprocess");
    let pre = lambda.invoke(event).expect("preprocess");
    validate("preprocess-output.json", std::slice::from_ref(&pre));
    assert_eq!(pre["route"], "lambda");
    assert_eq!(pre["inputCount"], 2);
    assert_eq!(pre["manifestKey"], "analyses/an1/analysis.json");
    let inputs = pre["inputs"].as_array().unwrap();
    let ms3 = inputs
        .iter()
        .find(|i| i["stem"] == "MS3_nonHierarchical")
        .unwrap();
    assert_eq!(ms3["scan"], "full");
    assert!(ms3["spectraPerLevel"]["3"].as_u64().unwrap() > 0, "{ms3}");
    validate(
        "analysis-manifest.json",
        &[moto.json("results", "analyses/an1/analysis.json")],
    );

    // The Map: one analyze per input, with the item the state machine builds.
    let mut analyses = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let item = json!({"analysisId": "an1", "input": input, "index": index, "step": "analyze"});
        let done = lambda.invoke(item).expect("analyze");
        assert_eq!(done["status"], "ok");
        assert!(done["qc"]["spectra_written"].as_u64().unwrap() > 0);
        // The mzML asked for, with the deconvolved peak list.
        let mzml_key = format!(
            "analyses/an1/results/{}/centroided.mzML",
            input["stem"].as_str().unwrap()
        );
        let mzml = moto.get("results", &mzml_key).expect("centroided.mzML");
        let mzml = String::from_utf8_lossy(&mzml);
        assert!(mzml.contains("charge deconvolution"), "{mzml_key}");
        analyses.push(done);
    }
    validate("analyze-output.json", &analyses);
    let mut state = pre.clone();
    state["analyses"] = Value::Array(analyses.clone());
    state["step"] = json!("postprocess");
    let post = lambda.invoke(state).expect("postprocess");
    validate("postprocess-output.json", std::slice::from_ref(&post));
    assert_eq!(post["status"], "complete");
    let summary = moto.json("results", "analyses/an1/summary.json");
    validate("summary.json", std::slice::from_ref(&summary));
    assert_eq!(summary["inputs"].as_array().unwrap().len(), 2);
    let total: u64 = analyses
        .iter()
        .map(|a| a["qc"]["peaks"].as_u64().unwrap())
        .sum();
    assert_eq!(summary["totals"]["peaks"], total);

    // Typed errors: a missing request, a corrupt input, a bad event.
    let missing = lambda
        .invoke(json!({"step": "preprocess", "analysisId": "an2", "request": {"bucket": "uploads", "key": "requests/an2.json"}}))
        .unwrap_err();
    assert_eq!(missing["errorType"], "Mzforge.MissingInput", "{missing}");
    moto.put(
        "uploads",
        "requests/bad.json",
        json!({"inputs": ["data/bad/corrupt.mzML.gz"]})
            .to_string()
            .as_bytes(),
    );
    let bad = lambda
        .invoke(json!({"step": "preprocess", "analysisId": "bad", "request": {"bucket": "uploads", "key": "requests/bad.json"}}))
        .unwrap_err();
    assert_eq!(bad["errorType"], "Mzforge.BadInput", "{bad}");
    assert!(
        bad["errorMessage"]
            .as_str()
            .unwrap()
            .contains("corrupt.mzML.gz"),
        "{bad}"
    );
    let invalid = lambda
        .invoke(json!({"step": "analyze", "analysisId": "an1"}))
        .unwrap_err();
    assert_eq!(invalid["errorType"], "Mzforge.InvalidRequest", "{invalid}");
    // Postprocess of an analysis whose results are missing fails, without a summary.
    moto.put(
        "uploads",
        "requests/an3.json",
        json!({"inputs": ["data/an1/three_test_scans.mzML"]})
            .to_string()
            .as_bytes(),
    );
    lambda
        .invoke(json!({"step": "preprocess", "analysisId": "an3", "request": {"bucket": "uploads", "key": "requests/an3.json"}}))
        .expect("preprocess an3");
    let incomplete = lambda
        .invoke(json!({"step": "postprocess", "analysisId": "an3"}))
        .unwrap_err();
    assert!(
        incomplete["errorMessage"]
            .as_str()
            .unwrap()
            .contains("incomplete"),
        "{incomplete}"
    );
    assert!(moto.get("results", "analyses/an3/summary.json").is_none());

    // record-failure, with what a Catch puts in $.error.
    let failure_event = json!({
        "step": "record-failure", "analysisId": "bad",
        "error": {"Error": "Mzforge.BadInput", "Cause": bad.to_string()},
    });
    let recorded = lambda.invoke(failure_event).expect("record-failure");
    validate("failure.json", std::slice::from_ref(&recorded));
    assert_eq!(recorded["recorded"], true);
    assert_eq!(recorded["retryable"], false);
    let stored = moto.json("results", "analyses/bad/failure.json");
    assert!(stored["cause"]
        .as_str()
        .unwrap()
        .contains("corrupt.mzML.gz"));
}

/// The fixture with the m/z array of every other spectrum of the first 16 made undecodable:
/// 8 spectra skipped as bad, each with a warning.
fn fixture_with_bad_spectra() -> Vec<u8> {
    let text = String::from_utf8(fixture_bytes()).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    let mut arrays = 0;
    while let Some(at) = rest.find("<binary>") {
        let end = rest[at..].find("</binary>").unwrap() + at;
        out.push_str(&rest[..at + "<binary>".len()]);
        arrays += 1;
        if arrays % 2 == 1 && arrays <= 16 {
            out.push_str("@@@@@@@@@@@@");
        } else {
            out.push_str(&rest[at + "<binary>".len()..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Bad spectra are skipped and reported, the others analysed; analyze's answer, which the Map
/// gathers into the execution's 256 KiB state for every input, lists one warning, not 100.
#[test]
fn lambda_analyze_answers_stay_small_when_spectra_are_bad() {
    let Some(moto) = moto() else { return };
    moto.bucket("uploads");
    moto.bucket("results");
    moto.put("uploads", "w/bad8.mzML", &fixture_with_bad_spectra());
    let request = json!({"inputs": ["w/bad8.mzML"]});
    moto.put(
        "uploads",
        "requests/w1.json",
        request.to_string().as_bytes(),
    );
    let mut lambda = LambdaProcess::start(&moto, None);
    let pre = lambda
        .invoke(json!({"step": "preprocess", "analysisId": "w1",
                       "request": {"bucket": "uploads", "key": "requests/w1.json"}}))
        .expect("preprocess");
    let item =
        json!({"step": "analyze", "analysisId": "w1", "input": pre["inputs"][0], "index": 0});
    let done = lambda.invoke(item).expect("analyze");
    validate("analyze-output.json", std::slice::from_ref(&done));
    assert_eq!(done["qc"]["spectra_written"], 12, "{done}");
    assert_eq!(done["qc"]["warnings_total"], 8, "{done}");
    assert_eq!(
        done["qc"]["warnings"].as_array().unwrap().len(),
        1,
        "{done}"
    );
    let stored = moto.json("results", "analyses/w1/results/bad8/manifest.json");
    assert_eq!(stored["qc"]["warnings"].as_array().unwrap().len(), 8);
}

/// An analysis of several files goes on past the ones that cannot be analysed: each is
/// recorded in its result prefix and listed in the summary, and the others' results stand (one
/// broken file failed the whole analysis). Only when no file can be analysed does it fail.
#[test]
fn lambda_analysis_goes_on_past_inputs_that_cannot_be_analysed() {
    let (Some(moto), Some(good), Some(corrupt)) = (
        moto(),
        shared("profile/three_test_scans.mzML"),
        shared("edge/MzMLFile_6_uncompresscor.MzML.gz"),
    ) else {
        return;
    };
    moto.bucket("uploads");
    moto.bucket("results");
    moto.put("uploads", "m/good.mzML", &std::fs::read(&good).unwrap());
    // Fails when preprocess reads it.
    moto.put(
        "uploads",
        "m/corrupt.mzML.gz",
        &std::fs::read(&corrupt).unwrap(),
    );
    // Reads, but fails in analyze: `on_bad_spectrum = fail` and eight undecodable spectra.
    moto.put("uploads", "m/bad8.mzML", &fixture_with_bad_spectra());
    let request = json!({"inputs": ["m/"], "params": {"on_bad_spectrum": "fail"}});
    moto.put(
        "uploads",
        "requests/m1.json",
        request.to_string().as_bytes(),
    );
    let mut lambda = LambdaProcess::start(&moto, None);
    let pre = lambda
        .invoke(json!({"step": "preprocess", "analysisId": "m1",
                       "request": {"bucket": "uploads", "key": "requests/m1.json"}}))
        .expect("preprocess goes on past an input it cannot read");
    validate("preprocess-output.json", std::slice::from_ref(&pre));
    assert_eq!(pre["route"], "lambda", "{pre}");
    let inputs = pre["inputs"].as_array().unwrap().clone();
    let scan = |stem: &str| inputs.iter().find(|i| i["stem"] == stem).unwrap()["scan"].clone();
    assert_eq!(scan("corrupt"), "failed");
    assert_eq!(scan("good"), "full");
    validate(
        "analysis-manifest.json",
        &[moto.json("results", "analyses/m1/analysis.json")],
    );

    let mut answers = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let item = json!({"step": "analyze", "analysisId": "m1", "input": input, "index": index});
        answers.push(
            lambda
                .invoke(item)
                .expect("analyze answers, also for a failed input"),
        );
    }
    validate("analyze-output.json", &answers);
    let answer = |stem: &str| answers.iter().find(|a| a["stem"] == stem).unwrap().clone();
    assert_eq!(answer("good")["status"], "ok");
    for stem in ["corrupt", "bad8"] {
        let failed = answer(stem);
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["error"], "Mzforge.BadInput", "{failed}");
        let prefix = format!("analyses/m1/results/{stem}");
        assert_eq!(
            moto.keys("results", &prefix),
            vec![format!("{prefix}/failure.json")]
        );
        validate(
            "input-failure.json",
            &[moto.json("results", &format!("{prefix}/failure.json"))],
        );
    }
    assert!(
        answer("bad8")["cause"]
            .as_str()
            .unwrap()
            .contains("spectrum"),
        "{}",
        answer("bad8")
    );

    let post = lambda
        .invoke(json!({"step": "postprocess", "analysisId": "m1"}))
        .expect("postprocess");
    validate("postprocess-output.json", std::slice::from_ref(&post));
    assert_eq!(post["failedCount"], 2, "{post}");
    let summary = moto.json("results", "analyses/m1/summary.json");
    validate("summary.json", std::slice::from_ref(&summary));
    assert_eq!(summary["inputs"].as_array().unwrap().len(), 1);
    assert_eq!(summary["totals"]["peaks"], answer("good")["qc"]["peaks"]);
    let failed = summary["failed"].as_array().unwrap();
    let failed_inputs: Vec<_> = failed
        .iter()
        .map(|f| f["input"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed_inputs,
        ["s3://uploads/m/bad8.mzML", "s3://uploads/m/corrupt.mzML.gz"]
    );
    assert_eq!(summary["route"], "lambda");
    // Handed over to Batch (an input too slow for a Lambda): the state carries the Batch task's
    // answer, and the summary says who analysed the inputs (it said "lambda", the manifest's).
    lambda
        .invoke(json!({"step": "postprocess", "analysisId": "m1",
                       "batchJob": {"jobId": "j-1", "status": "SUCCEEDED"}}))
        .expect("postprocess after Batch");
    assert_eq!(
        moto.json("results", "analyses/m1/summary.json")["route"],
        "batch"
    );

    // Nothing usable: the analysis fails, naming the first input and its reason.
    let request = json!({"inputs": ["m/bad8.mzML"], "params": {"on_bad_spectrum": "fail"}});
    moto.put(
        "uploads",
        "requests/m2.json",
        request.to_string().as_bytes(),
    );
    let pre = lambda
        .invoke(json!({"step": "preprocess", "analysisId": "m2",
                       "request": {"bucket": "uploads", "key": "requests/m2.json"}}))
        .expect("preprocess");
    let item =
        json!({"step": "analyze", "analysisId": "m2", "input": pre["inputs"][0], "index": 0});
    assert_eq!(lambda.invoke(item).expect("analyze")["status"], "failed");
    let none = lambda
        .invoke(json!({"step": "postprocess", "analysisId": "m2"}))
        .unwrap_err();
    assert_eq!(none["errorType"], "Mzforge.BadInput", "{none}");
    let message = none["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("no input could be analysed (1 failed)") && message.contains("bad8.mzML"),
        "{message}"
    );
    // The file is named once (the cause already begins with it).
    assert_eq!(message.matches("bad8.mzML").count(), 1, "{message}");
    assert!(moto.get("results", "analyses/m2/summary.json").is_none());
}

/// A plate per folder, a well per file: inputs of one name get results of their own (`A1`,
/// `A1-2`, in input order), each holding its own input's tables; an object named twice (itself
/// and a prefix holding it) is analysed once.
#[test]
fn lambda_analysis_gives_same_named_inputs_results_of_their_own() {
    let (Some(moto), Some(real)) = (moto(), shared("profile/three_test_scans.mzML")) else {
        return;
    };
    moto.bucket("uploads");
    moto.bucket("results");
    moto.put(
        "uploads",
        "plates/plate1/A1.mzML",
        &std::fs::read(&real).unwrap(),
    );
    moto.put("uploads", "plates/plate2/A1.mzML", &fixture_bytes());
    moto.put("uploads", "plates/plate2/a1-2.mzML", &fixture_bytes());
    let request = json!({"inputs": ["plates/plate2/A1.mzML", "plates/"]});
    moto.put(
        "uploads",
        "requests/p1.json",
        request.to_string().as_bytes(),
    );
    let mut lambda = LambdaProcess::start(&moto, None);
    let pre = lambda
        .invoke(json!({"step": "preprocess", "analysisId": "p1",
                       "request": {"bucket": "uploads", "key": "requests/p1.json"}}))
        .expect("preprocess takes inputs of one name");
    validate("preprocess-output.json", std::slice::from_ref(&pre));
    let inputs = pre["inputs"].as_array().unwrap().clone();
    let named: Vec<(&str, &str)> = inputs
        .iter()
        .map(|i| (i["url"].as_str().unwrap(), i["stem"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        [
            ("s3://uploads/plates/plate2/A1.mzML", "A1"),
            ("s3://uploads/plates/plate1/A1.mzML", "A1-3"),
            ("s3://uploads/plates/plate2/a1-2.mzML", "a1-2"),
        ]
    );
    validate(
        "analysis-manifest.json",
        &[moto.json("results", "analyses/p1/analysis.json")],
    );
    for (index, input) in inputs.iter().enumerate() {
        let item = json!({"step": "analyze", "analysisId": "p1", "input": input, "index": index});
        let answer = lambda.invoke(item).expect("analyze");
        assert_eq!(answer["status"], "ok", "{answer}");
    }
    lambda
        .invoke(json!({"step": "postprocess", "analysisId": "p1"}))
        .expect("postprocess");
    let summary = moto.json("results", "analyses/p1/summary.json");
    validate("summary.json", std::slice::from_ref(&summary));
    let outputs: Vec<(&str, &str)> = summary["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["input"].as_str().unwrap(), i["output"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outputs,
        [
            (
                "s3://uploads/plates/plate2/A1.mzML",
                "s3://results/analyses/p1/results/A1"
            ),
            (
                "s3://uploads/plates/plate1/A1.mzML",
                "s3://results/analyses/p1/results/A1-3"
            ),
            (
                "s3://uploads/plates/plate2/a1-2.mzML",
                "s3://results/analyses/p1/results/a1-2"
            ),
        ]
    );
    // Each result is its own input's: the real file has 3 spectra, the simulated one 20.
    for (stem, path, spectra) in [
        ("A1", "s3://uploads/plates/plate2/A1.mzML", 20),
        ("A1-3", "s3://uploads/plates/plate1/A1.mzML", 3),
    ] {
        let run = moto.json("results", &format!("analyses/p1/results/{stem}/run.json"));
        assert_eq!(run["input"]["path"], path, "{run}");
        assert_eq!(run["summary"]["spectra_written"], spectra, "{run}");
        let rows = parquet_rows(
            moto.get(
                "results",
                &format!("analyses/p1/results/{stem}/spectra.parquet"),
            )
            .unwrap(),
        );
        assert_eq!(rows, spectra);
    }
}

/// The preprocess step's answer to `request` (put in the uploads bucket as
/// `requests/<analysis>.json`), checked against its schema.
fn preprocess(moto: &Moto, analysis: &str, request: Value) -> Value {
    let key = format!("requests/{analysis}.json");
    moto.put("uploads", &key, request.to_string().as_bytes());
    let mut lambda = LambdaProcess::start(moto, Some("preprocess"));
    let pre = lambda
        .invoke(json!({"analysisId": analysis, "request": {"bucket": "uploads", "key": key}}))
        .expect("preprocess");
    validate("preprocess-output.json", std::slice::from_ref(&pre));
    pre
}

/// Preprocess's answer becomes the execution's state, which Step Functions caps at 256 KiB
/// (going over fails the execution past any Catch): an analysis of a thousand inputs goes to
/// Batch with an answer that fits, and the inputs in analysis.json.
#[test]
fn preprocess_answers_fit_the_state_however_many_inputs() {
    let Some(moto) = moto() else { return };
    moto.bucket("uploads");
    moto.bucket("results");
    let mgf = b"BEGIN IONS\nTITLE=s1\nPEPMASS=500.25\nCHARGE=2+\n100.1 10\n200.2 20\nEND IONS\n";
    let count = 1000;
    for i in 0..count {
        let key = format!(
            "study-2026-12/instrument-qexactive-hf-x/plate-07/sample_{i:04}_replicate_1.mgf"
        );
        moto.put("uploads", &key, mgf);
    }
    let pre = preprocess(&moto, "many", json!({"inputs": ["study-2026-12/"]}));
    assert_eq!(pre["route"], "batch");
    assert_eq!(pre["inputCount"], count);
    let size = pre.to_string().len();
    assert!(size < 256 * 1024, "preprocess answered {size} bytes");
    let manifest = moto.json("results", "analyses/many/analysis.json");
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), count);
}

/// An input with a spectrum that cannot be read is readable: preprocess counts it and sends
/// it on (the run skips and reports that spectrum), as it does one whose arrays are corrupt.
#[test]
fn preprocess_takes_an_input_with_an_unreadable_spectrum() {
    let (Some(moto), Some(mgf)) = (moto(), shared("mgf/small.mgf")) else {
        return;
    };
    moto.bucket("uploads");
    moto.bucket("results");
    let text = std::fs::read_to_string(&mgf).unwrap();
    let entries = text.matches("BEGIN IONS").count();
    let broken = text.replacen("PEPMASS=", "PEPMASS=abc ", 1);
    moto.put("uploads", "odd/small.mgf", broken.as_bytes());
    let pre = preprocess(&moto, "odd", json!({"inputs": ["odd/small.mgf"]}));
    assert_eq!(pre["inputCount"], 1, "{pre}");
    assert_eq!(pre["inputs"][0]["scan"], "full", "{pre}");
    assert_eq!(pre["inputs"][0]["spectra"], entries, "{pre}");
}

#[test]
fn lambda_refuses_up_front_what_cannot_finish_and_starts_fast() {
    let (Some(moto), Some(bsa)) = (moto(), shared("runs/BSA1.mzML")) else {
        return;
    };
    moto.bucket("uploads");
    moto.bucket("results");
    moto.put("uploads", "big/BSA1.mzML", &std::fs::read(&bsa).unwrap());
    // A throughput so low that 13 MB cannot finish in the 120 s the runtime API grants.
    let request = json!({"inputs": ["big/BSA1.mzML"], "routing": {"lambdaBytesPerSecond": 1000}});
    moto.put(
        "uploads",
        "requests/big.json",
        request.to_string().as_bytes(),
    );

    let mut pre_fn = LambdaProcess::start(&moto, Some("preprocess"));
    let first_poll = pre_fn
        .api
        .first_poll
        .recv_timeout(Duration::from_secs(30))
        .unwrap();
    let cold_start = first_poll - pre_fn.spawned;
    let pre = pre_fn
        .invoke(json!({"analysisId": "big", "request": {"bucket": "uploads", "key": "requests/big.json"}}))
        .expect("preprocess");
    assert_eq!(pre["inputs"][0]["spectra"], 1684);

    let mut analyze_fn = LambdaProcess::start(&moto, Some("analyze"));
    let refused = analyze_fn
        .invoke(json!({"analysisId": "big", "input": pre["inputs"][0], "index": 0}))
        .unwrap_err();
    assert_eq!(
        refused["errorType"], "Mzforge.TooLargeForLambda",
        "{refused}"
    );
    assert!(moto.keys("results", "analyses/big/results").is_empty());
    eprintln!("cold start (spawn to first /next poll, debug build): {cold_start:?}");
    assert!(
        cold_start < Duration::from_secs(2),
        "cold start {cold_start:?}"
    );
}

// ---- fault injection -----------------------------------------------------------------------

/// What the proxy does to one connection.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Forward untouched.
    Pass,
    /// Wait this long before forwarding anything.
    Delay(Duration),
    /// Close both sides after this many bytes of the server's answer.
    CutResponseAfter(usize),
    /// Close both sides after this many bytes of the client's request.
    CutRequestAfter(usize),
    /// Flip the bits of the server's answer's byte at this offset (status line and headers
    /// for small offsets).
    CorruptResponseAt(usize),
}

/// A planned fault: for the next connection whose first request uses `method` (any method
/// when `None`).
type Planned = (Option<&'static str>, Fault);

/// A TCP proxy in front of moto: connections suffer the planned faults in order (each fault
/// on the next connection whose first request matches); the others pass.
struct FaultProxy {
    port: u16,
    plan: Arc<Mutex<VecDeque<Planned>>>,
    connections: Arc<AtomicUsize>,
}

impl FaultProxy {
    fn start(target: u16, plan: Vec<Planned>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let plan = Arc::new(Mutex::new(VecDeque::from(plan)));
        let connections = Arc::new(AtomicUsize::new(0));
        let (queue, count) = (plan.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let queue = queue.clone();
                std::thread::spawn(move || relay(client, target, &queue));
            }
        });
        FaultProxy {
            port,
            plan,
            connections,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn plan(&self, faults: Vec<Planned>) {
        *self.plan.lock().unwrap() = VecDeque::from(faults);
    }

    fn faults_left(&self) -> usize {
        self.plan.lock().unwrap().len()
    }
}

fn relay(mut client: TcpStream, target: u16, plan: &Mutex<VecDeque<Planned>>) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    // The first bytes of the request tell its method; they count towards a request cut.
    let mut head = vec![0u8; 8];
    let n = client.read(&mut head).unwrap_or(0);
    head.truncate(n);
    let fault = {
        let mut plan = plan.lock().unwrap();
        let matches = plan
            .front()
            .is_some_and(|(method, _)| method.is_none_or(|m| head.starts_with(m.as_bytes())));
        if matches {
            plan.pop_front().map_or(Fault::Pass, |(_, fault)| fault)
        } else {
            Fault::Pass
        }
    };
    if server.write_all(&head).is_err() {
        return;
    }
    if let Fault::Delay(d) = fault {
        std::thread::sleep(d);
    }
    let (request_limit, response_limit, corrupt) = match fault {
        Fault::CutRequestAfter(n) => (Some(n.saturating_sub(head.len()).max(1)), None, None),
        Fault::CutResponseAfter(n) => (None, Some(n), None),
        Fault::CorruptResponseAt(n) => (None, None, Some(n)),
        Fault::Pass | Fault::Delay(_) => (None, None, None),
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upstream = std::thread::spawn(move || pump(c2, s2, request_limit, None));
    pump(server, client, response_limit, corrupt);
    let _ = upstream.join();
}

/// Copies `from` to `to` until EOF, or until `limit` bytes, then closes both sockets.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<usize>, corrupt: Option<usize>) {
    let mut buffer = [0u8; 16 * 1024];
    let mut done = 0usize;
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &mut buffer[..n];
        if let Some(at) = corrupt {
            if (done..done + n).contains(&at) {
                chunk[at - done] ^= 0xff;
            }
        }
        if let Some(limit) = limit {
            if done + n >= limit {
                chunk = &mut chunk[..limit - done];
                let _ = to.write_all(chunk);
                break;
            }
        }
        if to.write_all(chunk).is_err() {
            break;
        }
        done += n;
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// The tables of a result, by file name.
fn tables_at(moto: &Moto, bucket: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    moto.keys(bucket, prefix)
        .into_iter()
        .filter(|k| k.ends_with(".parquet"))
        .map(|k| {
            let body = moto.get(bucket, &k).unwrap();
            (k.rsplit('/').next().unwrap().to_string(), body)
        })
        .collect()
}

/// Downloads and multipart uploads through a proxy that delays, cuts and corrupts
/// connections: each run either succeeds with exactly the result of a clean run or fails
/// cleanly (non-zero exit, no manifest, so no visible result); re-runs converge to the clean
/// result.
#[test]
fn faulty_connections_retry_or_fail_cleanly_and_reruns_converge() {
    let Some(bsa) = shared("runs/BSA1.mzML") else {
        return;
    };
    let Some(moto) = moto() else { return };
    moto.bucket("inputs");
    moto.bucket("outputs");
    // The object says what its bytes are, so a body damaged on the way is caught.
    moto.put_with_sha256("inputs", "BSA1.mzML", &std::fs::read(&bsa).unwrap());
    let clean = mzforge(
        &moto,
        &[
            "run",
            "s3://inputs/BSA1.mzML",
            "--out",
            "s3://outputs/clean/",
            "-q",
        ],
        &[],
    );
    assert!(clean.status.success(), "{}", text(&clean));
    let reference = tables_at(&moto, "outputs", "clean/BSA1/");
    assert_eq!(reference.len(), 3, "{reference:?}");

    let proxy = FaultProxy::start(moto.port, Vec::new());
    let endpoint = proxy.endpoint();
    let through_proxy = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let ms = Duration::from_millis;
    let get = Some("GET");
    let put = Some("PUT");
    let plans: [(&str, Vec<Planned>); 6] = [
        (
            "download cut",
            vec![
                (get, Fault::CutResponseAfter(200_000)),
                (get, Fault::CutResponseAfter(1_000_000)),
                (get, Fault::CutResponseAfter(1_500_000)),
            ],
        ),
        (
            "corrupt answers",
            vec![
                (get, Fault::CorruptResponseAt(5)),
                (None, Fault::CorruptResponseAt(40)),
            ],
        ),
        (
            "damaged bodies",
            vec![
                // Each GET is a range of at most 2 MiB on its own connection (the first GET
                // of a run may be the result manifest's, a short 404).
                (get, Fault::CorruptResponseAt(150_000)),
                (get, Fault::CorruptResponseAt(150_000)),
                (get, Fault::CorruptResponseAt(1_500_000)),
            ],
        ),
        ("slow", vec![(None, Fault::Delay(ms(300))); 4]),
        (
            "upload cut",
            vec![
                (put, Fault::CutRequestAfter(100_000)),
                (put, Fault::CutRequestAfter(100_000)),
                (put, Fault::CutRequestAfter(1_000)),
            ],
        ),
        (
            "upload answers lost",
            vec![
                (put, Fault::CutResponseAfter(10)),
                (Some("POST"), Fault::CutResponseAfter(10)),
                (put, Fault::CorruptResponseAt(3)),
            ],
        ),
    ];
    for (round, (name, plan)) in plans.into_iter().enumerate() {
        let prefix = format!("faulty{round}/");
        proxy.plan(plan);
        let out = format!("s3://outputs/{prefix}");
        let first = mzforge(
            &moto,
            &["run", "s3://inputs/BSA1.mzML", "--out", &out, "-q"],
            &through_proxy,
        );
        let manifest = format!("{prefix}BSA1/manifest.json");
        if first.status.success() {
            assert_eq!(
                tables_at(&moto, "outputs", &format!("{prefix}BSA1/")),
                reference,
                "{name}: a successful run must give the clean result"
            );
        } else {
            // Network faults are transient: exit 75 tells Batch and the caller to retry.
            assert_eq!(first.status.code(), Some(75), "{name}: {}", text(&first));
            assert!(
                moto.get("outputs", &manifest).is_none(),
                "{name}: a failed run left a visible result"
            );
            assert!(!text(&first).contains("panicked"), "{}", text(&first));
        }
        // Whatever happened, the re-run (faults used up or cleared) converges.
        let unused = proxy.faults_left();
        proxy.plan(Vec::new());
        let again = mzforge(
            &moto,
            &["run", "s3://inputs/BSA1.mzML", "--out", &out, "-q"],
            &through_proxy,
        );
        assert!(again.status.success(), "{name}: {}", text(&again));
        assert!(moto.get("outputs", &manifest).is_some());
        assert_eq!(
            tables_at(&moto, "outputs", &format!("{prefix}BSA1/")),
            reference,
            "{name}: the re-run must converge to the clean result"
        );
        eprintln!(
            "{name}: first run {} ({} connections so far, {} faults unused)",
            if first.status.success() {
                "succeeded".to_string()
            } else {
                format!(
                    "failed cleanly ({:?}: {})",
                    first.status.code(),
                    text(&first).lines().last().unwrap_or_default()
                )
            },
            proxy.connections.load(Ordering::SeqCst),
            unused
        );
    }
}

/// A download that keeps breaking but progresses every time is read to its end: object_store
/// cuts every GET at its 30 s request timeout, so a long input processed from S3 sees many
/// breaks in all. Only breaks in a row without progress give up. Here each connection is cut
/// after 12 kB, some 40 times for the fixture: more than object_store's retries (6 per GET)
/// and the download's resumes (4) allow in all.
#[test]
fn downloads_that_keep_progressing_are_read_to_the_end() {
    let Some(moto) = moto() else { return };
    moto.bucket("inputs-p");
    moto.bucket("outputs-p");
    moto.put("inputs-p", "cut.mzML", &fixture_bytes());
    let cuts = vec![(Some("GET"), Fault::CutResponseAfter(12_000)); 60];
    let proxy = FaultProxy::start(moto.port, cuts);
    let endpoint = proxy.endpoint();
    let run = mzforge(
        &moto,
        &[
            "run",
            "s3://inputs-p/cut.mzML",
            "--out",
            "s3://outputs-p/",
            "-q",
        ],
        &[("AWS_ENDPOINT_URL", endpoint.as_str())],
    );
    let used = 60 - proxy.faults_left();
    assert!(used > 35, "only {used} connections were cut");
    assert!(run.status.success(), "{used} cuts: {}", text(&run));
    let manifest = moto.json("outputs-p", "cut/manifest.json");
    assert_eq!(manifest["input"]["sha256"], sha256_hex(&fixture_bytes()));
}

// ---- sustained load --------------------------------------------------------------------------

/// Resident set size of a live process, from `/proc/<pid>/status`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One `mzforge run` process over many inputs, s3 → s3 on loopback: memory stays flat from
/// input to input (what the first inputs needed is enough for the last ones), and every input
/// gets its whole result, identical to the others' (the inputs are copies of one file).
/// `MZFORGE_SUSTAINED_INPUTS` sets how many (default 16).
#[test]
fn sustained_s3_runs_keep_memory_flat_and_lose_nothing() {
    let Some(bsa) = shared("runs/BSA1.mzML") else {
        return;
    };
    let Some(moto) = moto() else { return };
    let inputs: usize = std::env::var("MZFORGE_SUSTAINED_INPUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16);
    moto.bucket("inputs");
    moto.bucket("outputs");
    let body = std::fs::read(&bsa).unwrap();
    for i in 0..inputs {
        moto.put("inputs", &format!("many/BSA1_{i:03}.mzML"), &body);
    }

    let mut command = Command::new(env!("CARGO_BIN_EXE_mzforge"));
    command
        .args([
            "run",
            "s3://inputs/many/",
            "--out",
            "s3://outputs/many/",
            "-q",
            "--json",
        ])
        .env_remove("AWS_PROFILE")
        .envs(moto.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = command.spawn().expect("run mzforge");
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        while done_rx.try_recv().is_err() {
            if let Some(kib) = rss_kib(pid) {
                samples.push((started.elapsed(), kib));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        samples
    });
    // Both pipes drained together: reading one to the end first could block on the other.
    let output = child.wait_with_output().unwrap();
    let (status, stdout, stderr) = (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    let elapsed = started.elapsed();
    done_tx.send(()).unwrap();
    let samples = sampler.join().unwrap();
    assert!(status.success(), "{stderr}");

    // Nothing lost: one "ok" line and one complete result per input, all equal.
    let done: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(done.len(), inputs, "{stdout}");
    assert!(done.iter().all(|d| d["status"] == "ok"), "{stdout}");
    let first = tables_at(&moto, "outputs", "many/BSA1_000/");
    assert_eq!(first.len(), 3);
    for i in 0..inputs {
        let prefix = format!("many/BSA1_{i:03}/");
        assert!(
            moto.get("outputs", &format!("{prefix}manifest.json"))
                .is_some(),
            "{prefix}"
        );
        assert_eq!(tables_at(&moto, "outputs", &prefix), first, "{prefix}");
    }

    // Flat memory: the last half of the run needs no more than the first quarter did.
    assert!(samples.len() >= 8, "{} RSS samples", samples.len());
    let peak_in = |from: f64, to: f64| {
        samples
            .iter()
            .filter(|(t, _)| {
                let at = t.as_secs_f64() / elapsed.as_secs_f64();
                at >= from && at < to
            })
            .map(|&(_, kib)| kib)
            .max()
            .unwrap_or(0)
    };
    let (early, late) = (peak_in(0.0, 0.25), peak_in(0.5, 1.0));
    let peak = samples.iter().map(|&(_, kib)| kib).max().unwrap_or(0);
    eprintln!(
        "sustained: {inputs} inputs of {} MB s3 -> s3 in {:.1} s; RSS peak first quarter {} MiB, \
         last half {} MiB, whole run {} MiB, {} samples",
        body.len() / 1_000_000,
        elapsed.as_secs_f64(),
        early / 1024,
        late / 1024,
        peak / 1024,
        samples.len()
    );
    assert!(
        late <= early + early / 5,
        "memory grew: {early} KiB in the first quarter, {late} KiB in the last half"
    );
}
