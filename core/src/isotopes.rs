//! Isotopic patterns: an "average building block" composition (averagine and its relatives)
//! scaled to any mass, and its isotope distribution computed exactly by convolving the
//! elements' isotope distributions.
//!
//! Each aggregated isotope peak (0, +1, +2 ... neutrons) carries its abundance and its exact
//! mean mass offset from the monoisotopic peak (the fine structure averaged), so positions are
//! right to a few ppm even for large proteins where the spacing drifts from 1.00335 Da.

use serde::{Deserialize, Serialize};

/// Mass of a proton, Da.
pub const PROTON_MASS: f64 = 1.007_276_466_812;
/// Mass difference between ¹³C and ¹²C, Da: the nominal isotope spacing.
pub const NEUTRON_SHIFT: f64 = 1.003_354_837_8;

#[derive(Debug, Clone, Copy)]
struct Element {
    /// (mass, abundance) of each stable isotope, lightest first.
    isotopes: &'static [(f64, f64)],
}

const CARBON: Element = Element {
    isotopes: &[(12.0, 0.9893), (13.003_354_837_8, 0.0107)],
};
const HYDROGEN: Element = Element {
    isotopes: &[(1.007_825_032_07, 0.999_885), (2.014_101_777_8, 0.000_115)],
};
const NITROGEN: Element = Element {
    isotopes: &[(14.003_074_004_8, 0.996_36), (15.000_108_898_2, 0.003_64)],
};
const OXYGEN: Element = Element {
    isotopes: &[
        (15.994_914_619_56, 0.997_57),
        (16.999_131_70, 0.000_38),
        (17.999_161_0, 0.002_05),
    ],
};
const SULFUR: Element = Element {
    isotopes: &[
        (31.972_071_00, 0.9499),
        (32.971_458_76, 0.0075),
        (33.967_866_90, 0.0425),
        (35.967_080_76, 0.0001),
    ],
};
const PHOSPHORUS: Element = Element {
    isotopes: &[(30.973_761_63, 1.0)],
};

const ELEMENTS: [Element; 6] = [CARBON, HYDROGEN, NITROGEN, OXYGEN, SULFUR, PHOSPHORUS];

/// The composition family used to predict isotopic patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IsotopeModel {
    /// Peptides and proteins: Senko's averagine, C4.9384 H7.7583 N1.3577 O1.4773 S0.0417.
    #[default]
    Averagine,
    /// N-glycans: C7 H11.8333 N0.5 O5.16666.
    Glycan,
    /// Glycopeptides: C10.93 H15.75 N1.6577 O6.4773 S0.02054.
    Glycopeptide,
    /// DNA/RNA: C10 H12.75 N3.75 O6 P1.
    Nucleotide,
}

impl IsotopeModel {
    /// Atoms of C, H, N, O, S, P in one building block.
    fn unit(self) -> [f64; 6] {
        match self {
            IsotopeModel::Averagine => [4.9384, 7.7583, 1.3577, 1.4773, 0.0417, 0.0],
            IsotopeModel::Glycan => [7.0, 11.8333, 0.5, 5.16666, 0.0, 0.0],
            IsotopeModel::Glycopeptide => [10.93, 15.75, 1.6577, 6.4773, 0.02054, 0.0],
            IsotopeModel::Nucleotide => [10.0, 12.75, 3.75, 6.0, 0.0, 1.0],
        }
    }

    /// An elemental formula (C, H, N, O, S, P counts) with the given monoisotopic mass,
    /// hydrogens adjusting the remainder.
    pub fn formula_for(self, mono_mass: f64) -> [u32; 6] {
        let unit = self.unit();
        let unit_mass: f64 = unit
            .iter()
            .zip(ELEMENTS)
            .map(|(n, e)| n * e.isotopes[0].0)
            .sum();
        let units = (mono_mass / unit_mass).max(0.0);
        let mut counts: [u32; 6] = unit.map(|n| (n * units).round() as u32);
        let mass: f64 = counts
            .iter()
            .zip(ELEMENTS)
            .map(|(&n, e)| n as f64 * e.isotopes[0].0)
            .sum();
        let hydrogens = counts[1] as f64 + ((mono_mass - mass) / HYDROGEN.isotopes[0].0).round();
        counts[1] = hydrogens.max(0.0) as u32;
        counts
    }

    /// The isotopic pattern of a molecule of this family with the given monoisotopic mass.
    pub fn pattern(self, mono_mass: f64) -> IsotopePattern {
        IsotopePattern::of_formula(&self.formula_for(mono_mass))
    }
}

/// An isotope distribution: for 0, 1, 2 ... extra neutrons, the relative abundance (the
/// largest is 1) and the mean mass offset from the monoisotopic peak, in Da.
#[derive(Debug, Clone, PartialEq)]
pub struct IsotopePattern {
    /// Relative abundance, the most abundant peak = 1.
    pub abundance: Vec<f64>,
    /// Mean mass offset from the monoisotopic peak, Da.
    pub offset: Vec<f64>,
}

/// Distribution as (probability, probability-weighted mass offset) per neutron count.
#[derive(Debug, Clone)]
struct Distribution {
    p: Vec<f64>,
    w: Vec<f64>,
}

impl Distribution {
    fn unit() -> Distribution {
        Distribution {
            p: vec![1.0],
            w: vec![0.0],
        }
    }

    fn of_atom(element: Element) -> Distribution {
        let base = element.isotopes[0].0;
        let width = element
            .isotopes
            .iter()
            .map(|(m, _)| (m - base).round() as usize)
            .max()
            .unwrap_or(0)
            + 1;
        let mut d = Distribution {
            p: vec![0.0; width],
            w: vec![0.0; width],
        };
        for &(mass, abundance) in element.isotopes {
            let k = (mass - base).round() as usize;
            d.p[k] += abundance;
            d.w[k] += abundance * (mass - base);
        }
        d
    }

    fn convolve(&self, other: &Distribution, max_len: usize) -> Distribution {
        let len = (self.p.len() + other.p.len() - 1).min(max_len);
        let mut out = Distribution {
            p: vec![0.0; len],
            w: vec![0.0; len],
        };
        for (i, (&pi, &wi)) in self.p.iter().zip(&self.w).enumerate() {
            if pi == 0.0 {
                continue;
            }
            for (j, (&qj, &vj)) in other.p.iter().zip(&other.w).enumerate() {
                if i + j >= len {
                    break;
                }
                out.p[i + j] += pi * qj;
                out.w[i + j] += wi * qj + pi * vj;
            }
        }
        out
    }

    fn power(mut base: Distribution, mut n: u32, max_len: usize) -> Distribution {
        let mut result = Distribution::unit();
        while n > 0 {
            if n & 1 == 1 {
                result = result.convolve(&base, max_len);
            }
            n >>= 1;
            if n > 0 {
                base = base.convolve(&base, max_len);
            }
        }
        result
    }
}

impl IsotopePattern {
    /// The pattern of an elemental formula (C, H, N, O, S, P counts), keeping peaks down to
    /// 0.1% of the most abundant.
    pub fn of_formula(counts: &[u32; 6]) -> IsotopePattern {
        let mass: f64 = counts
            .iter()
            .zip(ELEMENTS)
            .map(|(&n, e)| n as f64 * e.isotopes[0].0)
            .sum();
        // Enough peaks for the distribution's bulk: mean + 8 sd (about 0.0006 * mass), + margin.
        let spread = (mass * 0.000_6).sqrt();
        let max_len = (mass * 0.000_6 + 8.0 * spread + 8.0).ceil() as usize;
        let mut total = Distribution::unit();
        for (&n, element) in counts.iter().zip(ELEMENTS) {
            if n > 0 {
                total = total.convolve(
                    &Distribution::power(Distribution::of_atom(element), n, max_len),
                    max_len,
                );
            }
        }
        let top = total.p.iter().cloned().fold(0.0f64, f64::max);
        let keep = total
            .p
            .iter()
            .rposition(|&p| p >= 1e-3 * top)
            .map_or(1, |i| i + 1);
        IsotopePattern {
            abundance: total.p[..keep].iter().map(|p| p / top).collect(),
            offset: total.p[..keep]
                .iter()
                .zip(&total.w)
                .map(|(&p, &w)| if p > 0.0 { w / p } else { 0.0 })
                .collect(),
        }
    }

    /// Index of the most abundant peak.
    pub fn most_abundant(&self) -> usize {
        self.abundance
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i)
    }

    /// Abundance-weighted mean offset (average mass minus monoisotopic mass).
    pub fn average_offset(&self) -> f64 {
        let total: f64 = self.abundance.iter().sum();
        self.abundance
            .iter()
            .zip(&self.offset)
            .map(|(a, o)| a * o)
            .sum::<f64>()
            / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_molecule_pattern_matches_known_values() {
        // Angiotensin II, C50 H71 N13 O12: M+1/M ≈ 0.63 (13C dominates), mono 1045.5345.
        let p = IsotopePattern::of_formula(&[50, 71, 13, 12, 0, 0]);
        assert_eq!(p.most_abundant(), 0);
        assert!((p.abundance[1] - 0.618).abs() < 0.02, "{:?}", p.abundance);
        assert!((p.offset[1] - 1.0030).abs() < 0.002, "{:?}", p.offset);
    }

    #[test]
    fn protein_pattern_peaks_later_and_has_sensible_average_mass() {
        // Horse heart myoglobin-sized averagine: ~17 kDa peaks about 10-11 isotopes up and the
        // average mass exceeds the monoisotopic by ~10.7 Da.
        let p = IsotopeModel::Averagine.pattern(16_940.96);
        let top = p.most_abundant();
        assert!((9..=12).contains(&top), "{top}");
        let avg = p.average_offset();
        assert!((avg - 10.7).abs() < 0.5, "{avg}");
        // Spacing between aggregated peaks is a little below the 13C shift.
        let spacing = p.offset[top + 1] - p.offset[top];
        assert!(spacing > 1.001 && spacing < NEUTRON_SHIFT, "{spacing}");
    }

    #[test]
    fn formula_reproduces_the_requested_mass() {
        for mass in [500.0, 2_345.6, 18_000.0, 60_000.0] {
            let f = IsotopeModel::Averagine.formula_for(mass);
            let m: f64 = f
                .iter()
                .zip(ELEMENTS)
                .map(|(&n, e)| n as f64 * e.isotopes[0].0)
                .sum();
            assert!((m - mass).abs() < 1.0, "{mass} -> {m}");
        }
        let dna = IsotopeModel::Nucleotide.formula_for(3000.0);
        assert!(dna[5] > 5);
    }
}
