//! Counts in messages that agree with their number: "1 spectrum", "2 spectra".

/// `n` followed by the noun that agrees with it.
///
/// ```
/// use mzforge::wording::count;
/// assert_eq!(count(1, "spectrum", "spectra"), "1 spectrum");
/// assert_eq!(count(0, "spectrum", "spectra"), "0 spectra");
/// ```
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", agree(n, one, many))
}

/// The word of a pair that agrees with `n`: `agree(n, "is", "are")`.
pub fn agree<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// "1 spectrum", "2 spectra".
pub fn spectra(n: u64) -> String {
    count(n, "spectrum", "spectra")
}

/// "1 spectrum is", "2 spectra are": `spectra_with_verb(n, "is", "are")`.
pub fn spectra_with_verb(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", spectra(n), agree(n, one, many))
}
