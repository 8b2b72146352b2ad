//! MS-Numpress "positive integer compression" (PIC), which `mzdata` does not decode.
//!
//! Each value is rounded to a non-negative integer and stored as half-bytes: a head half-byte
//! saying how many leading half-bytes are zero (0–8) or all ones (9–15, i.e. 8 + n), then the
//! remaining half-bytes, least significant first. Two half-bytes per byte, high half first; an
//! odd count is padded with a zero half-byte (a lone head 0 cannot start a value, while a
//! lone head 8 is the value 0). This follows the reference implementation
//! (ms-numpress, `MSNumpress.cpp`, `encodePic`/`decodePic`).

/// Decodes PIC bytes into values.
pub fn decode_pic(data: &[u8]) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(data.len());
    let mut di = 0usize;
    let mut half = false; // false: high half-byte of data[di] is next
    let next = |di: &mut usize, half: &mut bool| -> Option<u8> {
        let byte = *data.get(*di)?;
        let value = if *half {
            *di += 1;
            byte & 0xf
        } else {
            byte >> 4
        };
        *half = !*half;
        Some(value)
    };
    while di < data.len() {
        if di == data.len() - 1 && half && data[di] & 0xf == 0x0 {
            break; // padding
        }
        let head = next(&mut di, &mut half).ok_or("corrupt Numpress PIC data: truncated value")?;
        let (leading, mut value) = if head <= 8 {
            (head as u32, 0u32)
        } else {
            let n = (head - 8) as u32;
            let ones = (0..n).fold(0u32, |acc, i| acc | (0xf000_0000u32 >> (4 * i)));
            (n, ones)
        };
        if leading > 8 {
            return Err("corrupt Numpress PIC data: bad half-byte count".into());
        }
        for i in leading..8 {
            let hb =
                next(&mut di, &mut half).ok_or("corrupt Numpress PIC data: truncated value")?;
            value |= (hb as u32) << ((i - leading) * 4);
        }
        out.push(value as f64);
    }
    Ok(out)
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

    proptest! {
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
