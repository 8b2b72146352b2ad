//! MS-Numpress decoding: linear prediction (m/z), short logged float (SLOF, intensities) and
//! positive integer compression (PIC, intensities).
//!
//! `mzdata` does not decode PIC, and formatting a decoding error of the `numpress-rs` crate it
//! uses for the other two overflows the stack (its `Display` calls itself), so every Numpress
//! array is decoded here and a corrupt one is an ordinary error.
//!
//! PIC stores each value, rounded to a non-negative integer, as half-bytes: a head half-byte
//! saying how many leading half-bytes are zero (0–8) or all ones (9–15, i.e. 8 + n), then the
//! remaining half-bytes, least significant first. Two half-bytes per byte, high half first; an
//! odd count is padded with a zero half-byte (a lone head 0 cannot start a value, while a
//! lone head 8 is the value 0). Linear stores a big-endian f64 fixed point, the first two
//! values as 4-byte little-endian integers, then each next value as the PIC-coded residue from
//! a linear extrapolation of the two before it. SLOF stores the fixed point, then each value
//! as a 2-byte little-endian `ln(x + 1) * fixed point`. This follows the reference
//! implementation (ms-numpress, `MSNumpress.cpp`).

/// The three Numpress codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Linear,
    Slof,
    Pic,
}

impl Codec {
    /// How many values `data` decodes to (an upper bound for corrupt data), without decoding.
    pub fn count(self, data: &[u8]) -> usize {
        match self {
            Codec::Linear => count_linear(data),
            Codec::Slof => count_slof(data),
            Codec::Pic => count_pic(data),
        }
    }

    /// Decodes `data`, or says what is corrupt.
    pub fn decode(self, data: &[u8]) -> Result<Vec<f64>, String> {
        match self {
            Codec::Linear => decode_linear(data),
            Codec::Slof => decode_slof(data),
            Codec::Pic => decode_pic(data),
        }
    }
}

/// Reads half-bytes, high half of each byte first.
struct HalfBytes<'a> {
    data: &'a [u8],
    at: usize,
    low: bool,
}

impl<'a> HalfBytes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            at: 0,
            low: false,
        }
    }

    fn next(&mut self) -> Option<u8> {
        let byte = *self.data.get(self.at)?;
        let value = if self.low {
            self.at += 1;
            byte & 0xf
        } else {
            byte >> 4
        };
        self.low = !self.low;
        Some(value)
    }

    /// True when only a padding half-byte (a low zero in the last byte) is left, or nothing.
    fn at_end(&self) -> bool {
        self.at >= self.data.len()
            || (self.at == self.data.len() - 1 && self.low && self.data[self.at] & 0xf == 0)
    }

    /// One PIC-coded 32-bit integer.
    fn next_int(&mut self, what: &str) -> Result<u32, String> {
        let truncated = || format!("corrupt Numpress {what} data: truncated value");
        let head = self.next().ok_or_else(truncated)?;
        let (leading, mut value) = if head <= 8 {
            (head as u32, 0u32)
        } else {
            let n = (head - 8) as u32;
            let ones = (0..n).fold(0u32, |acc, i| acc | (0xf000_0000u32 >> (4 * i)));
            (n, ones)
        };
        for i in leading..8 {
            let half = self.next().ok_or_else(truncated)?;
            value |= (half as u32) << ((i - leading) * 4);
        }
        Ok(value)
    }
}

/// Decodes PIC bytes into values.
pub fn decode_pic(data: &[u8]) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(data.len());
    let mut halves = HalfBytes::new(data);
    while !halves.at_end() {
        out.push(halves.next_int("PIC")? as f64);
    }
    Ok(out)
}

/// Decodes linear-prediction bytes into values.
pub fn decode_linear(data: &[u8]) -> Result<Vec<f64>, String> {
    if data.is_empty() || data.len() == 8 {
        return Ok(Vec::new());
    }
    let fixed_point = fixed_point(data, "linear")?;
    let first_int = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
            .ok_or_else(|| format!("corrupt Numpress linear data: {} bytes", data.len()))
    };
    let mut out = Vec::with_capacity(count_linear(data));
    let first = first_int(8)?;
    out.push(first as f64 / fixed_point);
    if data.len() == 12 {
        return Ok(out);
    }
    let second = first_int(12)?;
    out.push(second as f64 / fixed_point);
    let (mut before, mut last) = (first, second);
    let mut halves = HalfBytes::new(&data[16..]);
    while !halves.at_end() {
        let residue = halves.next_int("linear")? as i32 as i64;
        let next = last
            .wrapping_add(last.wrapping_sub(before))
            .wrapping_add(residue);
        out.push(next as f64 / fixed_point);
        (before, last) = (last, next);
    }
    Ok(out)
}

/// Decodes SLOF bytes into values.
pub fn decode_slof(data: &[u8]) -> Result<Vec<f64>, String> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let fixed_point = fixed_point(data, "SLOF")?;
    let values = &data[8..];
    if values.len() % 2 != 0 {
        return Err(format!(
            "corrupt Numpress SLOF data: odd byte count {}",
            data.len()
        ));
    }
    Ok(values
        .chunks_exact(2)
        .map(|pair| (u16::from_le_bytes([pair[0], pair[1]]) as f64 / fixed_point).exp() - 1.0)
        .collect())
}

fn fixed_point(data: &[u8], what: &str) -> Result<f64, String> {
    let bytes: [u8; 8] = data
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("corrupt Numpress {what} data: no fixed point"))?;
    let fixed_point = f64::from_be_bytes(bytes);
    // An all-zero array is encoded with an infinite fixed point; NaN or non-positive is corrupt.
    if fixed_point > 0.0 {
        Ok(fixed_point)
    } else {
        Err(format!(
            "corrupt Numpress {what} data: fixed point {fixed_point}"
        ))
    }
}

/// How many values [`decode_pic`] would produce from `data` (at most one more for corrupt
/// data), without decoding them: a bound checked before any memory is committed.
pub fn count_pic(data: &[u8]) -> usize {
    // Every value is a head half-byte (0-8 leading zeros, 9-15 leading ones) followed by
    // 8 - leading half-bytes.
    let halves = data.len() * 2;
    let mut at = 0usize;
    let mut count = 0usize;
    while at < halves {
        let byte = data[at / 2];
        let head = if at % 2 == 0 { byte >> 4 } else { byte & 0xf };
        let leading = if head <= 8 { head } else { head - 8 } as usize;
        at += 1 + 8usize.saturating_sub(leading);
        count += 1;
    }
    count
}

/// How many values an MS-Numpress linear array of `data` bytes holds (an upper bound, exact
/// for well-formed data): an 8-byte fixed point, two 4-byte values, then PIC-style
/// half-byte residues.
pub fn count_linear(data: &[u8]) -> usize {
    match data.len() {
        0..=11 => 0,
        12..=15 => 1,
        _ => 2 + count_pic(&data[16..]),
    }
}

/// How many values an MS-Numpress SLOF array of `data` bytes holds: an 8-byte fixed point,
/// then two bytes per value.
pub fn count_slof(data: &[u8]) -> usize {
    data.len().saturating_sub(8) / 2
}

/// Encodes values with PIC (for tests and for writing).
pub fn encode_pic(values: &[f64]) -> Vec<u8> {
    let mut halves: Vec<u8> = Vec::with_capacity(values.len() * 3);
    for &v in values {
        let x = v.round().clamp(0.0, u32::MAX as f64) as u32;
        let mask = 0xf000_0000u32;
        let (head, leading) = if x & mask == 0 {
            let l = (0..8).find(|&i| x & (mask >> (4 * i)) != 0).unwrap_or(8);
            (l as u8, l)
        } else if x & mask == mask {
            let l = (0..8)
                .find(|&i| x & (mask >> (4 * i)) != (mask >> (4 * i)))
                .unwrap_or(7);
            (l as u8 + 8, l)
        } else {
            (0, 0)
        };
        halves.push(head);
        for i in leading..8 {
            halves.push(((x >> (4 * (i - leading))) & 0xf) as u8);
        }
    }
    if halves.len() % 2 == 1 {
        halves.push(0x0);
    }
    halves
        .chunks(2)
        .map(|pair| (pair[0] << 4) | pair[1])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_small_and_large_integers() {
        let values = [
            0.0,
            1.0,
            15.0,
            16.0,
            255.0,
            1e6,
            4294967295.0,
            12.4,
            3.6,
            0.0,
        ];
        let decoded = decode_pic(&encode_pic(&values)).unwrap();
        let expected: Vec<f64> = values.iter().map(|v| v.round()).collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn truncated_data_is_an_error_not_a_panic() {
        let bytes = encode_pic(&[123456.0, 7.0]);
        assert!(decode_pic(&bytes[..1]).is_err());
        assert!(decode_pic(&[0x0f]).is_err());
    }

    /// m/z-like values: sorted, positive, a few decimals.
    fn sorted_mz() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0.0f64..5.0, 0..200).prop_map(|steps| {
            steps
                .iter()
                .scan(100.0, |mz, step| {
                    *mz += step;
                    Some(*mz)
                })
                .collect()
        })
    }

    #[test]
    fn short_and_empty_arrays_decode_to_what_they_hold() {
        assert_eq!(decode_linear(&[]).unwrap(), Vec::<f64>::new());
        assert_eq!(decode_slof(&[]).unwrap(), Vec::<f64>::new());
        let one = numpress_rs::numpress_compress(&[123.25], 1000.0).unwrap();
        assert_eq!(decode_linear(&one).unwrap(), vec![123.25]);
        let mut slof = Vec::new();
        numpress_rs::encode_slof(&[0.0f64; 3], &mut slof, 1000.0).unwrap();
        assert_eq!(decode_slof(&slof).unwrap(), vec![0.0; 3]);
    }

    #[test]
    fn corrupt_linear_and_slof_data_are_errors_not_panics() {
        let good = numpress_rs::numpress_compress(&[100.0, 100.5, 101.25, 250.0], 1e5).unwrap();
        assert!(decode_linear(&good[..5]).is_err()); // no fixed point
        assert!(decode_linear(&good[..10]).is_err()); // half a first value
        assert!(decode_linear(&good[..good.len() - 1]).is_err()); // a residue cut short
        let mut nan = good.clone();
        nan[..8].copy_from_slice(&f64::NAN.to_be_bytes());
        assert!(decode_linear(&nan).is_err());
        let mut slof = Vec::new();
        numpress_rs::encode_slof(&[1.0f64, 2.0], &mut slof, 1000.0).unwrap();
        assert!(decode_slof(&slof[..slof.len() - 1]).is_err()); // odd byte count
        assert!(decode_slof(&slof[..4]).is_err());
    }

    proptest! {
        #[test]
        fn linear_matches_the_reference_encoder(mz in sorted_mz()) {
            let fixed_point = numpress_rs::optimal_scaling(&mz);
            let bytes = numpress_rs::numpress_compress(&mz, fixed_point).unwrap();
            let decoded = decode_linear(&bytes).unwrap();
            prop_assert_eq!(decoded.len(), mz.len());
            prop_assert!(count_linear(&bytes) >= mz.len() && count_linear(&bytes) <= mz.len() + 1);
            for (a, b) in decoded.iter().zip(&mz) {
                prop_assert!((a - b).abs() <= 1.0 / fixed_point, "{} vs {}", a, b);
            }
        }

        #[test]
        fn slof_matches_the_reference_encoder(
            intensities in prop::collection::vec(0.0f64..1e9, 0..200)
        ) {
            let fixed_point = numpress_rs::optimal_slof_fixed_point(&intensities);
            let mut bytes = Vec::new();
            numpress_rs::encode_slof(&intensities, &mut bytes, fixed_point).unwrap();
            let decoded = decode_slof(&bytes).unwrap();
            prop_assert_eq!(decoded.len(), count_slof(&bytes));
            prop_assert_eq!(decoded.len(), intensities.len());
            for (a, b) in decoded.iter().zip(&intensities) {
                // Half a step of the logged value: a relative error of 0.5 / fixed point.
                prop_assert!((a - b).abs() <= (b + 1.0) * (0.51f64 / fixed_point).exp_m1(), "{} vs {}", a, b);
            }
        }

        #[test]
        fn random_linear_and_slof_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(values) = decode_linear(&bytes) {
                prop_assert!(values.len() <= count_linear(&bytes));
            }
            if let Ok(values) = decode_slof(&bytes) {
                prop_assert_eq!(values.len(), count_slof(&bytes));
            }
        }

        #[test]
        fn any_values_round_trip(values in prop::collection::vec(0u32..u32::MAX, 0..100)) {
            let values: Vec<f64> = values.into_iter().map(|v| v as f64).collect();
            prop_assert_eq!(decode_pic(&encode_pic(&values)).unwrap(), values);
        }

        #[test]
        fn count_bounds_the_decoded_length(values in prop::collection::vec(0u32..u32::MAX, 0..100)) {
            let values: Vec<f64> = values.into_iter().map(|v| v as f64).collect();
            let bytes = encode_pic(&values);
            let n = count_pic(&bytes);
            prop_assert!(n == values.len() || n == values.len() + 1, "{} vs {}", n, values.len());
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(values) = decode_pic(&bytes) {
                prop_assert!(values.len() <= count_pic(&bytes));
            }
        }
    }
}
