//! Measures what chunker parameters cost on real data: for each min/avg/max setting, how
//! many bytes a second version of a file adds (new chunks, zstd-3 compressed) after the
//! first version is stored, and how many chunks the first version needs.
//!
//! `cargo run --release -p lifeboat-repo --example chunk_sizes -- OLD NEW [OLD NEW ...]`
//! (bench/chunk-sizes.sh prepares a SQLite database and a SQL dump, before and after a
//! 1% change, and runs this.)

use std::collections::HashSet;

use lifeboat_repo::chunker::chunks;
use lifeboat_repo::config::ChunkerParams;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || !args.len().is_multiple_of(2) {
        eprintln!("usage: chunk_sizes OLD NEW [OLD NEW ...]");
        std::process::exit(2);
    }
    let settings = [
        (2, 8, 32),
        (4, 16, 64),
        (16, 64, 256),
        (32, 128, 512),
        (64, 256, 1024),
        (128, 512, 2048),
        (512, 1024, 8192),
    ];
    println!("| file | min/avg/max KiB | chunks (first) | first stored MiB | second adds MiB | second adds % of file |");
    println!("|---|---|---|---|---|---|");
    for pair in args.chunks(2) {
        let old = std::fs::read(&pair[0]).expect("read OLD");
        let new = std::fs::read(&pair[1]).expect("read NEW");
        for (min, avg, max) in settings {
            let params = ChunkerParams {
                algorithm: "fastcdc-2020".into(),
                min_size: min * 1024,
                avg_size: avg * 1024,
                max_size: max * 1024,
            };
            let mut seen = HashSet::new();
            let mut first_stored = 0usize;
            let mut first_chunks = 0usize;
            for chunk in chunks(&old[..], &params, 0x5eed) {
                let (_, data) = chunk.expect("chunk");
                first_chunks += 1;
                if seen.insert(*blake3::hash(&data).as_bytes()) {
                    first_stored += zstd::bulk::compress(&data, 3)
                        .expect("zstd")
                        .len()
                        .min(data.len());
                }
            }
            let mut added = 0usize;
            for chunk in chunks(&new[..], &params, 0x5eed) {
                let (_, data) = chunk.expect("chunk");
                if seen.insert(*blake3::hash(&data).as_bytes()) {
                    added += zstd::bulk::compress(&data, 3)
                        .expect("zstd")
                        .len()
                        .min(data.len());
                }
            }
            let mib = |b: usize| b as f64 / 1048576.0;
            println!(
                "| {} | {min}/{avg}/{max} | {first_chunks} | {:.1} | {:.1} | {:.1}% |",
                pair[1].rsplit('/').next().unwrap_or(&pair[1]),
                mib(first_stored),
                mib(added),
                100.0 * added as f64 / new.len().max(1) as f64
            );
        }
    }
}
