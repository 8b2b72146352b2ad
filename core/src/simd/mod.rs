//! Vector kernels chosen at run time, with a scalar reference for each.
//!
//! The backend is detected once per process (AVX2 on x86-64, NEON on aarch64, scalar
//! elsewhere). Setting the environment variable `MZFORGE_SIMD=scalar` forces the scalar
//! kernels, so both paths can be run and compared on one machine.

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

/// A family of kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Plain Rust loops: the reference.
    Scalar,
    /// 256-bit AVX2 (x86-64).
    Avx2,
    /// 128-bit NEON (aarch64).
    Neon,
}

impl Backend {
    /// The best backend this CPU supports, unless `MZFORGE_SIMD=scalar` is set.
    pub fn detect() -> Backend {
        static DETECTED: OnceLock<Backend> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            if std::env::var("MZFORGE_SIMD").is_ok_and(|v| v.eq_ignore_ascii_case("scalar")) {
                return Backend::Scalar;
            }
            Backend::best_supported()
        })
    }

    /// The best backend this CPU supports, ignoring the environment.
    pub fn best_supported() -> Backend {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Backend::Avx2;
        }
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("neon") {
            return Backend::Neon;
        }
        Backend::Scalar
    }

    /// Whether this CPU can run the backend.
    pub fn is_supported(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "aarch64")]
            Backend::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Lower-case name, as printed in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Neon => "neon",
        }
    }
}

/// Appends to `out` the index of every strict local maximum of `y` (`y[i] > y[i-1]` and
/// `y[i] > y[i+1]`, never the first or last point, never NaN), in increasing order.
///
/// A backend the CPU lacks falls back to scalar.
pub fn local_maxima(backend: Backend, y: &[f32], out: &mut Vec<u32>) {
    if y.len() < 3 {
        return;
    }
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 if backend.is_supported() => {
            // SAFETY: AVX2 support was just checked.
            unsafe { x86::local_maxima(y, out) }
        }
        #[cfg(target_arch = "aarch64")]
        Backend::Neon if backend.is_supported() => {
            // SAFETY: NEON support was just checked.
            unsafe { aarch64::local_maxima(y, out) }
        }
        _ => scalar::local_maxima_range(y, 1, y.len() - 1, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(y: &[f32]) -> Vec<u32> {
        let mut out = Vec::new();
        if y.len() >= 3 {
            scalar::local_maxima_range(y, 1, y.len() - 1, &mut out);
        }
        out
    }

    #[test]
    fn finds_maxima_and_ignores_plateaus_and_edges() {
        let y = [5.0, 1.0, 3.0, 1.0, 2.0, 2.0, 1.0, 0.0, 4.0];
        assert_eq!(reference(&y), vec![2]);
        let mut out = Vec::new();
        local_maxima(Backend::detect(), &y, &mut out);
        assert_eq!(out, vec![2]);
    }

    #[test]
    fn nan_is_never_a_maximum() {
        let y = [
            0.0,
            f32::NAN,
            0.0,
            1.0,
            0.0,
            2.0,
            f32::NAN,
            1.0,
            3.0,
            1.0,
            0.0,
            5.0,
            0.0,
        ];
        let mut out = Vec::new();
        local_maxima(Backend::best_supported(), &y, &mut out);
        assert_eq!(out, reference(&y));
        assert_eq!(out, vec![3, 8, 11]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn vector_kernel_equals_scalar(y in prop::collection::vec(
            prop_oneof![Just(0.0f32), 0.0f32..10.0, Just(f32::NAN), Just(-1.0f32)], 0..200)) {
            let mut out = Vec::new();
            local_maxima(Backend::best_supported(), &y, &mut out);
            prop_assert_eq!(out, reference(&y));
        }
    }
}
