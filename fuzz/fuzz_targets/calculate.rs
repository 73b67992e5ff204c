//! Fuzzes the evaluator of the `calculate` tool; the checks live in `nanna_tools::fuzzing::calculate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nanna_tools::fuzzing::calculate(data));
