//! `lifeboat.toml`: every problem is an error with a line and column, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = |name: &str| (name == "SET").then(|| "value".to_string());
        let _ = lifeboat_config::Config::parse(text, "fuzz.toml", &env);
    }
});
