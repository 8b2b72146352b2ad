use mzforge::{Pipeline, PipelineParams};
#[test]
fn debug_bsa_precursors() {
    let path = crate::common::shared("runs/BSA1.mzML").unwrap();
    let mut all = Vec::new();
    Pipeline::new(PipelineParams::default()).unwrap().run_path(&path, &mut |b| { all.extend_from_slice(b); Ok(()) }).unwrap();
    let mut last_ms1 = None;
    let mut shown = 0;
    for s in &all {
        if s.meta.ms_level == 1 { last_ms1 = Some(s); continue; }
        let (Some(ms1), Some(p)) = (last_ms1, &s.meta.precursor) else { continue };
        if shown > 12 { break; }
        shown += 1;
        let k = ms1.peaks.mz.partition_point(|&m| m < p.mz);
        let near: Vec<String> = (k.saturating_sub(3)..(k + 3).min(ms1.peaks.mz.len())).map(|j| format!("{:.4}({:.0}) e={:?}", ms1.peaks.mz[j], ms1.peaks.intensity[j], ms1.deconvolution.as_ref().unwrap().peak_envelope[j])).collect();
        eprintln!("prec {:.4} z={:?} check={:?} ms1 n={} env={} :: {}", p.mz, p.charge, s.precursor_check, ms1.peaks.len(), ms1.deconvolution.as_ref().unwrap().envelopes.len(), near.join(" "));
    }
}
