//! A natural cubic spline through a handful of points, evaluated in place without allocation.

/// Natural cubic spline (second derivative zero at both ends) through `x` (strictly increasing)
/// and `y`. Holds its own buffers so a centroider can reuse it across peaks.
#[derive(Debug, Default)]
pub(crate) struct NaturalSpline {
    x: Vec<f64>,
    y: Vec<f64>,
    /// Second derivatives at the knots.
    m: Vec<f64>,
    scratch: Vec<f64>,
}

impl NaturalSpline {
    /// Refits the spline through the given knots. Needs at least three points.
    pub(crate) fn fit(&mut self, x: &[f64], y: impl Iterator<Item = f64>) {
        let n = x.len();
        self.x.clear();
        self.x.extend_from_slice(x);
        self.y.clear();
        self.y.extend(y);
        debug_assert_eq!(self.y.len(), n);
        self.m.clear();
        self.m.resize(n, 0.0);
        self.scratch.clear();
        self.scratch.resize(n, 0.0);
        if n < 3 {
            return;
        }
        // Tridiagonal system for interior second derivatives (Thomas algorithm).
        // h_i M_{i-1} + 2(h_i + h_{i+1}) M_i + h_{i+1} M_{i+1} = 6 (d_{i+1} - d_i)
        let (x, y, m, c) = (&self.x, &self.y, &mut self.m, &mut self.scratch);
        for i in 1..n - 1 {
            let h0 = x[i] - x[i - 1];
            let h1 = x[i + 1] - x[i];
            let rhs = 6.0 * ((y[i + 1] - y[i]) / h1 - (y[i] - y[i - 1]) / h0);
            let diag = 2.0 * (h0 + h1);
            if i == 1 {
                c[i] = h1 / diag;
                m[i] = rhs / diag;
            } else {
                let denom = diag - h0 * c[i - 1];
                c[i] = h1 / denom;
                m[i] = (rhs - h0 * m[i - 1]) / denom;
            }
        }
        for i in (1..n - 2).rev() {
            let next = m[i + 1];
            m[i] -= c[i] * next;
        }
        m[0] = 0.0;
        m[n - 1] = 0.0;
    }

    fn segment(&self, at: f64) -> usize {
        let n = self.x.len();
        // Few knots: a linear scan beats a binary search.
        let mut j = 0;
        while j + 2 < n && at > self.x[j + 1] {
            j += 1;
        }
        j
    }

    /// The spline's value at `at` (extrapolated with the end segments outside the knots).
    pub(crate) fn eval(&self, at: f64) -> f64 {
        let j = self.segment(at);
        let h = self.x[j + 1] - self.x[j];
        let a = (self.x[j + 1] - at) / h;
        let b = (at - self.x[j]) / h;
        a * self.y[j]
            + b * self.y[j + 1]
            + ((a * a * a - a) * self.m[j] + (b * b * b - b) * self.m[j + 1]) * h * h / 6.0
    }

    /// The spline's first derivative at `at`.
    pub(crate) fn derivative(&self, at: f64) -> f64 {
        let j = self.segment(at);
        let h = self.x[j + 1] - self.x[j];
        let a = (self.x[j + 1] - at) / h;
        let b = (at - self.x[j]) / h;
        (self.y[j + 1] - self.y[j]) / h - (3.0 * a * a - 1.0) / 6.0 * h * self.m[j]
            + (3.0 * b * b - 1.0) / 6.0 * h * self.m[j + 1]
    }

    /// Position and value of the maximum between `left` and `right`, by bisection on the
    /// derivative down to an interval of `tolerance`.
    pub(crate) fn maximum(&self, left: f64, right: f64, tolerance: f64) -> (f64, f64) {
        let (mut lo, mut hi) = (left, right);
        for _ in 0..200 {
            if hi - lo <= tolerance {
                break;
            }
            let mid = 0.5 * (lo + hi);
            let slope = self.derivative(mid);
            if slope.abs() <= f64::EPSILON {
                lo = mid;
                hi = mid;
                break;
            }
            if slope < 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let at = 0.5 * (lo + hi);
        (at, self.eval(at))
    }

    /// Full width at half maximum around the apex, found by bisection on each side between the
    /// apex and the outermost knot. Where the spline does not fall to half height inside the
    /// knots, the outermost knot is taken (an underestimate).
    pub(crate) fn fwhm(&self, apex_x: f64, apex_y: f64) -> f64 {
        let half = apex_y / 2.0;
        let tolerance = 0.01 * half.abs();
        let side = |outer: f64| -> f64 {
            if self.eval(outer) > half {
                return outer;
            }
            let (mut far, mut near) = (outer, apex_x);
            let mut mid = outer;
            for _ in 0..100 {
                mid = 0.5 * (far + near);
                let value = self.eval(mid);
                if (value - half).abs() <= tolerance {
                    break;
                }
                if value < half {
                    far = mid;
                } else {
                    near = mid;
                }
            }
            mid
        };
        let left = side(self.x[0]);
        let right = side(self.x[self.x.len() - 1]);
        (right - left).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_knots_and_is_natural() {
        let x = [1.0, 2.0, 3.0, 4.5, 5.0];
        let y = [1.0, 4.0, 2.0, 3.0, 0.0];
        let mut s = NaturalSpline::default();
        s.fit(&x, y.iter().copied());
        for (xi, yi) in x.iter().zip(y) {
            assert!((s.eval(*xi) - yi).abs() < 1e-12);
        }
        assert_eq!(s.m[0], 0.0);
        assert_eq!(s.m[4], 0.0);
    }

    #[test]
    fn reproduces_a_straight_line_exactly() {
        let x = [0.0, 0.3, 1.0, 1.7];
        let mut s = NaturalSpline::default();
        s.fit(&x, x.iter().map(|v| 2.0 * v + 1.0));
        assert!((s.eval(0.5) - 2.0).abs() < 1e-12);
        assert!((s.derivative(1.2) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn finds_the_apex_of_a_sampled_gaussian() {
        let centre = 500.0123;
        let sigma = 0.004;
        let x: Vec<f64> = (-3..=3)
            .map(|k| centre - 0.0011 + k as f64 * 0.003)
            .collect();
        let mut s = NaturalSpline::default();
        s.fit(
            &x,
            x.iter()
                .map(|v| 1e6 * (-(v - centre).powi(2) / (2.0 * sigma * sigma)).exp()),
        );
        let (at, height) = s.maximum(x[2], x[4], 1e-7);
        assert!((at - centre).abs() / centre < 1e-6, "apex {at}");
        assert!((height - 1e6).abs() / 1e6 < 0.03, "height {height}");
        let fwhm = s.fwhm(at, height);
        let expected = 2.3548 * sigma;
        assert!(
            (fwhm - expected).abs() / expected < 0.1,
            "fwhm {fwhm} vs {expected}"
        );
    }
}
