#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets in fuzz/corpus/<target>/ (git-ignored).

The real files come from ../shared/data (or $MZFORGE_DATA) and are copied or cut, never
committed. Inputs made here from them are small (libFuzzer's default max_len is the largest
seed), and the random ones are seeded, so two runs make the same corpus.

    python3 fuzz/seed.py            # all targets
"""
import gzip
import os
import random
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("MZFORGE_DATA", HERE.parent.parent / "shared" / "data"))
CORPUS = HERE / "corpus"
MAX_SEED = 64 * 1024


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def head_of_mzml(path, limit):
    """The first `limit` bytes, cut after a spectrum's end tag when there is one, then closed,
    so the seed is a well-formed short document."""
    data = path.read_bytes()
    if len(data) <= limit:
        return data
    cut = data.rfind(b"</spectrum>", 0, limit)
    if cut < 0:
        return data[:limit]
    return data[: cut + len(b"</spectrum>")] + b"\n</spectrumList></run></mzML>\n"


def read_seeds():
    small = [
        "edge/FileFilter_39_input_corrupt.mzML",
        "edge/IndexedmzMLFile_2_broken.mzML",
        "edge/MzMLFile_2_minimal.mzML",
        "edge/MzMLFile_3_invalid.mzML",
        "edge/MzMLFile_6_uncompresscor.MzML.gz",
        "edge/MzMLFile_6_uncompressedcorrupt.mzML.gz",
        "edge/empty_XML.mzML",
        "edge/tiny.pwiz.1.1.mzML",
        "edge/noPrecursorScans.mzML",
        "encodings/MzMLFile_6_compressed.mzML",
        "encodings/MzMLFile_6_uncompressed.mzML",
        "encodings/MzMLFile_6_uncompressed.mzML.gz",
    ]
    for rel in small:
        src = DATA / rel
        write("read", src.name, src.read_bytes()[:MAX_SEED])
    # Heads of larger files: each encoding and layout once.
    cuts = [
        "runs/BSA1.mzML",
        "encodings/FileFilter_49_output.mzML",  # Numpress linear/pic/slof
        "encodings/MzValues_Zlib+Numpress.mzML",
        "encodings/SmallCalibratibleYeast_mixed_bits.mzml",
        "runs/GNPSExport_mzml1.mzML",
        "runs/MS3_nonHierarchical.mzML",
        "profile/profile_single_spectrum.mzML",
        "edge/1min.mzML",
        "edge/example.mzML",
        "edge/emptyScan.mzML",
        "edge/mzML_with_UV.mzML",
        "deconvolution/Averaged_221110_UbiqOnly.mzML",
    ]
    for rel in cuts:
        src = DATA / rel
        head = head_of_mzml(src, MAX_SEED)
        write("read", "head-" + src.name, head)
    write("read", "head-BSA1.mzML.gz", gzip.compress(head_of_mzml(DATA / "runs/BSA1.mzML", MAX_SEED), mtime=0))
    for rel in ["mgf/small.mgf", "mgf/SmallCalibratibleYeast.mgf"]:
        text = (DATA / rel).read_bytes()
        blocks = text.split(b"END IONS")
        write("read", "head-" + Path(rel).name, b"END IONS".join(blocks[:3]) + b"END IONS\n")
    # Forms the formats allow that mzdata alone does not read (mended in core/src/io/):
    # MGF charge lists and retention time ranges, mzML parameters with end tags and base64 in
    # lines.
    yeast = (DATA / "mgf/SmallCalibratibleYeast.mgf").read_bytes()
    head = b"END IONS".join(yeast.split(b"END IONS")[:3]) + b"END IONS\n"
    write("read", "head-charge-lists.mgf", re.sub(rb"CHARGE=(\d)\+", rb"CHARGE=\1+ and 3+", head))
    write("read", "head-rt-ranges.mgf", re.sub(rb"RTINSECONDS=([0-9.]+)", rb"RTINSECONDS=\1-\1", head))
    bsa = head_of_mzml(DATA / "runs/BSA1.mzML", MAX_SEED // 2)
    end_tags = re.sub(rb"<(cvParam|userParam|referenceableParamGroupRef)\b([^>]*?)\s*/>", rb"<\1\2></\1>", bsa)
    write("read", "head-end-tags.mzML", end_tags)
    wrapped = re.sub(
        rb"<binary>([^<]*)</binary>",
        lambda m: b"<binary>" + b"\n".join(m.group(1)[i : i + 76] for i in range(0, len(m.group(1)), 76)) + b"</binary>",
        bsa,
    )
    write("read", "head-base64-lines.mzML", wrapped)
    # A spectrum that cannot be read among readable ones (skipped, reading goes on), in mzML
    # and MGF, and MGF entries without END IONS.
    write("read", "head-unreadable-spectrum.mzML", re.sub(rb"<scan ", rb"<scan broken ", bsa, count=1))
    entries = head.split(b"END IONS")
    write("read", "head-unreadable-entry.mgf", re.sub(rb"PEPMASS=[^\n]*", b"PEPMASS=abc", head, count=1))
    write("read", "head-latin1.mgf", head.replace(b"TITLE=", b"TITLE=\xb5M ", 2))
    write("read", "head-without-end-ions.mgf", entries[0] + b"\n" + b"END IONS".join(entries[1:]).rstrip().removesuffix(b"END IONS"))
    # Every line indented (mzdata reads lines trimmed), a comment inside an entry, the first
    # entry without its END IONS.
    indented = re.sub(rb"(?m)^(?=.)", b"  ", entries[0] + b"  # note\n" + b"END IONS".join(entries[1:]))
    write("read", "head-indented.mgf", indented)


def profile_scan():
    """m/z and intensity of one real profile scan (profile/test_scan.csv)."""
    mz, intensity = [], []
    for line in (DATA / "profile/test_scan.csv").read_text().splitlines():
        if "," not in line:
            continue
        a, b = line.split(",")[:2]
        mz.append(float(a))
        intensity.append(float(b))
    return mz, intensity


def kernel_seeds(mz, intensity):
    rng = random.Random(10)
    for start in range(0, 16384, 4096):
        ys = intensity[start : start + 4096]
        write("kernels", f"raw-f32-{start}", b"\x00" + struct.pack(f"<{len(ys)}f", *ys))
        # odd mode: min_snr, max_missing, start (u16), then (step u16, intensity u16) records
        out = bytearray(b"\x01\x00\x01")
        out += struct.pack("<H", int((mz[start] - 100) / 0.1) & 0xFFFF)
        top = max(ys) or 1.0
        for k in range(1, len(ys)):
            step = int(round((mz[start + k] - mz[start + k - 1]) / 1e-5)) - 1
            out += struct.pack("<HH", max(0, min(step, 0xFFFF)), int(ys[k] / top * 65535))
        write("kernels", f"profile-{start}", bytes(out))
    specials = [0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e-45, 3.4e38, 1.0, 2.0]
    for i in range(8):
        ys = [rng.choice(specials) if rng.random() < 0.2 else rng.random() for _ in range(rng.randrange(3, 300))]
        write("kernels", f"specials-{i}", b"\x00" + struct.pack(f"<{len(ys)}f", *ys))


def deconvolve_seeds():
    """Synthetic envelopes (averagine-like spacing 1.00235/z) at several charges, with noise."""
    rng = random.Random(11)
    for case in range(12):
        z = rng.randrange(1, 30)
        peaks = []
        for _ in range(rng.randrange(1, 4)):
            mono = rng.uniform(400, 3000) if z < 10 else rng.uniform(5000, 30000)
            zz = max(1, z + rng.randrange(-2, 3))
            n = 4 + int(mono / 2000)
            for k in range(min(n, 25)):
                peaks.append(((mono + k * 1.00235) / zz + 1.00728, 1000 * (1 + k) * (0.7 ** k)))
        for _ in range(rng.randrange(0, 30)):
            peaks.append((rng.uniform(100, 2000), rng.uniform(1, 500)))
        peaks.sort()
        start = peaks[0][0] - 0.01
        head = bytes([0, 60, 2 * (case % 2), 36, 1]) + struct.pack("<H", max(0, min(int((start - 50) / 0.05), 0xFFFF)))
        at = 50 + int((start - 50) / 0.05) * 0.05
        out = bytearray(head)
        for m, i in peaks:
            step = max(0, min(int(round((m - at) / 1e-4)) - 1, 0xFFFF))
            at += (step + 1) * 1e-4
            out += struct.pack("<HH", step, min(int(i / 16), 0xFFFF))
        write("deconvolve", f"envelopes-{case}", bytes(out))


def parquet_seeds():
    rng = random.Random(12)
    for case in range(8):
        params = b'{"threads":0}'
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(16, 2048)))
        write("parquet_roundtrip", f"random-{case}", bytes([len(params)]) + params + bytes([case]) + body)


def event_seeds():
    events = {
        "request.json": b'{"inputs": ["raw/BSA1.mzML", "s3://b/prefix/"], "params": {"ms_levels": [1], "centroid": {"min_snr": 3}}, "mzml": true, "routing": {"lambdaMaxBytes": 1000}}',
        "request-bad-params.json": b'{"inputs": ["a.mzML"], "params": {"batch_size": 0}}',
        "input.json": b'{"index": 0, "url": "s3://b/k.mzML", "bytes": 12, "eTag": null, "stem": "k", "format": "mzml", "gzip": false, "scan": "full", "spectra": 3, "spectraPerLevel": {"1": 3}, "profileSpectra": 3, "centroidSpectra": 0, "declaredSpectra": 3}',
        "routing.json": b'{"lambdaMaxBytes": 1, "lambdaMaxSpectra": 2, "lambdaMaxInputs": 3, "scanMaxBytes": 4, "lambdaBytesPerSecond": 5}',
        "params.json": b'{"ms_levels": [1, 2], "signal": "auto", "on_bad_spectrum": "fail", "threads": 2, "batch_size": 8, "centroid": {"min_snr": 1.5, "noise": {"window_mz": 100}}, "deconvolve": {"charge_max": 30, "model": "glycan"}}',
        "params.toml": b'ms_levels = [1]\nsignal = "profile"\n[centroid]\nmin_snr = 2.0\n[deconvolve]\nenabled = false\ncharge_min = 2\n',
        "step": b"record-failure",
        "id": b"analysis-2024_01",
    }
    for name, data in events.items():
        write("events", name, data)
    schemas = HERE.parent / "batch-runner" / "schemas"
    for schema in sorted(schemas.glob("*.json")):
        write("events", "schema-" + schema.name, schema.read_bytes()[:MAX_SEED])


def main():
    if not DATA.is_dir():
        sys.exit(f"seed.py: no data folder at {DATA} (set MZFORGE_DATA)")
    read_seeds()
    mz, intensity = profile_scan()
    kernel_seeds(mz, intensity)
    deconvolve_seeds()
    parquet_seeds()
    event_seeds()
    for target in sorted(p.name for p in CORPUS.iterdir()):
        files = list((CORPUS / target).iterdir())
        print(f"{target}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
