#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mzforge_fuzz_bodies::kernels(data));
