//! Reading + decoding every spectrum of a file, one thread: mzforge (`SpectrumReader` +
//! `RawSpectrum::decode`) against plain mzdata (`MzMLReader`, eager decoding).
//!
//! Files: `runs/BSA1.mzML` (uncompressed arrays; also timed: its first steps alone), and `encodings/FileFilter_49_output.mzML`, the same 100
//! spectra as `FileFilter_49_input.mzML` (zlib) re-encoded with MS-Numpress linear, PIC and
//! SLOF. mzdata 0.68 cannot decode Numpress PIC (its eager reader yields no spectrum there), so
//! its baseline for that pair is the zlib twin; if a later mzdata reads the Numpress file, it
//! is benched on it too.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use mzforge_benches::{data_file, mzdata_decode_all, mzforge_decode_all, mzforge_find_all};

type Reader = fn(&Path) -> (usize, usize);

fn bench(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    read: Reader,
    path: &Path,
) {
    let expected = read(path);
    assert!(expected.0 > 0 && expected.1 > 0, "{name}: nothing was read");
    group.bench_function(name, |b| {
        b.iter(|| assert_eq!(read(black_box(path)), expected))
    });
}

fn decode(c: &mut Criterion) {
    if let Some(bsa) = data_file("runs/BSA1.mzML") {
        // Both readers must see the same spectra and points, or the comparison is void.
        assert_eq!(
            mzforge_decode_all(&bsa),
            mzdata_decode_all(&bsa),
            "BSA1: counts differ"
        );
        let mut group = c.benchmark_group("decode/BSA1");
        group.sample_size(10);
        group.throughput(Throughput::Bytes(file_size(&bsa)));
        bench(&mut group, "mzforge", mzforge_decode_all, &bsa);
        // Its steps: finding the spectra (the reader thread's share in a pipeline run), and
        // finding + parsing (decoding is the rest).
        let spectra = mzforge_decode_all(&bsa).0;
        for (name, parse) in [("mzforge-find", false), ("mzforge-find-parse", true)] {
            group.bench_function(name, |b| {
                b.iter(|| assert_eq!(mzforge_find_all(black_box(&bsa), parse), spectra))
            });
        }
        bench(&mut group, "mzdata", mzdata_decode_all, &bsa);
        group.finish();
    }

    let (Some(numpress), Some(zlib)) = (
        data_file("encodings/FileFilter_49_output.mzML"),
        data_file("encodings/FileFilter_49_input.mzML"),
    ) else {
        return;
    };
    let ours = mzforge_decode_all(&numpress);
    assert_eq!(
        ours,
        mzforge_decode_all(&zlib),
        "FileFilter_49: encodings differ"
    );
    assert_eq!(
        ours,
        mzdata_decode_all(&zlib),
        "FileFilter_49: mzdata (zlib) differs"
    );
    let mzdata_reads_numpress = mzdata_decode_all(&numpress) == ours;
    if !mzdata_reads_numpress {
        eprintln!("decode/FileFilter_49: mzdata cannot decode the Numpress file; baseline is zlib");
    }
    let mut group = c.benchmark_group("decode/FileFilter_49");
    group.throughput(Throughput::Elements(ours.0 as u64));
    bench(
        &mut group,
        "mzforge-numpress",
        mzforge_decode_all,
        &numpress,
    );
    bench(&mut group, "mzforge-zlib", mzforge_decode_all, &zlib);
    bench(&mut group, "mzdata-zlib", mzdata_decode_all, &zlib);
    if mzdata_reads_numpress {
        bench(&mut group, "mzdata-numpress", mzdata_decode_all, &numpress);
    }
    group.finish();
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

criterion_group!(benches, decode);
criterion_main!(benches);
