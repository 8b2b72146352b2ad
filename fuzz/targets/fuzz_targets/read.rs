#![no_main]
// The engine turns panics inside mzdata's parser into errors (catch_unwind in core/src/io/),
// so libfuzzer-sys's abort-on-any-panic hook would report handled input errors as crashes.
// A silent hook keeps them handled; a panic that escapes the body still aborts the process
// (libfuzzer-sys's `test_input_wrap`) and is reported with its input. FUZZ_SHOW_PANICS=1
// prints every panic, handled or not, to find what a crashing input broke.
libfuzzer_sys::fuzz_target!(
    init: if std::env::var_os("FUZZ_SHOW_PANICS").is_none() {
        std::panic::set_hook(Box::new(|_| {}))
    },
    |data: &[u8]| mzforge_fuzz_bodies::read(data)
);
