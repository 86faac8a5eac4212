//! Fuzzes the custom_context input; the properties are in `properties.rs`.
#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::custom_context(data));
