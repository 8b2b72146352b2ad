//! Scalar reference kernels: the oracle every vector kernel is tested against, and the fallback.

/// Pushes every `i` with `y[i] > y[i - 1] && y[i] > y[i + 1]` (strict; NaN is never a maximum),
/// for `i` in `start..end`, where `1 <= start` and `end <= y.len() - 1`.
pub fn local_maxima_range(y: &[f32], start: usize, end: usize, out: &mut Vec<u32>) {
    for i in start..end {
        let c = y[i];
        if c > y[i - 1] && c > y[i + 1] {
            out.push(i as u32);
        }
    }
}
