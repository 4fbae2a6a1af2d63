//! A page map's plaintext: every page covered once, every blob index valid, or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lifeboat_repo::pagemap::PageMap;

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = PageMap::decode(data) {
        assert_eq!(PageMap::decode(&map.encode()).expect("re-decodes"), map);
    }
});
