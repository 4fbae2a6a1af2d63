//! S3 Object Lock against an S3 server that implements it: moto's server mode (PyPI
//! `moto[server]`, which `.ci/run` installs), started on a loopback port for this binary.
//! Buckets are made with boto3 (moto's own dependency), as an operator would make them.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{postgres::free_port, TestRepo};

struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install 'moto[server]'; .ci/run installs it)");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { child, endpoint }
}

/// Runs a boto3 snippet against moto with `s3` bound to a client; returns its stdout.
fn boto(moto: &Moto, code: &str) -> String {
    let script = format!(
        "import boto3, datetime\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n{code}",
        moto.endpoint
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn repo(moto: &Moto, bucket: &str) -> TestRepo {
    TestRepo::at(
        &format!("s3://{bucket}/repo"),
        vec![
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT_URL".into(), moto.endpoint.clone()),
        ],
    )
}

const INIT: [&str; 5] = ["init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"];

#[test]
fn locked_objects_survive_an_attacker_and_go_only_once_expired() {
    let moto = start_moto();
    boto(
        &moto,
        "s3.create_bucket(Bucket='plain-bucket')\ns3.create_bucket(Bucket='locked-bucket', ObjectLockEnabledForBucket=True)",
    );

    // A bucket made without object lock is refused, naming what to do.
    let plain = repo(&moto, "plain-bucket");
    let mut args = INIT.to_vec();
    args.extend(["--object-lock", "8s"]);
    let stderr = plain.fails(&args, 1);
    assert!(stderr.contains("created without object lock"), "{stderr}");
    // A period longer than S3 allows (100 years) is refused before anything is asked.
    let mut args = INIT.to_vec();
    args.extend(["--object-lock", "10000w"]);
    let stderr = plain.fails(&args, 2);
    assert!(stderr.contains("at most 100 years"), "{stderr}");

    let repo = repo(&moto, "locked-bucket");
    let mut args = INIT.to_vec();
    args.extend(["--object-lock", "8s", "--object-lock-mode", "governance"]);
    repo.ok(&args);
    let data = repo.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a"), common::pseudo_random(300_000, 1)).unwrap();
    let first = repo.backup(&[&data]);
    std::fs::write(data.join("b"), common::pseudo_random(200_000, 2)).unwrap();
    let second = repo.backup(&[&data]);

    // Every object but locks and notices is locked, in the mode asked for.
    let listing = boto(
        &moto,
        "for o in s3.list_objects_v2(Bucket='locked-bucket')['Contents']:\n    h = s3.head_object(Bucket='locked-bucket', Key=o['Key'])\n    print(o['Key'], h.get('ObjectLockMode'), h.get('ObjectLockRetainUntilDate') is not None)",
    );
    let kinds = [
        "repo/config",
        "repo/keys/",
        "repo/data/",
        "repo/index/",
        "repo/snapshots/",
    ];
    for kind in kinds {
        assert!(listing.contains(kind), "no {kind} in\n{listing}");
    }
    for line in listing.lines() {
        assert!(line.ends_with("GOVERNANCE True"), "not locked: {line}");
    }

    // An attacker with the bucket's credentials cannot destroy a version of a pack.
    let attack = boto(
        &moto,
        "o = [o for o in s3.list_objects_v2(Bucket='locked-bucket')['Contents'] if '/data/' in o['Key']][0]\nv = s3.head_object(Bucket='locked-bucket', Key=o['Key'])['VersionId']\ntry:\n    s3.delete_object(Bucket='locked-bucket', Key=o['Key'], VersionId=v)\n    print('deleted')\nexcept Exception as e:\n    print('refused', e)",
    );
    assert!(attack.starts_with("refused"), "{attack}");

    // forget keeps a snapshot the lock still holds; prune deletes nothing locked.
    let forget = repo.ok(&["forget", "--keep-last", "1"]);
    assert!(forget.contains("locked (S3 Object Lock) until"), "{forget}");
    assert_eq!(repo.snapshot_ids().len(), 2);
    repo.ok(&["prune"]);

    // Once expired, forget removes it and prune renews the lock of what is still needed.
    std::thread::sleep(Duration::from_secs(9));
    repo.ok(&["forget", "--keep-last", "1"]);
    let ids = repo.snapshot_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(
        second.starts_with(&ids[0][..8]) || ids[0].starts_with(&second[..8]),
        "{ids:?} {first} {second}"
    );
    let prune = repo.ok(&["prune"]);
    assert!(prune.contains("renewed the lock of"), "{prune}");
    let renewed = boto(
        &moto,
        "now = datetime.datetime.now(datetime.timezone.utc)\nfor o in s3.list_objects_v2(Bucket='locked-bucket')['Contents']:\n    if o['Key'].startswith('repo/snapshots/'):\n        print(s3.head_object(Bucket='locked-bucket', Key=o['Key'])['ObjectLockRetainUntilDate'] > now)",
    );
    assert_eq!(renewed.trim(), "True", "{renewed}");
    // The runbook marks this copy immutable, with the lock's terms.
    let config = repo.path("lifeboat.toml");
    common::write_one_plan_config(&config, &data.display().to_string(), &repo.url);
    let runbook = repo.ok(&["plan", "--config", config.to_str().unwrap()]);
    assert!(
        runbook.contains("| yes (vault: object lock 8s governance) |"),
        "{runbook}"
    );
    assert!(!runbook.contains("No target is immutable"), "{runbook}");
    let verify = repo.ok(&["verify", "--read-data"]);
    assert!(verify.contains("no problems found"), "{verify}");
    let target = repo.path("restored");
    repo.ok(&[
        "restore",
        "latest",
        "--target",
        &target.display().to_string(),
    ]);
    let restored = [
        target.join("data/b"),
        target.join(data.strip_prefix("/").unwrap()).join("b"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("the restored file b");
    assert_eq!(
        std::fs::read(restored).unwrap(),
        common::pseudo_random(200_000, 2)
    );
}
