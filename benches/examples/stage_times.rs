//! Where one thread's time goes per stage of the pipeline on one file (no deconvolution):
//! find, parse, decode, classify, signal-to-noise / centroiding. Each stage is timed over the
//! whole file with the previous stages' results kept in memory, best of `repeat` passes.
//!
//! ```text
//! cargo run --release -p mzforge-benches --example stage_times -- FILE.mzML [REPEAT]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use mzforge::signal::decide_signal_kind;
use mzforge::{
    CentroidParams, Centroider, PeakList, Pipeline, PipelineParams, SignalKind, SpectrumReader,
};

fn best<T>(repeat: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let out = f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        last = Some(out);
    }
    (best, last.expect("repeat > 0"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().expect("usage: stage_times FILE [REPEAT]"));
    let repeat: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(5);
    // THREADS=2 times the pipeline on two threads only (for `perf stat` of one setting).
    let threads_to_run: Vec<usize> = match std::env::var("THREADS") {
        _ if std::env::var_os("SKIP_PIPELINE").is_some() => vec![],
        Ok(n) => vec![n.parse().expect("THREADS is a number")],
        Err(_) => vec![1, 2],
    };
    for &threads in &threads_to_run {
        let mut params = PipelineParams {
            threads,
            ..Default::default()
        };
        if let Some(size) = std::env::var("BATCH_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            params.batch_size = size;
        }
        params.deconvolve.enabled = false;
        let pipeline = Pipeline::new(params).expect("valid");
        let (t, n) = best(repeat, || {
            let mut n = 0;
            pipeline
                .run_path(&path, &mut |done| {
                    n += done.len();
                    Ok(())
                })
                .expect("runs");
            n
        });
        println!("pipeline {threads} thread(s): {t:.2} ms ({n} spectra)");
    }
    if std::env::var_os("PIPELINE_ONLY").is_some() {
        return;
    }
    if std::env::var_os("PARSE_ONLY").is_some() {
        let (t, n) = best(repeat, || {
            let mut reader = SpectrumReader::open(&path).expect("opens");
            let mut n = 0;
            while let Some(u) = reader.next_unparsed().expect("finds") {
                n += u.parse().expect("parses").index() as usize;
            }
            n
        });
        println!("find + parse {t:.2} ms ({n})");
        return;
    }
    let find = || {
        let mut reader = SpectrumReader::open(&path).expect("opens");
        let mut found = Vec::new();
        while let Some(u) = reader.next_unparsed().expect("finds") {
            found.push(u);
        }
        found
    };
    let (t_find, _) = best(repeat, find);
    let (t_parse, raws) = best(repeat, || {
        find()
            .into_iter()
            .map(|u| u.parse().expect("parses"))
            .collect::<Vec<_>>()
    });
    let t_parse = t_parse - t_find;
    let (t_decode, spectra) = best(repeat, || {
        raws.iter()
            .map(|r| r.decode(&path).expect("decodes").0)
            .collect::<Vec<_>>()
    });
    let mut scratch = Vec::new();
    let (t_classify, kinds) = best(repeat, || {
        spectra
            .iter()
            .map(|s| {
                decide_signal_kind(s.meta.declared_signal, &s.mz, &s.intensity, &mut scratch).0
            })
            .collect::<Vec<_>>()
    });
    let mut centroider = Centroider::new(CentroidParams::default());
    let (t_peaks, peaks) = best(repeat, || {
        let mut n = 0;
        for (s, kind) in spectra.iter().zip(&kinds) {
            // The pipeline's pass-through takes the decoded arrays; here they are copies.
            let out = match kind {
                SignalKind::Profile => {
                    let mut out = PeakList::default();
                    centroider.centroid_into(&s.mz, &s.intensity, &mut out);
                    out
                }
                SignalKind::Centroid => {
                    centroider.filter_centroids(s.mz.clone(), s.intensity.clone())
                }
            };
            n += out.len();
        }
        n
    });
    let noise_params = mzforge::NoiseParams::default();
    let (t_noise, _) = best(repeat, || {
        spectra
            .iter()
            .map(|s| mzforge::noise::estimate_noise(&noise_params, &s.mz, &s.intensity).len())
            .sum::<usize>()
    });
    println!("of which noise {t_noise:.2} ms");
    if std::env::var_os("NOISE_ONLY").is_some() {
        return;
    }
    let points: usize = spectra.iter().map(|s| s.mz.len()).sum();
    println!(
        "{}: {} spectra, {} points, {} peaks\nfind {t_find:.2} ms\nparse {t_parse:.2} ms\ndecode {t_decode:.2} ms\nclassify {t_classify:.2} ms\npeaks {t_peaks:.2} ms",
        path.display(),
        spectra.len(),
        points,
        peaks
    );
}
