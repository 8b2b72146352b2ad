//! AVX2 kernels for x86-64.

use std::arch::x86_64::*;

/// AVX2 version of [`super::scalar::local_maxima_range`] over the whole interior of `y`.
///
/// # Safety
/// The CPU must support AVX2 (checked by the dispatcher).
#[target_feature(enable = "avx2")]
pub unsafe fn local_maxima(y: &[f32], out: &mut Vec<u32>) {
    let n = y.len();
    if n < 3 {
        return;
    }
    let end = n - 1; // exclusive bound on centres
    let mut i = 1;
    let ptr = y.as_ptr();
    while i + 8 <= end {
        // SAFETY: i - 1 >= 0 and i + 8 <= n - 1, so the three 8-lane loads at i - 1, i and i + 1
        // read indices i - 1 ..= i + 8 <= n - 1, all inside `y`.
        let (left, centre, right) = unsafe {
            (
                _mm256_loadu_ps(ptr.add(i - 1)),
                _mm256_loadu_ps(ptr.add(i)),
                _mm256_loadu_ps(ptr.add(i + 1)),
            )
        };
        // Ordered, quiet comparisons: false for NaN, as in the scalar kernel.
        let gt_left = _mm256_cmp_ps::<_CMP_GT_OQ>(centre, left);
        let gt_right = _mm256_cmp_ps::<_CMP_GT_OQ>(centre, right);
        let mut mask = _mm256_movemask_ps(_mm256_and_ps(gt_left, gt_right)) as u32;
        while mask != 0 {
            let lane = mask.trailing_zeros() as usize;
            out.push((i + lane) as u32);
            mask &= mask - 1;
        }
        i += 8;
    }
    super::scalar::local_maxima_range(y, i, end, out);
}
