//! NEON kernels for aarch64 (AWS Graviton).

use std::arch::aarch64::*;

/// NEON version of [`super::scalar::local_maxima_range`] over the whole interior of `y`.
///
/// # Safety
/// The CPU must support NEON (always true on aarch64 Linux; checked by the dispatcher anyway).
#[target_feature(enable = "neon")]
pub unsafe fn local_maxima(y: &[f32], out: &mut Vec<u32>) {
    let n = y.len();
    if n < 3 {
        return;
    }
    let end = n - 1;
    let mut i = 1;
    let ptr = y.as_ptr();
    let lane_bits: [u32; 4] = [1, 2, 4, 8];
    // SAFETY: reads four u32 from a local array of four.
    let bits = unsafe { vld1q_u32(lane_bits.as_ptr()) };
    while i + 4 <= end {
        // SAFETY: i - 1 >= 0 and i + 4 <= n - 1, so the loads read indices i - 1 ..= i + 4 < n.
        let (left, centre, right) = unsafe {
            (
                vld1q_f32(ptr.add(i - 1)),
                vld1q_f32(ptr.add(i)),
                vld1q_f32(ptr.add(i + 1)),
            )
        };
        // vcgtq is false for NaN operands, as in the scalar kernel.
        let is_max = vandq_u32(vcgtq_f32(centre, left), vcgtq_f32(centre, right));
        let mut mask = vaddvq_u32(vandq_u32(is_max, bits));
        while mask != 0 {
            let lane = mask.trailing_zeros() as usize;
            out.push((i + lane) as u32);
            mask &= mask - 1;
        }
        i += 4;
    }
    super::scalar::local_maxima_range(y, i, end, out);
}
