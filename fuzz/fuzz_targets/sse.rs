//! Fuzzes the SSE decoder (OpenAI-compatible streams); the checks live in `nanna_model::fuzzing::sse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nanna_model::fuzzing::sse(data));
