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
        deconvolve: DeconvolveParams { charge_max, ..Default::default() },
        ..Default::default()
    }
}

/// mzLib's table lists, per charge, the most abundant observed isotope peak as m/z × z (no
/// proton correction), so the comparison is made in m/z.
#[test]
fn intact_proteins_most_abundant_isotope_per_charge() {
    let Some(table) = shared("deconvolution/intact_protein_expected.tsv") else { return };
    let text = std::fs::read_to_string(&table).unwrap();
    let (mut rows, mut found) = (0, 0);
    let mut results: std::collections::HashMap<String, Vec<ProcessedSpectrum>> = Default::default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (file, expected_mass, charge): (&str, f64, i32) = (f[0], f[3].parse().unwrap(), f[4].parse().unwrap());
        let Some(path) = shared(&format!("deconvolution/{file}")) else { return };
        let spectra = results.entry(file.to_string()).or_insert_with(|| process(&path, PipelineParams::default()));
        let envelopes = &spectra[0].deconvolution.as_ref().unwrap().envelopes;
        let expected_mz = expected_mass / charge as f64;
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
                .map(|e| format!("{:.3}", (e.most_abundant_mass + e.charge as f64 * PROTON_MASS) / e.charge as f64))
                .collect();
            eprintln!("missed {file} z={charge} m/z {expected_mz:.3}; ours at z={charge}: {near:?}");
        }
        found += hit as usize;
    }
    eprintln!("intact proteins: {found}/{rows} rows within 20 ppm");
    assert!(found as f64 >= 0.9 * rows as f64, "{found}/{rows}");
}

#[test]
fn flashdeconv_sample_most_intense_mass() {
    let Some(path) = shared("deconvolution/FLASHDeconv_sample_input.mzML") else { return };
    let expected = 17989.073405;
    let spectra = process(&path, PipelineParams::default());
    let (mut exact, mut off_by_one) = (0, 0);
    for s in &spectra {
        let envelopes = &s.deconvolution.as_ref().unwrap().envelopes;
        // Masses: envelopes of all charges grouped within 10 ppm (or one isotope apart).
        let mut groups: Vec<(f64, f64)> = Vec::new();
        for e in envelopes {
            match groups.iter_mut().find(|(m, _)| ((e.neutral_mass - *m) / *m).abs() < 10e-6) {
                Some(g) => g.1 += e.intensity as f64,
                None => groups.push((e.neutral_mass, e.intensity as f64)),
            }
        }
        let (mass, _) = groups.iter().cloned().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        let ppm = (mass - expected) / expected * 1e6;
        let isotope_error = ((mass - expected) / 1.00235).round();
        eprintln!("spectrum {}: most intense mass {mass:.3} ({ppm:.1} ppm, isotope error {isotope_error})", s.meta.index);
        if ppm.abs() <= 10.0 {
            exact += 1;
        } else if isotope_error.abs() == 1.0 {
            off_by_one += 1;
        }
    }
    eprintln!("FLASHDeconv sample: {exact}/{} exact, {off_by_one} off by one isotope", spectra.len());
    assert_eq!(exact, spectra.len());
}

#[test]
fn top_down_ms2_matches_flashdeconv_masses() {
    let (Some(path), Some(reference)) =
        (shared("deconvolution/example_spectrum_aqpz.mzML"), shared("deconvolution/reference_aqpz/spec2.tsv"))
    else {
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
            (f[mass_col].parse().unwrap(), f[intensity_col].parse().unwrap())
        })
        .collect();
    masses.sort_by(|a, b| b.1.total_cmp(&a.1));
    masses.truncate(30);
    let spectra = process(&path, intact(30));
    let ours = &spectra[0].deconvolution.as_ref().unwrap().envelopes;
    let found = masses
        .iter()
        .filter(|(m, _)| ours.iter().any(|e| ((e.neutral_mass - m) / m).abs() * 1e6 <= 10.0))
        .count();
    eprintln!("aqpz top-down: {found}/30 of FLASHDeconv's most intense masses within 10 ppm ({} envelopes)", ours.len());
    assert!(found >= 24, "{found}/30");
}

#[test]
fn precursor_charges_agree_with_the_instrument() {
    for rel in ["runs/BSA1.mzML", "runs/QualityControl_1_in1.mzML.gz"] {
        let Some(path) = shared(rel) else { return };
        let spectra = process(&path, PipelineParams::default());
        let (mut compared, mut agree) = (0, 0);
        for s in spectra.iter().filter(|s| s.meta.ms_level == 2) {
            let (Some(p), Some(check)) = (&s.meta.precursor, &s.precursor_check) else { continue };
            if let Some(z) = p.charge {
                compared += 1;
                agree += (z == check.charge) as usize;
            }
        }
        let with_charge = spectra
            .iter()
            .filter(|s| s.meta.precursor.as_ref().is_some_and(|p| p.charge.is_some()))
            .count();
        eprintln!("{rel}: {agree}/{compared} precursor charges agree ({with_charge} recorded)");
        assert!(compared as f64 >= 0.8 * with_charge as f64, "{compared} of {with_charge} checked");
        assert!(agree as f64 >= 0.9 * compared as f64, "{agree}/{compared}");
    }
}
