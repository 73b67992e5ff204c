//! Fuzzes the NDJSON decoder (Ollama streams); the checks live in `nanna_model::fuzzing::ndjson`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nanna_model::fuzzing::ndjson(data));
