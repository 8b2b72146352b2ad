//! Bad input: clear errors or documented behaviour, never a panic.
