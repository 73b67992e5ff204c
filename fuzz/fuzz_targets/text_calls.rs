//! Fuzzes the text tool-call parser; the checks live in `nanna_agent::fuzzing::text_calls`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nanna_agent::fuzzing::text_calls(data));
