//! Many hosts, one repository, a replicated store: eight writers (separate processes with
//! their own host names and caches) back up the same base image with their own changes
//! into one repository on a three-node Garage cluster (`replication_factor = 3`), while a
//! prune deletes a forgotten snapshot's data and one node is killed and started again.
//! Every backup completes (retried, as the agent retries, when one fails cleanly);
//! `verify --read-data` is clean; every snapshot restores bit-exact; and the base image is
//! stored once across hosts.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::garage_cluster::{GarageCluster, BUCKET};
use common::{digest, write_pseudo_random, TestRepo};

const WRITERS: usize = 8;
const BASE_FILES: u64 = 8;
const FILE_BYTES: usize = 1 << 20;

/// One host's backup, retried up to five times when it fails (exit 5: storage); the
/// attempts it took.
fn backup_with_retries(repo: &TestRepo, host: &str, src: &Path, cache: &Path) -> u32 {
    for attempt in 1..=5 {
        let out = repo
            .command()
            .args(["backup", "--host", host, src.to_str().unwrap()])
            .env("LIFEBOAT_CACHE_DIR", cache)
            .output()
            .unwrap();
        if out.status.success() {
            return attempt;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{host}: {stderr}");
        assert_eq!(
            stderr
                .lines()
                .filter(|l| l.starts_with("lifeboat:"))
                .count(),
            1,
            "{host}: a failure is one line: {stderr}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("{host}: five attempts failed");
}

#[test]
fn eight_hosts_back_up_into_one_repository_on_a_replicated_cluster_through_a_node_failure() {
    let Some(mut cluster) = GarageCluster::start(3) else {
        return;
    };
    let repo = TestRepo::at(&format!("s3://{BUCKET}/shared"), cluster.env());
    repo.init();
    let root = cluster.dir.path().join("hosts");

    // Something to prune while the writers run: a snapshot forgotten before they start.
    let old = root.join("old");
    write_pseudo_random(&old.join("gone"), 4 * FILE_BYTES, 99);
    repo.ok(&["backup", "--host", "old", old.to_str().unwrap()]);
    let old_id = repo.snapshot_ids();
    repo.ok(&["forget", &old_id[0]]);

    let sources: Vec<PathBuf> = (0..WRITERS)
        .map(|i| {
            let src = root.join(format!("host{i}"));
            for f in 0..BASE_FILES {
                write_pseudo_random(&src.join(format!("base{f}")), FILE_BYTES, f);
            }
            write_pseudo_random(&src.join("own"), FILE_BYTES, 1000 + i as u64);
            std::fs::write(src.join("config.json"), format!("{{\"host\": {i}}}\n")).unwrap();
            src
        })
        .collect();
    let inputs = (WRITERS as u64) * ((BASE_FILES + 1) * FILE_BYTES as u64);

    let started = Instant::now();
    let attempts: Vec<u32> = std::thread::scope(|s| {
        let writers: Vec<_> = sources
            .iter()
            .enumerate()
            .map(|(i, src)| {
                let repo = &repo;
                let cache = root.join(format!("cache{i}"));
                s.spawn(move || backup_with_retries(repo, &format!("host{i}"), src, &cache))
            })
            .collect();
        // While they run: a prune, and one node of three killed and brought back.
        std::thread::sleep(Duration::from_millis(500));
        cluster.stop_node(2);
        let prune = repo.run(&["prune"]);
        std::thread::sleep(Duration::from_secs(2));
        cluster.start_node(2);
        let attempts = writers.into_iter().map(|w| w.join().unwrap()).collect();
        assert!(
            prune.status.success() || prune.status.code() == Some(5),
            "prune: {prune:?}"
        );
        attempts
    });
    eprintln!(
        "{WRITERS} writers done in {:.1}s, attempts {attempts:?}",
        started.elapsed().as_secs_f64()
    );
    // A prune after the writers, whatever the first one managed.
    repo.ok(&["prune"]);
    repo.ok(&["verify", "--read-data"]);

    let snapshots = repo.json(&["snapshots"]);
    assert_eq!(snapshots.as_array().unwrap().len(), WRITERS, "{snapshots}");
    for (i, src) in sources.iter().enumerate() {
        let host = format!("host{i}");
        let out = root.join(format!("restored{i}"));
        repo.ok(&[
            "restore",
            "latest",
            "--host",
            &host,
            "--target",
            out.to_str().unwrap(),
        ]);
        assert_eq!(digest(src), digest(&out.join(&host)), "{host}");
    }
    let stats = repo.json(&["stats"]);
    let stored = stats["repository"]["stored_bytes"].as_u64().unwrap();
    eprintln!(
        "deduplication across hosts: {inputs} bytes in, {stored} stored ({:.2}x)",
        inputs as f64 / stored as f64
    );
    // The base image once, each host's own file once: (8 + 8) MiB of 72 MiB.
    let unique = (BASE_FILES + WRITERS as u64) * FILE_BYTES as u64;
    assert!(
        stored < unique + unique / 5,
        "{stored} bytes stored for {unique} unique bytes: {stats}"
    );
}
