//! Reading: formats, encodings, metadata.
