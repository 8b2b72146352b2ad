//! Deconvolution accuracy against references: mzLib's intact-protein table, FLASHDeconv, the
//! instruments' own precursor charges, and the simulator's known envelopes.

use std::path::Path;

use mzforge::deconvolve::DeconvolveParams;
use mzforge::isotopes::PROTON_MASS;
use mzforge::{Pipeline, PipelineParams, ProcessedSpectrum};

use crate::common::shared;

fn process(path: &Path, params: PipelineParams) -> Vec<ProcessedSpectrum> {
    let mut out = Vec::new();
    Pipeline::new(params)
        .unwrap()
        .run_path(path, &mut |batch| {
            out.extend_from_slice(batch);
            Ok(())
        })
        .unwrap();
    out
}

fn intact(charge_max: u32) -> PipelineParams {
    PipelineParams {
        deconvolve: DeconvolveParams {
            charge_max,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// mzLib's table lists, per charge, the most abundant observed isotope peak: its m/z
/// (`selected_mz`) and that m/z × z as "mass" (no proton correction). The comparison is made
/// on the m/z; in one row (cytochrome c, z = 20) the mass column is 20 Da off its m/z
/// (12360.6 vs 619.03 × 20 = 12380.6), and the m/z is the observation.
#[test]
fn intact_proteins_most_abundant_isotope_per_charge() {
    let Some(table) = shared("deconvolution/intact_protein_expected.tsv") else {
        return;
    };
    let text = std::fs::read_to_string(&table).unwrap();
    let (mut rows, mut found) = (0, 0);
    let mut results: std::collections::HashMap<String, Vec<ProcessedSpectrum>> = Default::default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (file, charge, expected_mz): (&str, i32, f64) =
            (f[0], f[4].parse().unwrap(), f[5].parse().unwrap());
        let Some(path) = shared(&format!("deconvolution/{file}")) else {
            return;
        };
        let spectra = results
            .entry(file.to_string())
            .or_insert_with(|| process(&path, PipelineParams::default()));
        let envelopes = &spectra[0].deconvolution.as_ref().unwrap().envelopes;
        rows += 1;
        let hit = envelopes.iter().any(|e| {
            let z = e.charge as f64;
            let apex_mz = (e.most_abundant_mass + z * PROTON_MASS) / z;
            e.charge == charge && ((apex_mz - expected_mz) / expected_mz).abs() * 1e6 <= 20.0
        });
        if !hit {
            let near: Vec<String> = envelopes
                .iter()
                .filter(|e| e.charge == charge)
                .map(|e| {
                    format!(
                        "{:.3}",
                        (e.most_abundant_mass + e.charge as f64 * PROTON_MASS) / e.charge as f64
                    )
                })
                .collect();
            eprintln!(
                "missed {file} z={charge} m/z {expected_mz:.3}; ours at z={charge}: {near:?}"
            );
        }
        found += hit as usize;
    }
    eprintln!("intact proteins: {found}/{rows} rows within 20 ppm");
    assert!(found as f64 >= 0.9 * rows as f64, "{found}/{rows}");
}

#[test]
fn flashdeconv_sample_most_intense_mass() {
    let Some(path) = shared("deconvolution/FLASHDeconv_sample_input.mzML") else {
        return;
    };
    let expected = 17989.073405;
    let spectra = process(&path, PipelineParams::default());
    let (mut exact, mut off_by_one) = (0, 0);
    for s in &spectra {
        let envelopes = &s.deconvolution.as_ref().unwrap().envelopes;
        // Masses: envelopes of all charges grouped within 10 ppm (or one isotope apart).
        let mut groups: Vec<(f64, f64)> = Vec::new();
        for e in envelopes {
            match groups
                .iter_mut()
                .find(|(m, _)| ((e.neutral_mass - *m) / *m).abs() < 10e-6)
            {
                Some(g) => g.1 += e.intensity as f64,
                None => groups.push((e.neutral_mass, e.intensity as f64)),
            }
        }
        let (mass, _) = groups
            .iter()
            .cloned()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let ppm = (mass - expected) / expected * 1e6;
        let isotope_error = ((mass - expected) / 1.00235).round();
        eprintln!("spectrum {}: most intense mass {mass:.3} ({ppm:.1} ppm, isotope error {isotope_error})", s.meta.index);
        if ppm.abs() <= 10.0 {
            exact += 1;
        } else if isotope_error.abs() == 1.0 {
            off_by_one += 1;
        }
    }
    eprintln!(
        "FLASHDeconv sample: {exact}/{} exact, {off_by_one} off by one isotope",
        spectra.len()
    );
    assert_eq!(exact, spectra.len());
}

#[test]
fn top_down_ms2_matches_flashdeconv_masses() {
    let (Some(path), Some(reference)) = (
        shared("deconvolution/example_spectrum_aqpz.mzML"),
        shared("deconvolution/reference_aqpz/spec2.tsv"),
    ) else {
        return;
    };
    let text = std::fs::read_to_string(reference).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (mass_col, intensity_col) = (col("MonoisotopicMass"), col("SumIntensity"));
    let mut masses: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[mass_col].parse().unwrap(),
                f[intensity_col].parse().unwrap(),
            )
        })
        .collect();
    masses.sort_by(|a, b| b.1.total_cmp(&a.1));
    masses.truncate(30);
    let spectra = process(&path, intact(30));
    let ours = &spectra[0].deconvolution.as_ref().unwrap().envelopes;
    let found = masses
        .iter()
        .filter(|(m, _)| {
            ours.iter()
                .any(|e| ((e.neutral_mass - m) / m).abs() * 1e6 <= 10.0)
        })
        .count();
    for (m, i) in &masses {
        if !ours
            .iter()
            .any(|e| ((e.neutral_mass - m) / m).abs() * 1e6 <= 10.0)
        {
            let near: Vec<String> = ours
                .iter()
                .filter(|e| (e.neutral_mass - m).abs() < 3.0)
                .map(|e| format!("{:.4} z{} fit {:.2}", e.neutral_mass, e.charge, e.score))
                .collect();
            eprintln!("aqpz missed {m:.4} ({i:.0}); near: {near:?}");
        }
    }
    eprintln!("aqpz top-down: {found}/30 of FLASHDeconv's most intense masses within 10 ppm ({} envelopes)", ours.len());
    assert!(found >= 27, "{found}/30");
}

#[test]
fn precursor_charges_agree_with_the_instrument() {
    for rel in ["runs/BSA1.mzML", "runs/QualityControl_1_in1.mzML.gz"] {
        let Some(path) = shared(rel) else { return };
        let spectra = process(&path, PipelineParams::default());
        let (mut compared, mut agree) = (0, 0);
        for s in spectra.iter().filter(|s| s.meta.ms_level == 2) {
            let (Some(p), Some(check)) = (&s.meta.precursor, &s.precursor_check) else {
                continue;
            };
            if let Some(z) = p.charge {
                compared += 1;
                agree += (z == check.charge) as usize;
            }
        }
        let with_charge = spectra
            .iter()
            .filter(|s| {
                s.meta
                    .precursor
                    .as_ref()
                    .is_some_and(|p| p.charge.is_some())
            })
            .count();
        eprintln!("{rel}: {agree}/{compared} precursor charges agree ({with_charge} recorded)");
        assert!(
            compared as f64 >= 0.8 * with_charge as f64,
            "{compared} of {with_charge} checked"
        );
        assert!(agree as f64 >= 0.9 * compared as f64, "{agree}/{compared}");
    }
}

/// Runs whose MS1 and MSn scans are interleaved in time order, each precursor naming its
/// survey scan (`spectrumRef`).
const INTERLEAVED_RUNS: [&str; 2] = [
    "runs/MS3_nonHierarchical.mzML",
    "runs/171103_PMA_TK_QC_04-4to5min.mzML",
];

/// The text of an mzML file without its scan start times.
fn without_start_times(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|line| !line.contains("name=\"scan start time\""))
        .flat_map(|line| [line, "\n"])
        .collect()
}

/// Without retention times, the survey scan an MSn precursor is checked in is the one read
/// last before it: on interleaved runs with every scan start time taken out, every precursor
/// check is the one made with them. (A run sorted by MS level, as BSA1 is, needs the times
/// or its precursors' `spectrumRef`s, below: BSA1 has neither without its times.)
#[test]
fn precursor_checks_without_retention_times_follow_the_file_order() {
    for rel in INTERLEAVED_RUNS {
        let Some(path) = shared(rel) else {
            return;
        };
        let stripped = without_start_times(&path);
        let dir = tempfile::tempdir().unwrap();
        let without_rt = dir.path().join("without_rt.mzML");
        std::fs::write(&without_rt, stripped).unwrap();

        let with = process(&path, PipelineParams::default());
        let without = process(&without_rt, PipelineParams::default());
        assert!(with.iter().all(|s| s.meta.rt_seconds.is_some()), "{rel}");
        assert!(without.iter().all(|s| s.meta.rt_seconds.is_none()), "{rel}");
        assert_eq!(with.len(), without.len(), "{rel}");
        let checked = with.iter().filter(|s| s.precursor_check.is_some()).count();
        eprintln!("{rel}: {checked} precursors checked");
        assert!(checked >= 50, "{rel}: {checked} precursors checked");
        for (a, b) in with.iter().zip(&without) {
            assert_eq!(a.meta.native_id, b.meta.native_id, "{rel}");
            assert_eq!(
                a.precursor_check, b.precursor_check,
                "{rel}: {}",
                a.meta.native_id
            );
        }
    }
}

/// A run sorted by MS level (every MS1 scan, then every MSn scan) and without times can only
/// be paired through the file's own links: each precursor's `spectrumRef` names the scan it
/// was selected from. With them, on two interleaved runs rewritten that way, every precursor
/// check is the one made on the original run. (Before the links were followed, such a file
/// had its precursors checked in the last survey scans of the run.)
#[test]
fn precursor_checks_of_a_run_sorted_by_level_without_times_follow_spectrum_refs() {
    for rel in INTERLEAVED_RUNS {
        let Some(path) = shared(rel) else {
            return;
        };
        let text = without_start_times(&path);
        // The <spectrum> elements, MS1 first (each group in file order).
        let first = text.find("<spectrum ").unwrap();
        let end = text.rfind("</spectrum>").unwrap() + "</spectrum>".len();
        let mut elements: Vec<&str> = Vec::new();
        let mut at = first;
        while at < end {
            let close = at + text[at..].find("</spectrum>").unwrap() + "</spectrum>".len();
            elements.push(&text[at..close]);
            at = match text[close..end].find("<spectrum ") {
                Some(next) => close + next,
                None => end,
            };
        }
        let ms1 = |e: &str| e.contains("name=\"ms level\" value=\"1\"");
        let (mut sorted, msn): (Vec<&str>, Vec<&str>) = elements.iter().partition(|e| ms1(e));
        sorted.extend(msn);
        assert!(sorted.len() > 100 && sorted != elements, "{rel}");
        let rewritten = format!("{}{}{}", &text[..first], sorted.join("\n"), &text[end..]);
        let dir = tempfile::tempdir().unwrap();
        let by_level = dir.path().join("by_level.mzML");
        std::fs::write(&by_level, rewritten).unwrap();

        let original = process(&path, PipelineParams::default());
        let rewritten = process(&by_level, PipelineParams::default());
        assert!(
            rewritten.iter().all(|s| s.meta.rt_seconds.is_none()),
            "{rel}"
        );
        let check_of = |spectra: &[ProcessedSpectrum]| -> std::collections::HashMap<String, _> {
            spectra
                .iter()
                .map(|s| (s.meta.native_id.clone(), s.precursor_check))
                .collect()
        };
        let (before, after) = (check_of(&original), check_of(&rewritten));
        assert_eq!(before.len(), after.len(), "{rel}");
        let checked = before.values().filter(|c| c.is_some()).count();
        let linked = rewritten
            .iter()
            .filter(|s| {
                s.meta
                    .precursor
                    .as_ref()
                    .is_some_and(|p| p.spectrum_ref.is_some())
            })
            .count();
        eprintln!("{rel}: {checked} precursors checked, {linked} linked by spectrumRef");
        assert!(
            checked >= 50 && linked >= checked,
            "{rel}: {checked}, {linked}"
        );
        for (id, check) in &before {
            assert_eq!(check, &after[id], "{rel}: {id}");
        }
    }
}

/// The simulator's envelopes (charges 1–4, known monoisotopic masses): recall and precision
/// at signal-to-noise 10 and above, masses within 5 ppm.
#[test]
fn simulated_envelopes_are_recovered() {
    use mzforge_fixtures::{data_dir, read_truth_tsv};
    let truth = read_truth_tsv(std::io::BufReader::new(
        std::fs::File::open(data_dir().join("sim_envelopes.truth.tsv")).unwrap(),
    ))
    .unwrap();
    let spectra = process(
        &data_dir().join("sim_envelopes.mzML"),
        PipelineParams::default(),
    );
    // Truth envelopes: (spectrum, charge, mass, SNR of the most intense peak).
    let mut envelopes: std::collections::BTreeMap<usize, (usize, i32, f64, f64)> =
        Default::default();
    for t in &truth {
        let member = t.envelope.unwrap();
        let entry = envelopes.entry(member.envelope_id).or_insert((
            t.spectrum_index,
            member.charge as i32,
            member.neutral_mass,
            0.0,
        ));
        entry.3 = entry.3.max(t.snr());
    }
    let matches = |s: usize, z: i32, m: f64, e: &mzforge::deconvolve::Envelope| {
        e.charge == z
            && ((e.neutral_mass - m) / m).abs() * 1e6 <= 5.0
            && spectra[s].meta.index as usize == s
    };
    let strong: Vec<_> = envelopes.values().filter(|v| v.3 >= 10.0).collect();
    let found = strong
        .iter()
        .filter(|(s, z, m, _)| {
            spectra[*s]
                .deconvolution
                .as_ref()
                .unwrap()
                .envelopes
                .iter()
                .any(|e| matches(*s, *z, *m, e))
        })
        .count();
    // Precision over our envelopes whose most intense peak is 10 noise sigmas above baseline.
    let (mut ours, mut true_positive) = (0, 0);
    for (s, spectrum) in spectra.iter().enumerate() {
        for e in &spectrum.deconvolution.as_ref().unwrap().envelopes {
            let apex_height = spectrum
                .peaks
                .mz
                .iter()
                .zip(&spectrum.peaks.intensity)
                .filter(|(mz, _)| {
                    let apex_mz =
                        (e.most_abundant_mass + e.charge as f64 * PROTON_MASS) / e.charge as f64;
                    (**mz - apex_mz).abs() < 1e-6 * apex_mz
                })
                .map(|(_, &i)| i as f64 - 100.0)
                .fold(0.0, f64::max);
            if apex_height < 10.0 * 50.0 {
                continue;
            }
            ours += 1;
            if envelopes
                .values()
                .any(|(ts, z, m, _)| *ts == s && matches(s, *z, *m, e))
            {
                true_positive += 1;
            } else {
                eprintln!(
                    "extra: spectrum {s} z={} mass {:.4} fit {:.2} peaks {}",
                    e.charge, e.neutral_mass, e.score, e.n_peaks
                );
            }
        }
    }
    let recall = found as f64 / strong.len() as f64;
    let precision = true_positive as f64 / ours as f64;
    eprintln!("simulated envelopes: recall {recall:.4} ({found}/{}), precision {precision:.4} ({true_positive}/{ours})", strong.len());
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.95, "precision {precision}");
}

/// OpenMS's Deisotoper keeps the monoisotopic peak of each isotope pattern it finds: most of
/// them should be monoisotopic peaks of our envelopes.
#[test]
fn agrees_with_openms_deisotoper() {
    let (Some(input), Some(output)) = (
        shared("deconvolution/Deisotoper_test_in.mzML"),
        shared("deconvolution/Deisotoper_test_out.mzML"),
    ) else {
        return;
    };
    let reference = crate::common::read_all(&output).remove(0).mz;
    let spectra = process(&input, PipelineParams::default());
    let mut mono: Vec<f64> = spectra[0]
        .deconvolution
        .as_ref()
        .unwrap()
        .envelopes
        .iter()
        .map(|e| e.mz)
        .collect();
    mono.sort_by(f64::total_cmp);
    let near = |sorted: &[f64], x: f64| sorted.iter().any(|m| ((m - x) / x).abs() * 1e6 <= 10.0);
    let found = reference.iter().filter(|&&m| near(&mono, m)).count();
    eprintln!(
        "Deisotoper: {found}/{} of OpenMS's deisotoped peaks are our monoisotopic peaks ({} envelopes)",
        reference.len(),
        mono.len()
    );
    assert!(
        found as f64 >= 0.75 * reference.len() as f64,
        "{found}/{}",
        reference.len()
    );
}

/// The charge range is extended (to 60) only for spectra that hold high-charge envelopes: the
/// top-down files keep theirs, while metabolomics, bottom-up and merged ion-mobility runs get
/// none above 8. Chance isotope runs among 50-odd charges extended it there, for up to ten
/// times the time and thousands of envelopes of charges up to 60 (3,787 in the merged
/// timsTOF scan; 513 in 274 scans of the metabolite run).
#[test]
fn only_spectra_with_high_charge_envelopes_extend_the_charge_range() {
    let highest_charge = |rel: &str| {
        let path = shared(rel)?;
        let spectra = process(&path, PipelineParams::default());
        let charges = spectra
            .iter()
            .filter_map(|s| s.deconvolution.as_ref())
            .flat_map(|d| &d.envelopes)
            .map(|e| e.charge.unsigned_abs());
        Some(charges.max().unwrap_or(0))
    };
    for rel in [
        "profile/FeatureFinderMetaboIdent_1_input.mzML",
        "runs/GNPSExport_mzml1.mzML",
        "runs/171103_PMA_TK_QC_04-4to5min.mzML",
        "mgf/SmallCalibratibleYeast.mgf",
        "edge/5B8egg_500ng_30V450ms18msReal_Ramp3_01.mzML_one_scan.gz",
    ] {
        let Some(highest) = highest_charge(rel) else {
            return;
        };
        assert!(highest <= 8, "{rel}: an envelope of charge {highest}");
    }
    for rel in [
        "deconvolution/Averaged_221110_CytoOnly.mzML",
        "deconvolution/FLASHDeconv_sample_input.mzML",
        "deconvolution/slicedTDYeast.mzML",
    ] {
        let Some(highest) = highest_charge(rel) else {
            return;
        };
        assert!(highest > 8, "{rel}: no envelope above charge 8");
    }
}

/// Dense centroid spectra (a merged ion-mobility scan's kind: counts on a fine m/z grid, with
/// peptide envelopes above it) are deconvolved charge by charge on the pool's threads, while the
/// same threads work on the run's other spectra: the run gives what one thread gives.
#[test]
fn dense_spectra_deconvolve_on_every_thread_as_on_one() {
    use mzforge::isotopes::IsotopeModel;
    use mzforge_fixtures::handmade::{
        array, mzml, spectrum, F32, F64, INTENSITY_ARRAY, MZ_ARRAY, NONE,
    };

    let mut state = 3u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let spectra: Vec<String> = (0..4)
        .map(|index| {
            let mut peaks: Vec<(f64, f32)> = (0..118_000)
                .map(|k| {
                    (
                        450.0 + k as f64 * 0.0025,
                        (uniform() * uniform() * 12.0).floor() as f32,
                    )
                })
                .filter(|p| p.1 > 0.0)
                .collect();
            for (mass, z) in [(1500.7, 2u32), (2300.1, 3), (1650.8, 2), (3100.6, 4)] {
                let mass = mass + 10.0 * index as f64;
                let pattern = IsotopeModel::Averagine.pattern(mass);
                for (a, o) in pattern.abundance.iter().zip(&pattern.offset) {
                    peaks.push(((mass + o) / f64::from(z) + PROTON_MASS, (a * 400.0) as f32));
                }
            }
            peaks.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mz: Vec<u8> = peaks.iter().flat_map(|p| p.0.to_le_bytes()).collect();
            let intensity: Vec<u8> = peaks.iter().flat_map(|p| p.1.to_le_bytes()).collect();
            let arrays =
                array(MZ_ARRAY, F64, NONE, &mz) + &array(INTENSITY_ARRAY, F32, NONE, &intensity);
            spectrum(index, peaks.len(), &arrays, "")
        })
        .collect();
    assert!(spectra.len() == 4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dense.mzML");
    std::fs::write(&path, mzml(&spectra)).unwrap();
    let run = |threads: usize| {
        let params = PipelineParams {
            threads,
            batch_size: 4,
            ..Default::default()
        };
        process(&path, params)
    };
    let one = run(1);
    assert_eq!(one.len(), 4);
    for s in &one {
        assert!(s.peaks.len() > 50_000, "{} peaks", s.peaks.len());
        let envelopes = &s.deconvolution.as_ref().unwrap().envelopes;
        for (mass, z) in [(1500.7, 2), (2300.1, 3), (1650.8, 2), (3100.6, 4)] {
            let mass = mass + 10.0 * s.meta.index as f64;
            assert!(
                envelopes
                    .iter()
                    .any(|e| e.charge == z && (e.neutral_mass - mass).abs() < 0.01),
                "spectrum {}: no envelope of {mass} Da at charge {z}: {:?}",
                s.meta.index,
                envelopes
                    .iter()
                    .filter(|e| (e.neutral_mass - mass).abs() < 3.0)
                    .collect::<Vec<_>>()
            );
        }
    }
    let two = run(2);
    assert_eq!(two.len(), one.len());
    for (a, b) in two.iter().zip(&one) {
        // Not `assert_eq!`: the lists are long, and pass-through peaks have NaN widths.
        assert!(
            a.peaks.mz == b.peaks.mz && a.deconvolution == b.deconvolution,
            "spectrum {}: not as on one thread",
            a.meta.index
        );
    }
}
