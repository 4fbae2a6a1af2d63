//! The object stores the README names besides S3, each through an emulator the test
//! starts on loopback: Azure Blob Storage (`azblob://`) through Azurite, Google Cloud
//! Storage (`gcs://`) through gcp-storage-emulator. The S3 suite's core cases on each: a
//! round trip with deduplication and `verify --read-data`, a flipped byte in a pack found,
//! concurrent writers, forget and prune, and the store going away mid-backup (one clear
//! line, nothing half-visible, the next backup completes).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{digest, write_pseudo_random, TestRepo};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Store {
    Azure,
    Gcs,
}

const CONTAINER: &str = "lifeboat";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn helpers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/stores")
}

/// One emulator, its data kept on disk so it survives a restart.
struct Emulator {
    store: Store,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Emulator {
    /// `None` (with the reason printed) when the emulator is not installed.
    fn start(store: Store) -> Option<Emulator> {
        let missing = match store {
            Store::Azure => (!helpers().join("node_modules/.bin/azurite-blob").exists())
                .then_some("Azurite is missing (npm ci --prefix tests/stores)"),
            Store::Gcs => Command::new("gcp-storage-emulator")
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
                .then_some("gcp-storage-emulator is missing (pip install gcp-storage-emulator)"),
        };
        if let Some(reason) = missing {
            common::skip(reason);
            return None;
        }
        let mut emulator = Emulator {
            store,
            port: common::postgres::free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        emulator.run();
        emulator.helper(&["create"]);
        Some(emulator)
    }

    fn run(&mut self) {
        let port = self.port.to_string();
        let mut command = match self.store {
            Store::Azure => {
                let mut c = Command::new(helpers().join("node_modules/.bin/azurite-blob"));
                c.args(["--blobHost", "127.0.0.1", "--blobPort", &port])
                    .arg("--location")
                    .arg(self.dir.path())
                    .args(["--skipApiVersionCheck", "--silent"]);
                c
            }
            Store::Gcs => {
                let mut c = Command::new("gcp-storage-emulator");
                c.args(["start", "--host", "127.0.0.1", "--port", &port, "--quiet"])
                    .args(["--default-bucket", CONTAINER])
                    .current_dir(self.dir.path());
                c
            }
        };
        command.stdout(Stdio::null()).stderr(Stdio::null());
        self.child = Some(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{:?} emulator did not start",
                self.store
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM: Azurite keeps its metadata in memory and saves it on the way out, so a
    /// SIGKILL would lose writes it had acknowledged, which no real store does.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the emulator this test started.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn endpoint(&self) -> String {
        match self.store {
            Store::Azure => format!("http://127.0.0.1:{}/devstoreaccount1", self.port),
            Store::Gcs => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// A repository under `prefix`, with the credentials in the environment (never in
    /// the URL) the way a user sets them.
    fn repo(&self, prefix: &str) -> TestRepo {
        let endpoint = self.endpoint();
        match self.store {
            Store::Azure => TestRepo::at(
                &format!("azblob://{CONTAINER}/{prefix}?endpoint={endpoint}"),
                vec![
                    (
                        "AZURE_STORAGE_ACCOUNT_NAME".into(),
                        "devstoreaccount1".into(),
                    ),
                    ("AZURE_STORAGE_ACCOUNT_KEY".into(), AZURITE_KEY.into()),
                ],
            ),
            // The emulator takes no credentials; the options keep OpenDAL from looking
            // for any on this machine.
            Store::Gcs => TestRepo::at(
                &format!(
                    "gcs://{CONTAINER}/{prefix}?endpoint={endpoint}&allow_anonymous=true\
                     &disable_vm_metadata=true&disable_config_load=true"
                ),
                Vec::new(),
            ),
        }
    }

    fn helper(&self, args: &[&str]) -> String {
        let kind = match self.store {
            Store::Azure => "azure",
            Store::Gcs => "gcs",
        };
        let out = Command::new("node")
            .arg(helpers().join("store.mjs"))
            .args([kind, &self.endpoint(), CONTAINER])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "store.mjs {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tree(root: &Path, seed: u64) {
    for i in 0..6u64 {
        write_pseudo_random(&root.join(format!("f{i}")), 300_000, seed * 100 + i);
    }
    std::fs::write(root.join("small.txt"), format!("seed {seed}\n")).unwrap();
}

fn round_trip_and_damage(emulator: &Emulator) {
    let repo = emulator.repo("round-trip");
    repo.init();
    let src = repo.path("src");
    tree(&src, 1);
    let first = repo.json(&["backup", src.to_str().unwrap()]);
    std::fs::write(src.join("small.txt"), "changed\n").unwrap();
    let second = repo.json(&["backup", src.to_str().unwrap()]);
    let (first_stored, second_stored) = (
        first["summary"]["stored_bytes"].as_u64().unwrap(),
        second["summary"]["stored_bytes"].as_u64().unwrap(),
    );
    assert!(
        second_stored * 20 < first_stored,
        "{:?}: one changed file stored {second_stored} bytes after {first_stored}",
        emulator.store
    );
    let out = repo.restore("latest", "out");
    assert_eq!(digest(&src), digest(&out.join("src")));
    repo.ok(&["verify", "--read-data"]);

    // A flipped byte in a pack, written straight into the store.
    let packs = emulator.helper(&["list", "round-trip/data/"]);
    let pack = packs.lines().next().expect("a pack");
    let copy = repo.path("pack");
    emulator.helper(&["get", pack, copy.to_str().unwrap()]);
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&copy, bytes).unwrap();
    emulator.helper(&["put", pack, copy.to_str().unwrap()]);
    let out = repo.run(&["verify", "--read-data"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "{:?}: damage not found",
        emulator.store
    );
    let id = pack.rsplit('/').next().unwrap();
    assert!(
        stdout.contains(&id[..8]) || String::from_utf8_lossy(&out.stderr).contains(&id[..8]),
        "{:?}: verify does not name the damaged pack {id}: {stdout}",
        emulator.store
    );
}

fn concurrent_writers_then_forget_and_prune(emulator: &Emulator) {
    let repo = emulator.repo("shared");
    repo.init();
    let sources: Vec<PathBuf> = (0..4u64)
        .map(|i| {
            let src = repo.path(&format!("host{i}"));
            tree(&src, 7); // the same base image...
            std::fs::write(src.join("own.txt"), format!("host {i}\n")).unwrap(); // ...and their own change
            src
        })
        .collect();
    let children: Vec<Child> = sources
        .iter()
        .enumerate()
        .map(|(i, src)| {
            repo.command()
                .args([
                    "backup",
                    "--host",
                    &format!("host{i}"),
                    src.to_str().unwrap(),
                ])
                .env("LIFEBOAT_CACHE_DIR", repo.path(&format!("cache{i}")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{:?}: a concurrent backup failed: {}",
            emulator.store,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    repo.ok(&["verify", "--read-data"]);
    let snapshots = repo.json(&["snapshots"]);
    let snapshots = snapshots.as_array().unwrap();
    assert_eq!(snapshots.len(), 4, "{:?}", emulator.store);
    for (i, src) in sources.iter().enumerate() {
        let host = format!("host{i}");
        let out = repo.path(&format!("out{i}"));
        repo.ok(&[
            "restore",
            "latest",
            "--host",
            &host,
            "--target",
            out.to_str().unwrap(),
        ]);
        assert_eq!(
            digest(src),
            digest(&out.join(&host)),
            "{:?}",
            emulator.store
        );
    }
    // The same base image is stored once: four hosts cost little more than one.
    let stats = repo.json(&["stats"]);
    assert!(
        stats["dedup_ratio"].as_f64().unwrap() > 3.5,
        "{:?}: {stats}",
        emulator.store
    );
    // Forget all but one host's snapshot, prune, and what is left still restores whole.
    let others: Vec<&str> = snapshots
        .iter()
        .filter(|s| s["host"] != "host0")
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let mut forget = vec!["forget"];
    forget.extend(others);
    repo.ok(&forget);
    repo.ok(&["prune"]);
    repo.ok(&["verify", "--read-data"]);
    let out = repo.path("after-prune");
    repo.ok(&[
        "restore",
        "latest",
        "--host",
        "host0",
        "--target",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        digest(&sources[0]),
        digest(&out.join("host0")),
        "{:?}",
        emulator.store
    );
}

fn store_going_away_mid_backup(emulator: &mut Emulator) {
    let repo = emulator.repo("goes-away");
    repo.init();
    let src = repo.path("src");
    for i in 0..40u64 {
        write_pseudo_random(&src.join(format!("f{i}")), 1 << 20, 1000 + i);
    }
    let mut backup = repo
        .command()
        .args(["backup", src.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    emulator.stop();
    let started = Instant::now();
    let out = loop {
        if backup.try_wait().unwrap().is_some() {
            break backup.wait_with_output().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{:?}: the backup hung after its store went away",
            emulator.store
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(5), "{:?}: {stderr}", emulator.store);
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("lifeboat:"))
            .collect();
        assert_eq!(lines.len(), 1, "{:?}: {stderr}", emulator.store);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    emulator.run();
    // No half-written snapshot is visible, and the next backup completes.
    let before = repo.snapshot_ids().len();
    assert!(before <= 1, "{:?}", emulator.store);
    repo.ok(&["backup", src.to_str().unwrap()]);
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore("latest", "out");
    assert_eq!(digest(&src), digest(&restored.join("src")));
}

fn core_cases(store: Store) {
    let Some(mut emulator) = Emulator::start(store) else {
        return;
    };
    round_trip_and_damage(&emulator);
    concurrent_writers_then_forget_and_prune(&emulator);
    store_going_away_mid_backup(&mut emulator);
}

#[test]
fn azure_blob_storage_through_azurite() {
    core_cases(Store::Azure);
}

#[test]
fn google_cloud_storage_through_its_emulator() {
    core_cases(Store::Gcs);
}
