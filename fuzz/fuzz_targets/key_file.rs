//! A key file: read before anything is authenticated, so anyone with storage access
//! writes these bytes. Parsing must reject, never panic (unwrapping with a passphrase
//! runs the KDF and is bounded by the accepted parameters, tested elsewhere).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lifeboat_repo::keys::KeyFile::parse(data);
});
