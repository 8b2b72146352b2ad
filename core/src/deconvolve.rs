//! Charge-state deconvolution and deisotoping: centroids become isotopic envelopes with a
//! charge and a monoisotopic neutral mass.
//!
//! For every peak and charge, the isotope series is walked left and right at the isotope
//! spacing (tolerating `max_gap` missing peaks). A series is fitted against the isotope
//! pattern of its mass ([`crate::isotopes`]) at every plausible alignment, so the
//! monoisotopic peak is found even when it is small, not the tallest, or missing; the fit is
//! the cosine between observed and predicted intensities over the predicted pattern. A series
//! that runs on beyond its fitted pattern (adducts and proteoforms of one charge make an
//! unbroken comb) is fitted again in each part beyond, from that part's tallest peak. Fits are
//! then accepted greedily, best first (explained intensity × fit⁴); a peak shared by two
//! envelopes gives each the intensity its pattern predicts, and a fit whose major peaks were
//! already used up by better fits is rejected.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::isotopes::{IsotopeModel, IsotopePattern, PROTON_MASS};

/// Deconvolution settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeconvolveParams {
    /// Run deconvolution at all. Default true.
    pub enabled: bool,
    /// Lowest charge considered (absolute value). Default 1.
    pub charge_min: u32,
    /// Highest charge considered (absolute value). Default 8 (peptides).
    pub charge_max: u32,
    /// Extend the range up to `auto_charge_max` for spectra that show high-charge envelopes
    /// (intact proteins). Default true.
    pub auto_charge: bool,
    /// The upper charge of the automatic extension. Default 60.
    pub auto_charge_max: u32,
    /// m/z tolerance between observed and expected isotope peaks, ppm. Default 10.
    pub tolerance_ppm: f64,
    /// Minimum fit (cosine similarity, 0–1) of an accepted envelope. Default 0.8.
    pub min_fit: f64,
    /// Minimum observed peaks in an envelope. Default 2.
    pub min_peaks: usize,
    /// Missing isotope peaks tolerated inside an envelope. Default 1.
    pub max_gap: usize,
    /// Composition family of the isotope patterns. Default averagine.
    pub model: IsotopeModel,
    /// MS levels to deconvolve; empty means all. Default all.
    pub ms_levels: Vec<u8>,
}

impl Default for DeconvolveParams {
    fn default() -> Self {
        DeconvolveParams {
            enabled: true,
            charge_min: 1,
            charge_max: 8,
            auto_charge: true,
            auto_charge_max: 60,
            tolerance_ppm: 10.0,
            min_fit: 0.8,
            min_peaks: 2,
            max_gap: 1,
            model: IsotopeModel::Averagine,
            ms_levels: Vec::new(),
        }
    }
}

/// Largest charge mzforge will consider.
pub const MAX_CHARGE: u32 = 200;

impl DeconvolveParams {
    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, message: &str| Error::InvalidParameter {
            name,
            message: message.into(),
        };
        if self.charge_min == 0 || self.charge_min > self.charge_max {
            return Err(bad(
                "deconvolve.charge_min",
                "charges must satisfy 1 <= charge_min <= charge_max",
            ));
        }
        if self.charge_max > MAX_CHARGE || self.auto_charge_max > MAX_CHARGE {
            return Err(bad(
                "deconvolve.charge_max",
                "charges above 200 are not supported",
            ));
        }
        if !(self.tolerance_ppm > 0.0 && self.tolerance_ppm <= 1000.0) {
            return Err(bad("deconvolve.tolerance_ppm", "must be in (0, 1000]"));
        }
        if !(0.0..=1.0).contains(&self.min_fit) {
            return Err(bad("deconvolve.min_fit", "must be between 0 and 1"));
        }
        if self.min_peaks == 0 {
            return Err(bad("deconvolve.min_peaks", "must be at least 1"));
        }
        if self.max_gap > 10 {
            return Err(bad("deconvolve.max_gap", "must be at most 10"));
        }
        Ok(())
    }

    /// Whether spectra of this MS level are deconvolved.
    pub fn applies_to(&self, ms_level: u8) -> bool {
        self.enabled && (self.ms_levels.is_empty() || self.ms_levels.contains(&ms_level))
    }
}

/// One isotopic envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    /// Monoisotopic neutral mass, Da.
    pub neutral_mass: f64,
    /// Monoisotopic m/z (whether or not a peak was observed there).
    pub mz: f64,
    /// Charge, signed by polarity.
    pub charge: i32,
    /// Summed intensity of the observed peaks attributed to the envelope.
    pub intensity: f32,
    /// Fit between observed and predicted pattern (cosine, 0–1).
    pub score: f32,
    /// Observed peaks.
    pub n_peaks: u32,
    /// Neutral mass of the envelope's most intense observed peak, Da.
    pub most_abundant_mass: f64,
    /// Average neutral mass from the predicted pattern, Da.
    pub average_mass: f64,
}

/// The deconvolution of one spectrum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deconvolution {
    /// The envelopes found, most convincing first.
    pub envelopes: Vec<Envelope>,
    /// For each input peak, the envelope (index into `envelopes`) that holds most of it.
    pub peak_envelope: Vec<Option<u32>>,
}

impl Deconvolution {
    /// The charge of each input peak's envelope.
    pub fn peak_charge(&self, peak: usize) -> Option<i32> {
        self.peak_envelope
            .get(peak)
            .copied()
            .flatten()
            .map(|e| self.envelopes[e as usize].charge)
    }
}

#[derive(Debug)]
struct Candidate {
    charge: u32,
    /// (peak index, isotope index in pattern, predicted intensity)
    members: Vec<(u32, u32, f32)>,
    fit: f64,
    rank: f64,
    neutral_mass: f64,
    pattern: Arc<IsotopePattern>,
    tallest: u32,
    /// Isotope index of the fitted series' position `j` is `j + shift`.
    shift: i64,
}

type PatternMap = HashMap<(IsotopeModel, u64), Arc<IsotopePattern>>;

/// The mass grid of the pattern cache, by tier: below which mass (Da) a tier's step applies,
/// the step, and its inverse (a multiplication: a division per walk was a tenth of the
/// walks' time).
const GRID_TIERS: [(f64, f64, f64); 3] = [
    (3_000.0, 1.0, 1.0),
    (20_000.0, 5.0, 0.2),
    (f64::INFINITY, 20.0, 0.05),
];

/// The grid point nearest `mono_mass`: (tier in [`GRID_TIERS`], index on the tier's step).
fn grid_point(mono_mass: f64) -> (usize, u64) {
    let tier = GRID_TIERS
        .iter()
        .position(|&(below, _, _)| mono_mass < below)
        .unwrap_or(GRID_TIERS.len() - 1);
    // Half up through an integer conversion: `f64::round` is a call into libm on x86-64
    // without SSE4.1 (the portable build), 3% of a whole run's samples from here. Through a
    // signed integer: one instruction where an unsigned conversion takes several.
    let index = (mono_mass * GRID_TIERS[tier].2 + 0.5).max(0.0) as i64 as u64;
    (tier, index)
}

/// First slot of each tier in a deconvolver's own pattern copies: 0..=3000 (1 Da), then
/// 5 Da to 20 kDa, then 20 Da up to [`MAX_ENVELOPE_MASS`].
const TIER_SLOTS: [usize; 3] = [0, 3_001, 3_001 + 4_001];

/// A slot per grid point up to [`MAX_ENVELOPE_MASS`]; `None` above.
fn local_slot(mono_mass: f64) -> Option<usize> {
    let (tier, index) = grid_point(mono_mass);
    let slot = TIER_SLOTS[tier].saturating_add(usize::try_from(index).ok()?);
    (slot < LOCAL_SLOTS).then_some(slot)
}

const LOCAL_SLOTS: usize = TIER_SLOTS[2] + (MAX_ENVELOPE_MASS as usize / 20) + 1;

/// Isotope patterns computed so far, on a mass grid (1 Da below 3 kDa, 5 Da below 20 kDa,
/// 20 Da above), filled lazily so start-up costs nothing. Cheap to clone and shared between
/// threads.
#[derive(Debug, Clone, Default)]
pub struct PatternCache {
    patterns: Arc<RwLock<PatternMap>>,
}

impl PatternCache {
    /// The process's cache, which every [`Pipeline`](crate::Pipeline) shares: patterns depend
    /// only on model and mass, so a process that runs input after input (a notebook, a warm
    /// Lambda function, the analysis API) computes each once. Bounded by the mass grid.
    pub fn shared() -> PatternCache {
        static SHARED: OnceLock<PatternCache> = OnceLock::new();
        SHARED.get_or_init(PatternCache::default).clone()
    }

    /// Whether `other` is a handle on this same cache.
    #[cfg(test)]
    pub(crate) fn is_same_cache(&self, other: &PatternCache) -> bool {
        Arc::ptr_eq(&self.patterns, &other.patterns)
    }

    /// The pattern of `model` for the grid point nearest `mono_mass`.
    pub fn get(&self, model: IsotopeModel, mono_mass: f64) -> Arc<IsotopePattern> {
        let (tier, bucket) = grid_point(mono_mass);
        let step = GRID_TIERS[tier].1;
        let key = (model, ((step as u64) << 40) | bucket);
        if let Some(p) = self
            .patterns
            .read()
            .ok()
            .and_then(|map| map.get(&key).cloned())
        {
            return p;
        }
        let pattern = Arc::new(model.pattern(bucket as f64 * step));
        if let Ok(mut map) = self.patterns.write() {
            map.entry(key).or_insert_with(|| pattern.clone());
        }
        pattern
    }

    /// The heaviest mass a pattern was computed for, Da.
    #[cfg(test)]
    fn heaviest(&self) -> f64 {
        self.patterns.read().map_or(0.0, |map| {
            map.keys()
                .map(|&(_, key)| (key >> 40) as f64 * (key & ((1 << 40) - 1)) as f64)
                .fold(0.0, f64::max)
        })
    }

    /// Number of patterns computed.
    pub fn len(&self) -> usize {
        self.patterns.read().map_or(0, |m| m.len())
    }

    /// Whether no pattern was computed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A reusable deconvolver: holds the parameters, scratch space and (a handle on) the
/// isotope-pattern cache.
#[derive(Debug)]
pub struct Deconvolver {
    params: DeconvolveParams,
    patterns: PatternCache,
    /// This deconvolver's own copies of the patterns it used, by grid slot: looked up without
    /// a lock or a hash, and their reference counts are not shared with other threads (a
    /// shared `Arc` cloned by every thread for every walk made the cache line bounce between
    /// cores and took a fifth of the pipeline's time).
    local: Vec<Option<Arc<IsotopePattern>>>,
    /// The number of peaks of each pattern in `local`, by the same slot (0: not looked up
    /// yet): every walk bounds itself by it, and reading it from the pattern itself, one
    /// pointer away in the heap, missed the cache on a tenth of a run's samples.
    local_len: Vec<u16>,
    /// The two halves of a walk (right, left), kept to reuse their buffers.
    walk_sides: (Vec<Option<u32>>, Vec<Option<u32>>),
    series: Vec<Option<u32>>,
    /// Where the walks of a dense spectrum start their searches (see [`MzBins`]).
    bins: MzBins,
    /// For each peak, the tallest peak of the first series walked through it at the charge
    /// being searched (see [`Deconvolver::candidates_at`]).
    claim: Vec<u32>,
    /// Spectra with at least this many peaks get [`MzBins`] ([`BINNED_FROM`]; tests change it).
    binned_from: usize,
    /// Spectra with at least this many peaks are searched charge by charge in parallel
    /// ([`PARALLEL_FROM`]; tests change it).
    parallel_from: usize,
    /// Isotope steps walked so far (the bulk of the work; tests bound it).
    walk_steps: u64,
}

/// The position in `series` of its tallest observed peak (the first of equal ones), if any.
fn tallest_position(series: &[Option<u32>], intensity: &[f32]) -> Option<usize> {
    series
        .iter()
        .enumerate()
        .filter_map(|(j, k)| k.map(|k| (j, intensity[k as usize])))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(j, _)| j)
}

/// Mean spacing of isotope peaks used to walk a series (averagine, middle of the pattern).
const WALK_SPACING: f64 = 1.002_4;

/// Heaviest envelope considered, Da: above any intact protein that isotope-resolved
/// deconvolution serves, and where a pattern still takes about a millisecond to compute (the
/// cost grows faster than the mass: minutes at 10⁹ Da), so that a spectrum with absurd m/z
/// values cannot stall a run.
pub const MAX_ENVELOPE_MASS: f64 = 200_000.0;

/// Most isotope steps a walk takes in one direction, whatever the pattern.
const MAX_WALK_STEPS: usize = 400;

/// No seed has claimed the peak yet (see [`Deconvolver::deconvolve`]).
const UNCLAIMED: u32 = u32::MAX;

impl Deconvolver {
    /// A deconvolver with these settings (validate them first).
    pub fn new(params: DeconvolveParams) -> Deconvolver {
        Deconvolver::with_cache(params, PatternCache::default())
    }

    /// A deconvolver sharing an existing pattern cache (one per run, shared by all threads).
    pub fn with_cache(params: DeconvolveParams, patterns: PatternCache) -> Deconvolver {
        Deconvolver {
            params,
            patterns,
            local: Vec::new(),
            local_len: Vec::new(),
            walk_sides: Default::default(),
            series: Vec::new(),
            bins: MzBins::default(),
            claim: Vec::new(),
            binned_from: BINNED_FROM,
            parallel_from: PARALLEL_FROM,
            walk_steps: 0,
        }
    }

    /// The settings.
    pub fn params(&self) -> &DeconvolveParams {
        &self.params
    }

    fn pattern(&mut self, mono_mass: f64) -> Arc<IsotopePattern> {
        let Some(slot) = local_slot(mono_mass) else {
            return self.patterns.get(self.params.model, mono_mass);
        };
        self.local_pattern(slot, mono_mass).clone()
    }

    /// The number of peaks of the pattern at `mono_mass`.
    fn pattern_len(&mut self, mono_mass: f64) -> usize {
        match local_slot(mono_mass) {
            Some(slot) => {
                if let Some(&len) = self.local_len.get(slot).filter(|&&len| len != 0) {
                    return usize::from(len);
                }
                let len = self.local_pattern(slot, mono_mass).abundance.len();
                if slot >= self.local_len.len() {
                    self.local_len.resize(slot + 1, 0);
                }
                self.local_len[slot] = u16::try_from(len).unwrap_or(0);
                len
            }
            None => self
                .patterns
                .get(self.params.model, mono_mass)
                .abundance
                .len(),
        }
    }

    /// This deconvolver's copy of the pattern in `slot` (filled from the shared cache).
    fn local_pattern(&mut self, slot: usize, mono_mass: f64) -> &Arc<IsotopePattern> {
        if slot >= self.local.len() {
            self.local.resize(slot + 1, None);
        }
        let (patterns, model) = (&self.patterns, self.params.model);
        self.local[slot]
            .get_or_insert_with(|| Arc::new(IsotopePattern::clone(&patterns.get(model, mono_mass))))
    }

    /// The peak nearest `target` within `tolerance`; `near` is the index of a peak close to
    /// the target (the search starts there: walks move a few peaks at a time).
    fn find(mz: &[f64], near: usize, target: f64, tolerance: f64) -> Option<u32> {
        let i = lower_bound_near(mz, near, target - tolerance);
        let mut best: Option<(u32, f64)> = None;
        let mut j = i;
        while j < mz.len() && mz[j] <= target + tolerance {
            let d = (mz[j] - target).abs();
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((j as u32, d));
            }
            j += 1;
        }
        best.map(|(k, _)| k)
    }

    /// Walks the isotope series through `seed` at charge `z`; returns the series (left to
    /// right, `None` for missing peaks) in `self.series`.
    ///
    /// The walk goes at most as many steps each way as the isotope pattern at the seed's mass
    /// has peaks (plus the gaps allowed): peaks beyond that belong to no envelope through the
    /// seed, and a dense comb of peaks (a hostile or broken spectrum) cannot make every seed
    /// walk the whole spectrum.
    fn walk(&mut self, mz: &[f64], intensity: &[f32], seed: usize, z: u32, bins: &MzBins) -> usize {
        self.series.clear();
        let seed_mass = mz[seed].abs() * z as f64;
        if !(seed_mass.is_finite() && seed_mass <= MAX_ENVELOPE_MASS) {
            self.series.push(Some(seed as u32));
            return 0;
        }
        // Exact below 20 kDa, where patterns are cheap (microseconds) and few (1 and 5 Da grid);
        // above, a bound: computing the exact pattern for every seed at every charge up to 60
        // cost most of the run on spectra where high charges are tried.
        let extent = if seed_mass < EXACT_EXTENT_BELOW {
            self.pattern_len(seed_mass)
        } else {
            pattern_len_bound(seed_mass)
        };
        let max_steps = (extent + self.params.max_gap).min(MAX_WALK_STEPS);
        let step = WALK_SPACING / z as f64;
        let tol = |at: f64| at * self.params.tolerance_ppm * 1e-6 + 0.002 / z as f64;
        let (mut right, mut left) = std::mem::take(&mut self.walk_sides);
        right.clear();
        left.clear();
        for (direction, out) in [(1.0, &mut right), (-1.0, &mut left)] {
            let mut last = seed;
            let mut misses = 0usize;
            loop {
                self.walk_steps += 1;
                let target = mz[last] + direction * (misses + 1) as f64 * step;
                let tolerance = tol(target);
                let near = bins.near(target - tolerance).unwrap_or(last);
                let found = Self::find(mz, near, target, tolerance);
                match found.filter(|&k| intensity[k as usize] > 0.0) {
                    Some(k) => {
                        for _ in 0..misses {
                            out.push(None);
                        }
                        out.push(Some(k));
                        last = k as usize;
                        misses = 0;
                    }
                    None => {
                        misses += 1;
                        if misses > self.params.max_gap {
                            break;
                        }
                    }
                }
                if out.len() >= max_steps {
                    break;
                }
            }
        }
        self.series.clear();
        self.series.extend(left.iter().rev());
        let seed_at = self.series.len();
        self.series.push(Some(seed as u32));
        self.series.extend(right.iter());
        self.walk_sides = (right, left);
        seed_at
    }

    fn charges(&self, mz: &[f64], intensity: &[f32]) -> std::ops::RangeInclusive<u32> {
        let p = &self.params;
        if p.auto_charge
            && p.auto_charge_max > p.charge_max
            && high_charge_evidence(mz, intensity, p)
        {
            p.charge_min..=p.auto_charge_max
        } else {
            p.charge_min..=p.charge_max
        }
    }

    /// Deconvolves one centroided spectrum (m/z ascending). `negative` selects negative-mode
    /// charges (m/z = (M − z·proton)/z). A spectrum of [`PARALLEL_FROM`] peaks or more,
    /// deconvolved inside a rayon pool (`pool.install(...)`), uses the pool's threads; the
    /// result is the same.
    pub fn deconvolve(&mut self, mz: &[f64], intensity: &[f32], negative: bool) -> Deconvolution {
        let n = mz.len().min(intensity.len());
        let (mz, intensity) = (&mz[..n], &intensity[..n]);
        let mut out = Deconvolution {
            envelopes: Vec::new(),
            peak_envelope: vec![None; n],
        };
        if n == 0 || !is_sorted(mz) {
            return out;
        }
        let sign = if negative { -1.0 } else { 1.0 };
        let charges = self.charges(mz, intensity);
        let mut bins = std::mem::take(&mut self.bins);
        bins.build(mz, self.binned_from);
        let mut candidates = Vec::new();
        let on_a_pool = rayon::current_thread_index().is_some() && rayon::current_num_threads() > 1;
        if n >= self.parallel_from && on_a_pool {
            // Charge by charge on the pool's threads, each with a deconvolver of its own; the
            // candidates are gathered in charge order, as one thread would find them.
            let (params, patterns) = (&self.params, &self.patterns);
            let per_charge: Vec<(Vec<Candidate>, u64)> = charges
                .into_par_iter()
                .map_init(
                    || Deconvolver::with_cache(params.clone(), patterns.clone()),
                    |helper, z| {
                        let (mut found, steps) = (Vec::new(), helper.walk_steps);
                        helper.candidates_at(mz, intensity, z, sign, &bins, &mut found);
                        (found, helper.walk_steps - steps)
                    },
                )
                .collect();
            for (found, steps) in per_charge {
                candidates.extend(found);
                self.walk_steps += steps;
            }
        } else {
            for z in charges {
                self.candidates_at(mz, intensity, z, sign, &bins, &mut candidates);
            }
        }
        self.bins = bins;
        candidates.sort_by(|a, b| b.rank.total_cmp(&a.rank));

        let mut remaining: Vec<f32> = intensity.to_vec();
        let mut best_share = vec![0f32; n];
        for c in candidates {
            let top = c.members.iter().map(|m| m.2).fold(0f32, f32::max);
            let conflict = c.members.iter().any(|&(k, _, predicted)| {
                predicted >= 0.3 * top
                    && remaining[k as usize] < 0.5 * predicted.min(intensity[k as usize])
            });
            if conflict {
                continue;
            }
            // What is left of the peaks must carry most of what this envelope predicts: the
            // leftovers of an envelope already accepted do not make a new one.
            let available: f32 = c
                .members
                .iter()
                .map(|&(k, _, p)| remaining[k as usize].min(p).max(0.0))
                .sum();
            let wanted: f32 = c
                .members
                .iter()
                .map(|&(k, _, p)| intensity[k as usize].min(p).max(0.0))
                .sum();
            if available < 0.6 * wanted {
                continue;
            }
            let id = out.envelopes.len() as u32;
            let mut total = 0f32;
            for &(k, _, predicted) in &c.members {
                let k = k as usize;
                let take = remaining[k].min(predicted).max(0.0);
                remaining[k] -= take;
                total += take;
                if take > best_share[k] {
                    best_share[k] = take;
                    out.peak_envelope[k] = Some(id);
                }
            }
            let z = c.charge as f64;
            let pattern = &c.pattern;
            let tallest_mz = mz[c.tallest as usize];
            out.envelopes.push(Envelope {
                neutral_mass: c.neutral_mass,
                mz: c.neutral_mass / z + sign * PROTON_MASS,
                charge: if negative {
                    -(c.charge as i32)
                } else {
                    c.charge as i32
                },
                intensity: total,
                score: c.fit as f32,
                n_peaks: c.members.len() as u32,
                most_abundant_mass: (tallest_mz - sign * PROTON_MASS) * z,
                average_mass: c.neutral_mass + pattern.average_offset(),
            });
        }
        out
    }

    /// The candidate envelopes of charge `z`, added to `out` in the order of their seeds.
    ///
    /// For each peak the walk notes the tallest peak of the first series walked through it, or
    /// itself once it was the tallest of one. Every member of a series walks about the same
    /// series, which is fitted once, from its tallest; so a peak that a series with a taller
    /// peak already went through is not walked again. This keeps the work near one walk per
    /// series instead of one per peak.
    fn candidates_at(
        &mut self,
        mz: &[f64],
        intensity: &[f32],
        z: u32,
        sign: f64,
        bins: &MzBins,
        out: &mut Vec<Candidate>,
    ) {
        let n = mz.len();
        let mut claim = std::mem::take(&mut self.claim);
        claim.clear();
        claim.resize(n, UNCLAIMED);
        for seed in 0..n {
            if intensity[seed].is_nan() || intensity[seed] <= 0.0 {
                continue;
            }
            if claim[seed] != UNCLAIMED && claim[seed] != seed as u32 {
                continue;
            }
            let seed_at = self.walk(mz, intensity, seed, z, bins);
            let observed = self.series.iter().flatten().count();
            if observed < self.params.min_peaks {
                continue;
            }
            let tallest_at = tallest_position(&self.series, intensity).unwrap_or(seed_at);
            if let Some(tallest) = self.series[tallest_at] {
                for &k in self.series.iter().flatten() {
                    let c = &mut claim[k as usize];
                    if k == tallest || *c == UNCLAIMED {
                        *c = tallest;
                    }
                }
            }
            if tallest_at != seed_at {
                continue;
            }
            self.fit_series(mz, intensity, z, seed_at, sign, out);
        }
        self.claim = claim;
    }

    /// Fits the walked series from its tallest peak, then each part of the series beyond
    /// that fit's pattern from the part's own tallest peak, and so on.
    ///
    /// A walk runs on through the neighbouring envelopes of the same charge (adducts and
    /// proteoforms 20–50 Da apart in top-down spectra make one unbroken comb), and no seed of
    /// theirs walks the comb again: its tallest peak belongs to the envelope fitted first. So
    /// their peaks, outside that envelope's pattern, are fitted here.
    fn fit_series(
        &mut self,
        mz: &[f64],
        intensity: &[f32],
        z: u32,
        tallest_at: usize,
        sign: f64,
        out: &mut Vec<Candidate>,
    ) {
        let whole = std::mem::take(&mut self.series);
        let mut parts = vec![(0, whole.len(), tallest_at)];
        while let Some((from, to, top)) = parts.pop() {
            self.series.clear();
            self.series.extend_from_slice(&whole[from..to]);
            let Some(c) = self.fit(mz, intensity, z, top - from, sign) else {
                continue;
            };
            // The fitted pattern covers the series' positions `from - shift ..` for its length.
            let start = from as i64 - c.shift;
            let covered = |at: i64| at.clamp(from as i64, to as i64) as usize;
            let (lo, hi) = (
                covered(start),
                covered(start + c.pattern.abundance.len() as i64),
            );
            out.push(c);
            for (a, b) in [(from, lo), (hi, to)] {
                let part = &whole[a..b];
                if part.iter().flatten().count() < self.params.min_peaks {
                    continue;
                }
                if let Some(j) = tallest_position(part, intensity) {
                    parts.push((a, b, a + j));
                }
            }
        }
        self.series = whole;
    }

    /// Fits the walked series at charge `z` against the isotope pattern of its mass, trying
    /// every alignment that puts the tallest observed peak near the pattern's top.
    fn fit(
        &mut self,
        mz: &[f64],
        intensity: &[f32],
        z: u32,
        tallest_at: usize,
        sign: f64,
    ) -> Option<Candidate> {
        let series = std::mem::take(&mut self.series);
        let zf = z as f64;
        let tallest = series[tallest_at]?;
        let top_mass = (mz[tallest as usize] - sign * PROTON_MASS) * zf;
        if !(top_mass.is_finite() && top_mass <= MAX_ENVELOPE_MASS) {
            self.series = series;
            return None;
        }
        let guess = self.pattern(top_mass);
        let mono_guess = top_mass - guess.offset[guess.most_abundant()];
        let pattern = self.pattern(mono_guess.max(0.0));
        let len = pattern.abundance.len() as i64;
        let top_k = pattern.most_abundant() as i64;
        let observed: Vec<(usize, u32)> = series
            .iter()
            .enumerate()
            .filter_map(|(j, k)| k.map(|k| (j, k)))
            .collect();
        let t2: f64 = pattern.abundance.iter().map(|a| a * a).sum();

        let mut best: Option<(f64, i64)> = None;
        // shift: isotope index k of series position j is j + shift.
        for k_top in (top_k - 3).max(0)..=(top_k + 3).min(len - 1) {
            let shift = k_top - tallest_at as i64;
            // Over the pattern's extent only: a walk may run on into a neighbouring envelope
            // (an adduct, another proteoform) whose peaks this pattern does not claim.
            let (mut dot, mut e2) = (0.0, 0.0);
            for &(j, k) in &observed {
                let iso = j as i64 + shift;
                if (0..len).contains(&iso) {
                    let e = intensity[k as usize] as f64;
                    dot += e * pattern.abundance[iso as usize];
                    e2 += e * e;
                }
            }
            let cosine = dot / (e2.sqrt() * t2.sqrt());
            if best.is_none_or(|(b, _)| cosine > b) {
                best = Some((cosine, shift));
            }
        }
        self.series = series;
        let (fit, shift) = best?;
        if fit < self.params.min_fit || !fit.is_finite() {
            return None;
        }
        let mut members = Vec::with_capacity(observed.len());
        let (mut dot, mut tt) = (0.0, 0.0);
        for &(j, k) in &observed {
            let iso = j as i64 + shift;
            if (0..len).contains(&iso) {
                let a = pattern.abundance[iso as usize];
                dot += intensity[k as usize] as f64 * a;
                tt += a * a;
            }
        }
        let scale = if tt > 0.0 { dot / tt } else { 0.0 };
        let (mut mass_sum, mut weight_sum, mut explained) = (0.0, 0.0, 0.0);
        for &(j, k) in &observed {
            let iso = j as i64 + shift;
            if !(0..len).contains(&iso) {
                continue;
            }
            let predicted = scale * pattern.abundance[iso as usize];
            let observed_int = intensity[k as usize] as f64;
            let mass = (mz[k as usize] - sign * PROTON_MASS) * zf - pattern.offset[iso as usize];
            let weight = observed_int.min(predicted);
            mass_sum += mass * weight;
            weight_sum += weight;
            explained += observed_int.min(predicted);
            members.push((k, iso as u32, predicted as f32));
        }
        if members.len() < self.params.min_peaks || weight_sum <= 0.0 {
            return None;
        }
        // Every member must sit where the pattern puts it at this charge and mass: a walk at a
        // neighbouring charge can chain through another envelope's peaks, but their positions
        // then drift from the prediction by a fraction of the spacing per peak.
        let neutral_mass = mass_sum / weight_sum;
        let tolerance_ppm = 2.0 * self.params.tolerance_ppm;
        let mut misplaced = 0.0;
        members.retain(|&(k, iso, predicted)| {
            let expected_mz =
                (neutral_mass + pattern.offset[iso as usize]) / zf + sign * PROTON_MASS;
            let ok = ((mz[k as usize] - expected_mz) / expected_mz).abs() * 1e6 <= tolerance_ppm;
            if !ok {
                misplaced += (intensity[k as usize] as f64).min(predicted as f64);
            }
            ok
        });
        if members.len() < self.params.min_peaks || misplaced > 0.2 * explained {
            return None;
        }
        if self.is_subharmonic(mz, intensity, &members, z) {
            return None;
        }
        let fit = fit * (1.0 - misplaced / explained);
        let explained = explained - misplaced;
        if fit < self.params.min_fit {
            return None;
        }
        Some(Candidate {
            charge: z,
            members,
            fit,
            rank: explained * fit.powi(4),
            neutral_mass,
            pattern,
            tallest,
            shift,
        })
    }
}

impl Deconvolver {
    /// The best envelope through the peak nearest `target_mz` (within the tolerance), over the
    /// configured charges: used to check a precursor's charge when the survey scan's own
    /// deconvolution did not keep an envelope there.
    pub fn envelope_at(
        &mut self,
        mz: &[f64],
        intensity: &[f32],
        target_mz: f64,
        negative: bool,
    ) -> Option<Envelope> {
        let n = mz.len().min(intensity.len());
        let (mz, intensity) = (&mz[..n], &intensity[..n]);
        if n == 0 || !is_sorted(mz) {
            return None;
        }
        let seed = Self::find(
            mz,
            mz.len() / 2,
            target_mz,
            target_mz * self.params.tolerance_ppm * 1e-6,
        )? as usize;
        let sign = if negative { -1.0 } else { 1.0 };
        let mut best: Option<Candidate> = None;
        for z in self.params.charge_min..=self.params.charge_max {
            self.walk(mz, intensity, seed, z, &MzBins::default());
            let tallest_at = self
                .series
                .iter()
                .enumerate()
                .filter_map(|(j, k)| k.map(|k| (j, intensity[k as usize])))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(j, _)| j)?;
            if let Some(c) = self.fit(mz, intensity, z, tallest_at, sign) {
                if best.as_ref().is_none_or(|b| c.rank > b.rank) {
                    best = Some(c);
                }
            }
        }
        let c = best?;
        let z = c.charge as f64;
        Some(Envelope {
            neutral_mass: c.neutral_mass,
            mz: c.neutral_mass / z + sign * PROTON_MASS,
            charge: if negative {
                -(c.charge as i32)
            } else {
                c.charge as i32
            },
            intensity: c.members.iter().map(|m| intensity[m.0 as usize]).sum(),
            score: c.fit as f32,
            n_peaks: c.members.len() as u32,
            most_abundant_mass: (mz[c.tallest as usize] - sign * PROTON_MASS) * z,
            average_mass: c.neutral_mass + c.pattern.average_offset(),
        })
    }
}

impl Deconvolver {
    /// Whether an envelope at charge `z` is really part of one at a multiple of `z`: peaks sit
    /// between its consecutive members, at a half or a third of the spacing, in most gaps.
    fn is_subharmonic(
        &self,
        mz: &[f64],
        intensity: &[f32],
        members: &[(u32, u32, f32)],
        z: u32,
    ) -> bool {
        let mut gaps = 0;
        let mut filled = 0;
        for pair in members.windows(2) {
            let (a, b) = (pair[0].0 as usize, pair[1].0 as usize);
            if pair[1].1 != pair[0].1 + 1 {
                continue;
            }
            gaps += 1;
            let floor = 0.2 * intensity[a].min(intensity[b]);
            let between = [2u32, 3].iter().any(|&parts| {
                (1..parts).all(|j| {
                    let target = mz[a] + (mz[b] - mz[a]) * j as f64 / parts as f64;
                    let tol =
                        target * self.params.tolerance_ppm * 1e-6 + 0.002 / (z * parts) as f64;
                    Self::find(mz, a, target, tol).is_some_and(|k| intensity[k as usize] >= floor)
                })
            });
            filled += between as usize;
        }
        gaps > 0 && filled * 2 >= gaps
    }
}

/// Whether the spectrum's most intense peaks sit in isotope series whose spacing only charges
/// above `charge_max` explain (intact proteins). For each of the 100 most intense peaks, the
/// charge with the longest run of isotope neighbours (up to 4; the highest charge on ties, as
/// the finest spacing explains every coarser one; a high charge only where its run is a
/// clean comb, see [`voting_run`]) votes, as [`high_charge_vote`] counts.
fn high_charge_evidence(mz: &[f64], intensity: &[f32], p: &DeconvolveParams) -> bool {
    let next = |from: f64, z: u32| isotope_step(from, z, p.tolerance_ppm);
    let charges = p.charge_min..=p.auto_charge_max;
    let mut first_step = Vec::with_capacity(charges.clone().count());
    high_charge_vote(intensity, p.charge_max, |i| {
        // Only a charge whose first step from `i` finds a peak can have a run: those are
        // found from the few peaks within reach of any charge's first step, instead of a
        // search per charge (60 of them once high charges are tried).
        first_step.clear();
        first_step.extend(charges.clone().map(|z| next(mz[i], z)));
        let (lowest, highest) = first_step
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(t, tol)| {
                (lo.min(t - tol), hi.max(t + tol))
            });
        let reachable = (lowest.is_finite() && highest.is_finite()).then(|| {
            let from = mz.partition_point(|&v| v < lowest);
            let to = from + mz[from..].partition_point(|&v| v <= highest);
            &mz[from..to]
        });
        charges
            .clone()
            .zip(&first_step)
            .filter(|&(_, &(t, tol))| match reachable {
                Some(peaks) => peaks.iter().any(|&v| v >= t - tol && v <= t + tol),
                // Infinite m/z: every charge is left to the search.
                None => true,
            })
            .map(|(z, _)| (voting_run(mz, intensity, i, z, p), z))
            .max()
    })
}

/// The vote of [`high_charge_evidence`]: each of the 100 most intense peaks (at least 10 are
/// needed) votes by its longest isotope run, `(run, charge)` from `best_run(peak)`: high for a
/// charge above `charge_max` with three neighbours or more (an ion of such a charge weighs
/// kilodaltons, so its envelope is wide; two neighbours among 50-odd charges tried are found
/// by chance in small, irregular spectra), low for a run of two or more otherwise. High wins
/// on a majority that is also a quarter of the peaks looked at, so that the few runs found in
/// a spectrum where most top peaks have none cannot decide it.
fn high_charge_vote(
    intensity: &[f32],
    charge_max: u32,
    mut best_run: impl FnMut(usize) -> Option<(u32, u32)>,
) -> bool {
    let mut order: Vec<usize> = (0..intensity.len()).collect();
    order.sort_by(|&a, &b| intensity[b].total_cmp(&intensity[a]));
    order.truncate(100);
    if order.len() < 10 {
        return false;
    }
    let looked_at = order.len();
    let (mut high, mut low) = (0, 0);
    for i in order {
        match best_run(i) {
            Some((run, z)) if run >= 3 && z > charge_max => high += 1,
            Some((run, _)) if run >= 2 => low += 1,
            _ => {}
        }
    }
    high > low && high * 4 >= looked_at
}

/// Where the next isotope peak of charge `z` after m/z `from` is expected, and within what
/// tolerance, for the high-charge vote.
fn isotope_step(from: f64, z: u32, tolerance_ppm: f64) -> (f64, f64) {
    let target = from + WALK_SPACING / z as f64;
    (target, target * tolerance_ppm * 1e-6 + 0.002 / z as f64)
}

/// The isotope run of peak `i` at charge `z` as the high-charge vote counts it: the steps of
/// [`isotope_run`], but none for a charge above `charge_max` whose run is not a clean comb.
fn voting_run(mz: &[f64], intensity: &[f32], i: usize, z: u32, p: &DeconvolveParams) -> u32 {
    let (run, members) = isotope_run(mz, i, z, p.tolerance_ppm);
    if z > p.charge_max && !is_clean_comb(mz, intensity, &members[..=run]) {
        return 0;
    }
    run as u32
}

/// How many isotope steps of charge `z` (up to 4) follow peak `i`, and the peaks of the run
/// (`i` first).
fn isotope_run(mz: &[f64], i: usize, z: u32, tolerance_ppm: f64) -> (usize, [usize; 5]) {
    let mut members = [i; 5];
    let mut run = 0;
    while run < 4 {
        let (target, tol) = isotope_step(mz[members[run]], z, tolerance_ppm);
        match Deconvolver::find(mz, members[run], target, tol) {
            Some(k) => {
                run += 1;
                members[run] = k as usize;
            }
            None => break,
        }
    }
    (run, members)
}

/// Whether most steps of a run (`members`, ascending) have nothing in their middle half of at
/// least a fifth of the smaller peak of the two around it. An envelope of resolved isotopes has
/// nothing there; where something is, the run lies in a comb finer than its spacing: a series
/// of a higher charge (which votes itself) or a spectrum so dense that peaks are found at any
/// spacing by chance, as in merged ion-mobility spectra (hundreds of points per m/z unit, on
/// the instrument's grid, where every charge up to the highest found a run).
fn is_clean_comb(mz: &[f64], intensity: &[f32], members: &[usize]) -> bool {
    let filled = members
        .windows(2)
        .filter(|pair| {
            let (a, b) = (pair[0], pair[1]);
            let (low, high) = (0.75 * mz[a] + 0.25 * mz[b], 0.25 * mz[a] + 0.75 * mz[b]);
            let floor = 0.2 * intensity[a].min(intensity[b]);
            let from = lower_bound_near(mz, a, low);
            mz[from..]
                .iter()
                .zip(&intensity[from..])
                .take_while(|&(&v, _)| v <= high)
                .any(|(_, &y)| y >= floor)
        })
        .count();
    filled * 2 < members.len() - 1
}

/// Seeds lighter than this bound their walk by their exact pattern's length.
const EXACT_EXTENT_BELOW: f64 = 20_000.0;

/// An upper bound on the number of peaks of an isotope pattern at `mass` Da (those of at least
/// 1/1000 of the tallest), without computing the pattern: at most about mass/1500 extra
/// neutrons on average, a Poisson-like spread, margins (checked against every model from 50 Da
/// to 200 kDa by a test). Walks seeded above [`EXACT_EXTENT_BELOW`] use it as their bound.
fn pattern_len_bound(mass: f64) -> usize {
    let neutrons = mass.max(0.0) / 1500.0;
    (neutrons + 4.0 * neutrons.sqrt() + 4.0).ceil() as usize
}

/// Spectra with at least this many peaks, deconvolved on a thread of a rayon pool of several
/// threads, are searched charge by charge on that pool: a single dense spectrum (a merged scan
/// of an ion-mobility run, 350k peaks) took seconds on one core. Smaller ones, and any spectrum
/// deconvolved outside a pool (where no pool was asked for: the global one would outlive the
/// call), are searched on the calling thread.
pub const PARALLEL_FROM: usize = 50_000;

/// Spectra with at least this many peaks get [`MzBins`] (below, a search from the last peak
/// found crosses a few peaks per step).
const BINNED_FROM: usize = 4_096;

/// Where to start looking for an m/z value in a dense spectrum: the first peak of each of as
/// many equal m/z bins as the spectrum has peaks. An isotope step crosses tens to hundreds of
/// peaks of a dense spectrum (a merged timsTOF scan has one every 0.005 m/z), which a search
/// from the step's start took a dozen dependent comparisons to cross; from the bin it is one
/// or two. Only a starting point: [`lower_bound_near`] still finds the exact place.
#[derive(Debug, Default)]
struct MzBins {
    low: f64,
    per_mz: f64,
    first: Vec<u32>,
}

impl MzBins {
    /// Bins for ascending `mz`; none (and [`MzBins::near`] answers `None`) for spectra of
    /// fewer than `from` peaks, or spanning no finite width.
    fn build(&mut self, mz: &[f64], from: usize) {
        self.first.clear();
        let (Some(&low), Some(&high)) = (mz.first(), mz.last()) else {
            return;
        };
        let width = high - low;
        if mz.len() < from || !(width.is_finite() && width > 0.0) {
            return;
        }
        let bins = mz.len();
        self.low = low;
        self.per_mz = bins as f64 / width;
        let mut k = 0;
        for b in 0..bins {
            let edge = low + b as f64 / self.per_mz;
            while k < mz.len() && mz[k] < edge {
                k += 1;
            }
            self.first.push(k as u32);
        }
    }

    /// A peak near where `value` would go, if the spectrum is binned.
    fn near(&self, value: f64) -> Option<usize> {
        let last = self.first.len().checked_sub(1)?;
        // Saturating: below `low` (and NaN) gives bin 0, far above it the last.
        let bin = ((value - self.low) * self.per_mz) as usize;
        Some(self.first[bin.min(last)] as usize)
    }
}

/// `mz.partition_point(|&v| v < value)` for ascending `mz`, searched outwards from `near`
/// (exponential search): a few comparisons when the answer is close to `near`.
fn lower_bound_near(mz: &[f64], near: usize, value: f64) -> usize {
    let n = mz.len();
    let below = |k: usize| mz[k] < value;
    let near = near.min(n);
    let mut step = 1;
    if near < n && below(near) {
        // The answer is in (near, n].
        let mut lo = near + 1;
        loop {
            let probe = lo + step - 1;
            if probe >= n {
                return lo + mz[lo..].partition_point(|&v| v < value);
            }
            if !below(probe) {
                return lo + mz[lo..probe].partition_point(|&v| v < value);
            }
            lo = probe + 1;
            step *= 2;
        }
    }
    // The answer is in [0, near].
    let mut hi = near;
    loop {
        if hi == 0 {
            return 0;
        }
        let probe = hi.saturating_sub(step);
        if below(probe) {
            return probe + 1 + mz[probe + 1..hi].partition_point(|&v| v < value);
        }
        if probe == 0 {
            return 0;
        }
        hi = probe;
        step *= 2;
    }
}

/// Whether m/z values ascend (NaN fails).
fn is_sorted(mz: &[f64]) -> bool {
    mz.windows(2).all(|w| w[0] <= w[1])
}

/// Deconvolves one spectrum with the given settings (one-shot; reuse a [`Deconvolver`] for
/// many spectra).
pub fn deconvolve(mz: &[f64], intensity: &[f32], params: &DeconvolveParams) -> Deconvolution {
    Deconvolver::new(params.clone()).deconvolve(mz, intensity, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isotopes::IsotopeModel;
    use proptest::prelude::*;

    #[test]
    fn the_walk_bound_covers_every_pattern_up_to_the_heaviest_envelope() {
        for model in [
            IsotopeModel::Averagine,
            IsotopeModel::Glycan,
            IsotopeModel::Glycopeptide,
            IsotopeModel::Nucleotide,
        ] {
            let mut mass = 50.0;
            while mass <= MAX_ENVELOPE_MASS {
                let exact = model.pattern(mass).abundance.len();
                let bound = pattern_len_bound(mass);
                assert!(bound >= exact, "{mass} Da: bound {bound} < {exact} peaks");
                assert!(
                    bound <= exact + exact / 2 + 4,
                    "{mass} Da: bound {bound} far above {exact}"
                );
                mass *= 1.05;
            }
        }
    }

    proptest! {
        #[test]
        fn lower_bound_near_equals_partition_point(
            mut mz in prop::collection::vec(0.0f64..100.0, 0..60),
            near in 0usize..70,
            value in -1.0f64..101.0,
        ) {
            mz.sort_by(f64::total_cmp);
            if let Some(&v) = mz.get(near % mz.len().max(1)) {
                // Exact hits.
                prop_assert_eq!(lower_bound_near(&mz, near, v), mz.partition_point(|&x| x < v));
            }
            prop_assert_eq!(
                lower_bound_near(&mz, near, value),
                mz.partition_point(|&x| x < value)
            );
        }

        #[test]
        fn high_charge_evidence_equals_a_search_per_charge(
            clusters in prop::collection::vec((300.0f64..2000.0, 1u32..40, 1usize..6), 1..40),
            noise in prop::collection::vec(300.0f64..2000.0, 0..60),
            seed in 0u32..1000,
            tolerance_ppm in 1.0f64..30.0,
        ) {
            let mut peaks: Vec<(f64, f32)> = Vec::new();
            for (k, &(mz, z, n)) in clusters.iter().enumerate() {
                for step in 0..n {
                    let height = 1e5 * ((k as u32 * 7 + seed) % 13 + 1) as f32 / (step + 1) as f32;
                    peaks.push((mz + step as f64 * WALK_SPACING / z as f64, height));
                }
            }
            for (k, &mz) in noise.iter().enumerate() {
                peaks.push((mz, ((k as u32 * 31 + seed) % 97) as f32 * 100.0));
            }
            peaks.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (mz, intensity): (Vec<f64>, Vec<f32>) = peaks.into_iter().unzip();
            let params = DeconvolveParams { tolerance_ppm, ..DeconvolveParams::default() };
            prop_assert_eq!(
                high_charge_evidence(&mz, &intensity, &params),
                high_charge_evidence_by_search(&mz, &intensity, &params)
            );
        }

        #[test]
        fn lower_bound_near_handles_ties(n in 1usize..30, near in 0usize..40) {
            let mz = vec![5.0; n];
            prop_assert_eq!(lower_bound_near(&mz, near, 5.0), 0);
            prop_assert_eq!(lower_bound_near(&mz, near, 5.5), n);
        }
    }

    /// [`high_charge_evidence`] as first written: a search for every charge of every peak.
    fn high_charge_evidence_by_search(mz: &[f64], intensity: &[f32], p: &DeconvolveParams) -> bool {
        high_charge_vote(intensity, p.charge_max, |i| {
            (p.charge_min..=p.auto_charge_max)
                .map(|z| (voting_run(mz, intensity, i, z, p), z))
                .max()
        })
    }

    fn envelope(mono_mass: f64, z: u32, height: f64) -> Vec<(f64, f32)> {
        let p = IsotopeModel::Averagine.pattern(mono_mass);
        p.abundance
            .iter()
            .zip(&p.offset)
            .filter(|(a, _)| **a > 0.02)
            .map(|(a, o)| {
                (
                    (mono_mass + o) / z as f64 + PROTON_MASS,
                    (a * height) as f32,
                )
            })
            .collect()
    }

    fn spectrum(parts: &[Vec<(f64, f32)>]) -> (Vec<f64>, Vec<f32>) {
        let mut all: Vec<(f64, f32)> = parts.iter().flatten().copied().collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().unzip()
    }

    #[test]
    fn absurd_masses_are_not_deconvolved() {
        // A peptide envelope beside isotope-spaced series at m/z 10⁵–10⁷: at charge 60 those
        // would be 6·10⁶–6·10⁸ Da, whose patterns take seconds to minutes to compute.
        let mut parts = vec![envelope(1500.7, 2, 1e5)];
        for mz0 in [1e5, 3e6, 1e7] {
            parts.push((0..6).map(|k| (mz0 + k as f64 / 60.0, 1e4)).collect());
        }
        let (mz, y) = spectrum(&parts);
        let params = DeconvolveParams {
            charge_max: 60,
            auto_charge: false,
            ..DeconvolveParams::default()
        };
        let mut deconvolver = Deconvolver::new(params);
        let result = deconvolver.deconvolve(&mz, &y, false);
        assert!(result
            .envelopes
            .iter()
            .any(|e| e.charge == 2 && (e.neutral_mass - 1500.7).abs() < 0.01));
        assert!(result
            .envelopes
            .iter()
            .all(|e| e.neutral_mass <= MAX_ENVELOPE_MASS));
        let heaviest = deconvolver.patterns.heaviest();
        assert!(
            heaviest <= MAX_ENVELOPE_MASS + 20.0,
            "a pattern of {heaviest} Da"
        );
    }

    #[test]
    fn a_dense_flat_comb_costs_a_few_steps_per_peak_and_charge() {
        // 200,000 equal peaks 0.009 m/z apart: isotope spacings of many charges land on the
        // comb, so without bounds every peak would walk hundreds of steps at every charge.
        let n = 200_000;
        let mz: Vec<f64> = (0..n).map(|i| 200.0 + i as f64 * 0.009).collect();
        let intensity = vec![1000f32; n];
        let mut deconvolver = Deconvolver::new(DeconvolveParams::default());
        let result = deconvolver.deconvolve(&mz, &intensity, false);
        assert_eq!(result.peak_envelope.len(), n);
        let charges = deconvolver.charges(&mz, &intensity).count() as u64;
        let per_peak_and_charge = deconvolver.walk_steps as f64 / (n as u64 * charges) as f64;
        assert!(
            per_peak_and_charge < 4.0,
            "{} steps: {per_peak_and_charge:.1} per peak and charge",
            deconvolver.walk_steps
        );
    }

    /// The shortcuts for dense spectra (searches started from m/z bins, charges searched in
    /// parallel) give what the plain search gives, envelope for envelope and peak for peak:
    /// on a merged-grid spectrum with peptides in it, and on an intact protein's charge ladder
    /// (charges extended to 60) over noise. Both shortcuts are forced on for these small
    /// spectra, the parallel search on a pool of two threads.
    #[test]
    fn dense_spectrum_shortcuts_change_nothing() {
        let mut state = 5;
        let mut merged: Vec<(f64, f32)> = (0..12_000)
            .map(|k| {
                let counts = (uniform(&mut state) * uniform(&mut state) * 12.0).floor();
                (400.0 + k as f64 * 0.005, counts as f32)
            })
            .filter(|p| p.1 > 0.0)
            .collect();
        for (mass, z) in [
            (900.4, 1),
            (1500.7, 2),
            (2300.1, 3),
            (1800.9, 2),
            (3600.2, 4),
        ] {
            merged.extend(envelope(mass, z, 150.0));
        }
        let mut ladder: Vec<(f64, f32)> = (0..3_000)
            .map(|_| {
                (
                    700.0 + 800.0 * uniform(&mut state),
                    50.0 + 200.0 * uniform(&mut state) as f32,
                )
            })
            .collect();
        for z in 10..=16 {
            ladder.extend(envelope(12_000.0, z, 1e5));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (name, peaks) in [("merged grid", merged), ("charge ladder", ladder)] {
            let (mz, y) = spectrum(&[peaks]);
            let with = |binned_from: usize, parallel_from: usize| {
                let mut deconvolver = Deconvolver::new(DeconvolveParams::default());
                deconvolver.binned_from = binned_from;
                deconvolver.parallel_from = parallel_from;
                let found = pool.install(|| deconvolver.deconvolve(&mz, &y, false));
                (found, deconvolver.walk_steps)
            };
            let (plain, plain_steps) = with(usize::MAX, usize::MAX);
            assert!(plain.envelopes.len() >= 5, "{name}: {:?}", plain.envelopes);
            let (binned, binned_steps) = with(0, usize::MAX);
            assert_eq!(binned, plain, "{name}: binned");
            assert_eq!(binned_steps, plain_steps, "{name}: binned");
            let (parallel, parallel_steps) = with(0, 0);
            assert_eq!(parallel, plain, "{name}: in parallel");
            assert_eq!(parallel_steps, plain_steps, "{name}: in parallel");
        }
    }

    /// Pseudo-random numbers in [0, 1) from `state` (a 64-bit LCG), for spectra of noise.
    fn uniform(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Only spectra whose top peaks sit in wide series of a high charge extend the charge
    /// range. Where peaks are found at any spacing by chance they must not: a merged
    /// ion-mobility spectrum (the instrument's 0.005 m/z grid repeated scan after scan, counts
    /// of a few ions, peptides in it) and a small, irregular one (a narrow scan window of a
    /// metabolite run). Both extended it, and on real files of those kinds a run was up to ten
    /// times slower and reported thousands of envelopes of charges up to 60.
    #[test]
    fn only_high_charge_envelopes_extend_the_charge_range() {
        let params = DeconvolveParams::default();
        let extended = |mz: &[f64], y: &[f32]| {
            Deconvolver::new(params.clone()).charges(mz, y) != (1..=params.charge_max)
        };
        let mut state = 7;
        let mut merged: Vec<(f64, f32)> = Vec::new();
        for k in 0..260_000 {
            for _ in 0..3 {
                let counts = (uniform(&mut state) * uniform(&mut state) * 12.0).floor();
                merged.push((200.0 + k as f64 * 0.005, counts as f32));
            }
        }
        for (mass, z) in [(1500.7, 2), (2300.1, 3), (1800.9, 2)] {
            merged.extend(envelope(mass, z, 150.0));
        }
        let (mz, y) = spectrum(&[merged]);
        assert!(!extended(&mz, &y), "a merged ion-mobility spectrum");

        let mut state = 11;
        for window in 0..20 {
            let irregular: Vec<(f64, f32)> = (0..60)
                .map(|_| {
                    let mz = 250.0 + 25.0 * uniform(&mut state);
                    (mz, (1e3 + 1e5 * uniform(&mut state).powi(3)) as f32)
                })
                .collect();
            let (mz, y) = spectrum(&[irregular]);
            assert!(!extended(&mz, &y), "irregular window {window}");
        }

        let ladder: Vec<Vec<(f64, f32)>> = (10..=16).map(|z| envelope(12_000.0, z, 1e5)).collect();
        let (mz, y) = spectrum(&ladder);
        assert!(extended(&mz, &y), "an intact protein's charge ladder");
    }

    #[test]
    fn finds_charge_and_mono_mass_of_peptide_envelopes() {
        let (mz, y) = spectrum(&[
            envelope(1500.7, 2, 1e5),
            envelope(2300.1, 3, 5e4),
            envelope(800.4, 1, 2e4),
        ]);
        let d = deconvolve(&mz, &y, &DeconvolveParams::default());
        let mut found: Vec<(i32, f64)> = d
            .envelopes
            .iter()
            .map(|e| (e.charge, e.neutral_mass))
            .collect();
        found.sort_by(|a, b| a.1.total_cmp(&b.1));
        assert_eq!(found.len(), 3, "{found:?}");
        for ((z, m), (ez, em)) in found.iter().zip([(1, 800.4), (2, 1500.7), (3, 2300.1)]) {
            assert_eq!(*z, ez);
            assert!((m - em).abs() / em < 2e-6, "{m} vs {em}");
        }
        assert!(d.peak_envelope.iter().all(|e| e.is_some()));
    }

    #[test]
    fn adducts_in_one_unbroken_comb_are_each_found() {
        // A 24.7 kDa protein and its sodium adduct (+22 Da) at charge 8: their isotope peaks
        // make one comb at 1/8 m/z spacing, and the taller adduct's walk runs through the
        // protein's peaks. Both must be found, with their own monoisotopic masses.
        let (protein, adduct) = (24_700.0, 24_722.0);
        let (mz, y) = spectrum(&[envelope(protein, 8, 6e4), envelope(adduct, 8, 1e5)]);
        let params = DeconvolveParams {
            charge_min: 8,
            charge_max: 8,
            auto_charge: false,
            ..Default::default()
        };
        let d = deconvolve(&mz, &y, &params);
        for expected in [protein, adduct] {
            assert!(
                d.envelopes.iter().any(|e| e.charge == 8
                    && ((e.neutral_mass - expected) / expected).abs() * 1e6 < 10.0),
                "{expected}: {:?}",
                d.envelopes
                    .iter()
                    .map(|e| (e.charge, e.neutral_mass))
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn missing_monoisotopic_peak_is_still_placed() {
        let mut env = envelope(4200.0, 4, 1e5);
        env.remove(0); // drop the monoisotopic peak
        let (mz, y) = spectrum(&[env]);
        let d = deconvolve(&mz, &y, &DeconvolveParams::default());
        assert_eq!(d.envelopes.len(), 1);
        assert_eq!(d.envelopes[0].charge, 4);
        assert!(
            (d.envelopes[0].neutral_mass - 4200.0).abs() < 0.01,
            "{}",
            d.envelopes[0].neutral_mass
        );
    }

    #[test]
    fn grid_points_are_the_nearest_as_rounding_gives_them() {
        let masses = (0..400_000)
            .map(|k| f64::from(k) * 0.37)
            .chain([-3.0, -0.5, 0.0, 2_999.999, 3_000.0, 19_997.5, 20_000.0, 1e6]);
        for mass in masses {
            let (tier, index) = grid_point(mass);
            let step = GRID_TIERS[tier].1;
            assert_eq!(index as f64, (mass / step).round().max(0.0), "{mass} Da");
        }
    }

    #[test]
    fn negative_mode_gives_negative_charges() {
        let p = IsotopeModel::Averagine.pattern(1800.0);
        let (mz, y): (Vec<f64>, Vec<f32>) = p
            .abundance
            .iter()
            .zip(&p.offset)
            .map(|(a, o)| ((1800.0 + o) / 2.0 - PROTON_MASS, (a * 1e4) as f32))
            .unzip();
        let d = Deconvolver::new(DeconvolveParams::default()).deconvolve(&mz, &y, true);
        assert_eq!(d.envelopes[0].charge, -2);
        assert!((d.envelopes[0].neutral_mass - 1800.0).abs() < 0.01);
    }

    #[test]
    fn degenerate_inputs_give_empty_results() {
        let p = DeconvolveParams::default();
        assert!(deconvolve(&[], &[], &p).envelopes.is_empty());
        assert!(deconvolve(&[500.0], &[1e4], &p).envelopes.is_empty());
        assert!(deconvolve(&[500.0, 500.0, 500.0], &[1.0, 1.0, 1.0], &p)
            .envelopes
            .is_empty());
        assert!(deconvolve(&[500.0, 400.0], &[1.0, 1.0], &p)
            .envelopes
            .is_empty());
        assert!(deconvolve(&[500.0, 500.5017], &[f32::NAN, 0.0], &p)
            .envelopes
            .is_empty());
        let bad = DeconvolveParams {
            charge_min: 5,
            charge_max: 2,
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("charge_min"));
        let absurd = DeconvolveParams {
            charge_max: 100_000,
            ..Default::default()
        };
        assert!(absurd.validate().is_err());
    }
}
