//! A tree blob's plaintext (JSON): decoding must reject bad trees, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = lifeboat_repo::tree::Tree::parse(data) {
        // What decodes re-encodes and decodes to the same tree.
        let again = lifeboat_repo::tree::Tree::parse(&tree.to_bytes()).expect("re-decodes");
        assert_eq!(again, tree);
    }
});
