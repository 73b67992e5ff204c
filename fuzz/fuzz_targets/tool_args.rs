//! Fuzzes the tool argument validation of every built-in tool; the checks live in `nanna_tools::fuzzing::validate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nanna_tools::fuzzing::validate(data));
