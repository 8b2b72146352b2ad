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
        // The slopes d_i do not depend on each other: computed first (`c` holds them), so only
        // one division per knot is left in the elimination's dependent chain.
        let (x, y, m, c) = (&self.x, &self.y, &mut self.m, &mut self.scratch);
        for i in 0..n - 1 {
            c[i] = (y[i + 1] - y[i]) / (x[i + 1] - x[i]);
        }
        let (mut c_before, mut m_before) = (0.0, 0.0);
        for i in 1..n - 1 {
            let h0 = x[i] - x[i - 1];
            let h1 = x[i + 1] - x[i];
            let rhs = 6.0 * (c[i] - c[i - 1]);
            let inverse = 1.0 / (2.0 * (h0 + h1) - h0 * c_before);
            c_before = h1 * inverse;
            m_before = (rhs - h0 * m_before) * inverse;
            // c[i - 1] (a slope) is no longer needed: it now holds the elimination factor.
            c[i - 1] = c_before;
            m[i] = m_before;
        }
        let mut next = m[n - 2];
        for i in (1..n - 2).rev() {
            next = m[i] - c[i - 1] * next;
            m[i] = next;
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

    /// Value at `at` on segment `j` (between knots `j` and `j + 1`).
    fn eval_in(&self, j: usize, at: f64) -> f64 {
        let h = self.x[j + 1] - self.x[j];
        let b = (at - self.x[j]) / h;
        let a = 1.0 - b;
        a * self.y[j]
            + b * self.y[j + 1]
            + ((a * a * a - a) * self.m[j] + (b * b * b - b) * self.m[j + 1]) * h * h / 6.0
    }

    /// The spline's value at `at` (extrapolated with the end segments outside the knots).
    #[cfg(test)]
    pub(crate) fn eval(&self, at: f64) -> f64 {
        self.eval_in(self.segment(at), at)
    }

    /// The spline's first derivative at `at`.
    #[cfg(test)]
    pub(crate) fn derivative(&self, at: f64) -> f64 {
        let j = self.segment(at);
        let h = self.x[j + 1] - self.x[j];
        let a = (self.x[j + 1] - at) / h;
        let b = (at - self.x[j]) / h;
        (self.y[j + 1] - self.y[j]) / h - (3.0 * a * a - 1.0) / 6.0 * h * self.m[j]
            + (3.0 * b * b - 1.0) / 6.0 * h * self.m[j + 1]
    }

    /// Local maxima of segment `j`: on it the derivative is a quadratic in the segment
    /// coordinate `b` = (x − x_j) / h, `A b² + B b + C`, solved in closed form.
    fn segment_maximum(&self, j: usize) -> Option<(f64, f64)> {
        let h = self.x[j + 1] - self.x[j];
        let (mj, mk) = (self.m[j], self.m[j + 1]);
        let slope = (self.y[j + 1] - self.y[j]) / h;
        let qa = -0.5 * h * (mj - mk);
        let qb = h * mj;
        let qc = slope - h / 6.0 * (2.0 * mj + mk);
        let mut best: Option<(f64, f64)> = None;
        let mut consider = |b: f64| {
            // A maximum: the derivative falls through zero (2 A b + B < 0).
            if (-1e-9..=1.0 + 1e-9).contains(&b) && 2.0 * qa * b + qb < 0.0 {
                let at = self.x[j] + b.clamp(0.0, 1.0) * h;
                let value = self.eval_in(j, at);
                if best.is_none_or(|(_, v)| value > v) {
                    best = Some((at, value));
                }
            }
        };
        if qa.abs() < 1e-300 {
            if qb != 0.0 {
                consider(-qc / qb);
            }
        } else {
            let disc = qb * qb - 4.0 * qa * qc;
            if disc >= 0.0 {
                // Numerically stable roots.
                let q = -0.5 * (qb + qb.signum() * disc.sqrt());
                if q != 0.0 {
                    consider(q / qa);
                    consider(qc / q);
                } else {
                    consider(-qb / (2.0 * qa));
                }
            }
        }
        best
    }

    /// Position and value of the maximum between knots `left` and `right` (indices), the
    /// highest stationary maximum of the segments in between; the highest knot if the spline
    /// has none there.
    pub(crate) fn maximum_between(&self, left: usize, right: usize) -> (f64, f64) {
        let mut best: Option<(f64, f64)> = None;
        for j in left..right {
            if let Some((at, value)) = self.segment_maximum(j) {
                if best.is_none_or(|(_, v)| value > v) {
                    best = Some((at, value));
                }
            }
        }
        best.unwrap_or_else(|| {
            let k = (left..=right)
                .max_by(|&a, &b| self.y[a].total_cmp(&self.y[b]))
                .unwrap_or(left);
            (self.x[k], self.y[k])
        })
    }

    /// Index of the knot just left of (or at) `at`.
    fn knot_before(&self, at: f64) -> usize {
        self.segment(at)
    }

    /// Segment `j` as a cubic in t = x − x_j: coefficients of 1, t, t², t³.
    fn segment_polynomial(&self, j: usize) -> [f64; 4] {
        let h = self.x[j + 1] - self.x[j];
        let (mj, mk) = (self.m[j], self.m[j + 1]);
        [
            self.y[j],
            (self.y[j + 1] - self.y[j]) / h - h * (2.0 * mj + mk) / 6.0,
            0.5 * mj,
            (mk - mj) / (6.0 * h),
        ]
    }

    /// Where the spline crosses `level` on segment `j`, between `inside` (value above `level`)
    /// and `outside` (below): Newton steps on the segment's cubic (in its power form, a few
    /// multiplications per step), kept inside the bracket by bisection when a step would
    /// leave it. Converges in a few steps where plain bisection needs dozens of evaluations.
    /// `inside_value` and `outside_value` are the spline's values at the bracket's ends (known
    /// to the caller: knots and the apex).
    fn crossing(
        &self,
        j: usize,
        level: f64,
        (inside, inside_value): (f64, f64),
        (outside, outside_value): (f64, f64),
    ) -> f64 {
        let origin = self.x[j];
        let h = self.x[j + 1] - origin;
        // Newton stops once a step is below this; the error left is then about the square of
        // that step over h: below 1e-9 of h, far below what an f32 FWHM holds.
        let tolerance = 3e-5 * h;
        let [c0, c1, c2, c3] = self.segment_polynomial(j);
        let c0 = c0 - level;
        let value = |t: f64| ((c3 * t + c2) * t + c1) * t + c0;
        let slope = |t: f64| (3.0 * c3 * t + 2.0 * c2) * t + c1;
        let (mut inside, mut outside) = (inside - origin, outside - origin);
        // Start from the straight line between the bracket's ends.
        let (f_in, f_out) = (inside_value - level, outside_value - level);
        let mut t = if f_in > f_out {
            inside + (outside - inside) * f_in / (f_in - f_out)
        } else {
            0.5 * (inside + outside)
        };
        for _ in 0..60 {
            let f = value(t);
            if f >= 0.0 {
                inside = t;
            } else {
                outside = t;
            }
            if (outside - inside).abs() <= tolerance || f == 0.0 {
                break;
            }
            let step = f / slope(t);
            let newton = t - step;
            let (lo, hi) = if inside < outside {
                (inside, outside)
            } else {
                (outside, inside)
            };
            if step.abs() <= tolerance {
                // Converged (possibly onto an end of the bracket).
                return origin + newton.clamp(lo, hi);
            }
            t = if newton > lo && newton < hi {
                newton
            } else {
                0.5 * (inside + outside)
            };
        }
        origin + 0.5 * (inside + outside)
    }

    /// Full width at half maximum around the apex: on each side, the first knot below half
    /// height bounds the segment where the spline crosses it, solved there (`crossing`). Where
    /// the spline does not fall to half height inside the knots, the outermost knot is taken
    /// (an underestimate).
    pub(crate) fn fwhm(&self, apex_x: f64, apex_y: f64) -> f64 {
        let half = apex_y / 2.0;
        let n = self.x.len();
        let apex_segment = self.knot_before(apex_x);
        let crossing =
            |j: usize, from: (f64, f64), to: (f64, f64)| self.crossing(j, half, from, to);
        // Left side: knots apex_segment, apex_segment - 1, ...
        let mut left = self.x[0];
        let mut k = apex_segment as isize;
        let mut inner = (apex_x, apex_y);
        while k >= 0 {
            let ku = k as usize;
            if self.y[ku] < half {
                left = crossing(ku.min(n - 2), inner, (self.x[ku], self.y[ku]));
                break;
            }
            inner = (self.x[ku], self.y[ku]);
            k -= 1;
        }
        // Right side: knots apex_segment + 1, ...
        let mut right = self.x[n - 1];
        let mut inner = (apex_x, apex_y);
        for ku in apex_segment + 1..n {
            if self.y[ku] < half {
                right = crossing(ku - 1, inner, (self.x[ku], self.y[ku]));
                break;
            }
            inner = (self.x[ku], self.y[ku]);
        }
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

    /// The Newton crossing agrees with plain bisection on the same segment.
    #[test]
    fn half_height_crossings_match_bisection() {
        let mut s = NaturalSpline::default();
        for (k, centre) in [150.01, 500.0123, 1234.567, 1999.9].into_iter().enumerate() {
            let sigma = 0.002 + 0.001 * k as f64;
            let x: Vec<f64> = (-4..=4)
                .map(|i| centre + 0.00037 * k as f64 + i as f64 * 0.6 * sigma)
                .collect();
            s.fit(
                &x,
                x.iter()
                    .map(|v| 1e5 * (-(v - centre).powi(2) / (2.0 * sigma * sigma)).exp()),
            );
            let (apex, height) = s.maximum_between(3, 5);
            let half = height / 2.0;
            let bisect = |j: usize, mut inside: f64, mut outside: f64| {
                for _ in 0..200 {
                    let mid = 0.5 * (inside + outside);
                    if s.eval_in(j, mid) >= half {
                        inside = mid;
                    } else {
                        outside = mid;
                    }
                }
                0.5 * (inside + outside)
            };
            let j_right = (0..x.len() - 1)
                .find(|&j| x[j] > apex && s.y[j + 1] < half)
                .unwrap();
            let j_left = (0..x.len() - 1)
                .rev()
                .find(|&j| x[j + 1] < apex && s.y[j] < half)
                .unwrap();
            for (j, inside, outside) in [
                (j_right, x[j_right], x[j_right + 1]),
                (j_left, x[j_left + 1], x[j_left]),
            ] {
                let value = |at: f64| (at, s.eval_in(j, at));
                let newton = s.crossing(j, half, value(inside), value(outside));
                let reference = bisect(j, inside, outside);
                assert!(
                    (newton - reference).abs() <= 2e-9 * centre,
                    "{centre}: {newton} vs {reference}"
                );
                assert!((s.eval_in(j, newton) - half).abs() / height < 1e-6);
            }
        }
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
        let (at, height) = s.maximum_between(2, 4);
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
