//! PostgreSQL physical backups against throwaway PostgreSQL 15 clusters: WAL archiving
//! through `lifeboat pg wal-push`, base backups, and point-in-time recovery checked with
//! pgbench's own invariants.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::postgres::{Cluster, PgLab};

fn pgbench(url: &str, args: &[&str]) {
    let out = Command::new("pgbench")
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pgbench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// sum(abalance) = sum(tbalance) = sum(bbalance) = sum(history.delta): every pgbench
/// transaction applied whole or not at all.
fn pgbench_sums(cluster: &Cluster) -> [i64; 4] {
    let out = cluster.psql(
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers), \
         (SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)",
    );
    let parts: Vec<i64> = out.split('|').map(|v| v.parse().unwrap()).collect();
    [parts[0], parts[1], parts[2], parts[3]]
}

#[test]
fn point_in_time_recovery_brings_back_a_dropped_table_with_pgbench_invariants_intact() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    pgbench(&primary.url(), &["-i", "-s", "2", "-q"]);
    let out = lab.ok(&["pg", "basebackup", &primary.url()]);
    assert!(
        out.contains("base backup") && out.contains("archived"),
        "{out}"
    );

    pgbench(&primary.url(), &["-c", "2", "-t", "500"]);
    let history_at_target = primary.psql("SELECT count(*) FROM pgbench_history");
    let sums_at_target = pgbench_sums(&primary);
    assert_ne!(history_at_target, "0");
    std::thread::sleep(Duration::from_millis(1100));
    let target = primary.psql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    );
    std::thread::sleep(Duration::from_millis(1100));
    primary.psql("DROP TABLE pgbench_accounts");
    pgbench_more_after_the_drop(&primary);
    primary.archive_now();

    let (restored, out) = lab.restore_and_start("restored", &["--at", &target]);
    // --start returns only once recovery is over: the server is promoted, not a standby.
    assert_eq!(restored.psql("SELECT pg_is_in_recovery()"), "f");
    let restored_dir = restored.data.clone();
    assert!(
        out.contains("restored base backup") && out.contains("on timeline 1"),
        "{out}"
    );
    assert!(out.contains("PostgreSQL is up"), "{out}");
    // The table is back, and the database is exactly as it was at the target.
    assert_eq!(
        restored.psql("SELECT count(*) FROM pgbench_history"),
        history_at_target
    );
    let sums = pgbench_sums(&restored);
    assert_eq!(sums, sums_at_target);
    assert!(
        sums.iter().all(|s| *s == sums[0]),
        "pgbench invariants broken: {sums:?}"
    );
    assert_eq!(
        restored.psql("SELECT count(*) FROM pgbench_accounts"),
        "200000"
    );
    // The timeline is pinned, and the copy does not archive into the primary's archive.
    let auto = std::fs::read_to_string(restored_dir.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("recovery_target_timeline = '1'"), "{auto}");
    assert!(auto.contains("archive_mode = 'off'"), "{auto}");
    assert!(!auto.contains("pg lab passphrase"));

    // A directory that is not empty is refused before anything is written.
    let err = lab.fails(
        &[
            "pg",
            "restore",
            "--target-dir",
            restored_dir.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("is not empty"), "{err}");
    // A target before the first base backup names the earliest one.
    let err = lab.fails(
        &[
            "pg",
            "restore",
            "--at",
            "2001-01-01T00:00:00Z",
            "--target-dir",
            lab.path("early").to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("no base backup ends before"), "{err}");
    // A target after the archive's last commit is refused before anything is restored,
    // with the newest reachable moment and how to reach further.
    let future = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let late = lab.path("late");
    let err = lab.fails(
        &[
            "pg",
            "restore",
            "--at",
            &future,
            "--target-dir",
            late.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("past what the archive reaches")
            && err.contains("its last transaction committed at")
            && err.contains("pg_switch_wal()"),
        "{err}"
    );
    assert!(!late.exists(), "a refused restore wrote {}", late.display());

    // The timeline shows the window; a WAL file lost from the archive shows as a gap.
    for _ in 0..2 {
        primary.psql(
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 0, now())",
        );
        primary.archive_now();
    }
    let timeline: serde_json::Value =
        serde_json::from_str(&lab.ok(&["--json", "timeline", &primary.url()])).unwrap();
    let cluster = &timeline["clusters"][0];
    // The archive's end is a time (its last commit), not only a file name.
    let end: chrono::DateTime<chrono::Utc> = cluster["to"]
        .as_str()
        .unwrap_or_else(|| panic!("{timeline}"))
        .parse()
        .unwrap();
    assert!(
        end > chrono::Utc::now() - chrono::Duration::minutes(5),
        "{timeline}"
    );
    let base = &cluster["base_backups"][0];
    assert!(base["wal_gap"].is_null(), "{timeline}");
    let first = base["start_wal"].as_str().unwrap().to_string();
    let reaches = base["wal_reaches"].as_str().unwrap().to_string();
    assert!(reaches > first, "{timeline}");
    let wal_dir = lab
        .repo
        .join("wal")
        .join(cluster["cluster"].as_str().unwrap());
    let mut segments: Vec<String> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.as_str() > first.as_str())
        .collect();
    segments.sort();
    assert!(segments.len() >= 2, "{segments:?}");
    let lost = &segments[0];
    std::fs::remove_file(wal_dir.join(lost)).unwrap();
    let out = lab.ok(&["timeline", &primary.url()]);
    assert!(out.contains(&format!("GAP: {lost} is missing")), "{out}");
}

fn fetch_args<'a>(cluster: &'a str, file: &'a str, dest: &'a str) -> [&'a str; 6] {
    ["pg", "wal-fetch", "--cluster", cluster, file, dest]
}

/// Later work on the primary that the recovery must not replay.
fn pgbench_more_after_the_drop(primary: &Cluster) {
    primary.psql(
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 999999, now())",
    );
}

#[test]
fn wal_push_is_idempotent_refuses_a_different_file_and_wal_fetch_tells_missing_from_broken() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    primary.psql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS n");
    primary.archive_now();
    let archived = primary.psql("SELECT last_archived_wal FROM pg_stat_archiver");
    let cluster = primary.psql("SELECT system_identifier FROM pg_control_system()");

    // Fetch it back: the same bytes PostgreSQL archived.
    let fetched = lab.path("fetched");
    let dest = fetched.to_str().unwrap();
    lab.ok(&fetch_args(&cluster, &archived, dest));
    let original = std::fs::read(primary.data().join("pg_wal").join(&archived));
    if let Ok(original) = original {
        assert_eq!(std::fs::read(&fetched).unwrap(), original);
    }
    let data = std::fs::read(&fetched).unwrap();

    // PostgreSQL may push a file again after a crash: the same bytes succeed.
    let copy_dir = lab.path("again");
    std::fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join(&archived);
    std::fs::write(&copy, &data).unwrap();
    let pgdata = primary.data().to_str().unwrap().to_string();
    let push_copy = [
        "pg",
        "wal-push",
        "--pgdata",
        &pgdata,
        copy.to_str().unwrap(),
    ];
    lab.ok(&push_copy);
    // Different bytes under the same name fail loudly and change nothing.
    let mut changed = data.clone();
    changed[data.len() / 2] ^= 0xFF;
    std::fs::write(&copy, &changed).unwrap();
    let err = lab.fails(&push_copy, 1);
    assert!(
        err.contains("already archived") && err.contains("different contents"),
        "{err}"
    );
    lab.ok(&fetch_args(&cluster, &archived, dest));
    assert_eq!(std::fs::read(&fetched).unwrap(), data);
    // A missing file is an error naming it.
    let missing = "pg_wal/000000010000000000000FFF";
    let err = lab.fails(&["pg", "wal-push", "--pgdata", &pgdata, missing], 1);
    assert!(err.contains(missing), "{err}");

    // restore_command: exit 1 only for "not in the archive"; a wrong passphrase is 4.
    let err = lab.fails(&fetch_args(&cluster, "0000000100000000000000FF", dest), 1);
    assert!(err.contains("not in the archive"), "{err}");
    let wrong = lab.path("wrong-pass");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let out = lab
        .command()
        .env("LIFEBOAT_PASSWORD_FILE", &wrong)
        .args([
            "pg",
            "wal-fetch",
            "--cluster",
            &cluster,
            &archived,
            fetched.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn archiving_into_an_unreachable_repository_fails_so_postgres_retries_and_nothing_is_lost() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    primary.psql("CREATE TABLE marks (n int)");
    lab.ok(&["pg", "basebackup", &primary.url()]);

    // The repository goes away (an unmounted disk, a network outage) while writes go on.
    let away = lab.path("repo-away");
    std::fs::rename(&lab.repo, &away).unwrap();
    primary.psql("INSERT INTO marks SELECT generate_series(1, 100)");
    assert!(!primary.switch_and_wait_archived(Duration::from_secs(3)));
    let failed: u64 = primary
        .psql("SELECT failed_count FROM pg_stat_archiver")
        .parse()
        .unwrap();
    assert!(
        failed > 0,
        "archive_command must fail while the repository is unreachable"
    );
    assert!(
        primary.log().contains("archive command failed"),
        "{}",
        primary.log()
    );

    // It comes back: PostgreSQL retries, and the archive catches up with nothing missing.
    std::fs::rename(&away, &lab.repo).unwrap();
    primary.psql("INSERT INTO marks VALUES (101)");
    primary.archive_now();
    let (restored, _) = lab.restore_and_start("restored", &[]);
    assert_eq!(restored.psql("SELECT count(*) FROM marks"), "101");
}

#[test]
fn a_base_backup_needs_a_server_that_archives_into_lifeboat() {
    let lab = PgLab::new();
    let no_archive = Cluster::start(&lab, "plain", "/bin/true");
    no_archive.psql("ALTER SYSTEM SET archive_mode = off");
    no_archive.pg_ctl(&["-w", "-l", "log", "restart"]);
    let err = lab.fails(&["pg", "basebackup", &no_archive.url()], 1);
    assert!(
        err.contains("does not archive its WAL") && err.contains("pg setup"),
        "{err}"
    );

    // `pg setup --apply` writes the settings and says a restart is needed; after it, a
    // second run proves a WAL file arrives.
    let setup = [
        "--password-file",
        lab.password_file.to_str().unwrap(),
        "pg",
        "setup",
        &no_archive.url(),
        "--apply",
    ];
    let out = lab.ok(&setup);
    assert!(out.contains("after a restart"), "{out}");
    no_archive.pg_ctl(&["-w", "-l", "log", "restart"]);

    let out = lab.ok(&setup);
    assert!(out.contains("archiving works"), "{out}");
    let out = lab.ok(&[
        "pg",
        "basebackup",
        &no_archive.url(),
        "--wal-timeout",
        "30s",
    ]);
    assert!(out.contains("base backup"), "{out}");

    // An archive_command that cannot reach the repository: the base backup waits for the
    // WAL, gives up with a clear error, and leaves no snapshot.
    let broken = Cluster::start(
        &lab,
        "broken",
        &format!(
            "{} --repo /nonexistent pg wal-push %p",
            lab.lifeboat.display()
        ),
    );
    let before = lab.ok(&["snapshots", "--json"]);
    let out = lab.run(&["pg", "basebackup", &broken.url(), "--wal-timeout", "3s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has not reached the repository's archive")
            && err.contains("no snapshot was written"),
        "{err}"
    );
    assert_eq!(lab.ok(&["snapshots", "--json"]), before);
}

#[test]
fn a_recovered_primary_archives_its_new_timeline_which_a_later_recovery_follows_only_when_asked() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    primary.psql("CREATE TABLE marks (n int)");
    primary.psql("INSERT INTO marks VALUES (1)");
    lab.ok(&["pg", "basebackup", &primary.url()]);
    primary.psql("INSERT INTO marks VALUES (2)");
    primary.archive_now();
    // The primary's host is lost.
    drop(primary);

    // Recovered as the new primary, it keeps archiving: its timeline 2 and history too.
    let (new_primary, _) = lab.restore_and_start("new-primary", &["--archive"]);
    assert_eq!(new_primary.psql("SELECT count(*) FROM marks"), "2");
    assert_eq!(
        new_primary.psql("SELECT timeline_id FROM pg_control_checkpoint()"),
        "2"
    );
    new_primary.psql("INSERT INTO marks VALUES (3)");
    new_primary.archive_now();
    let cluster = new_primary.psql("SELECT system_identifier FROM pg_control_system()");
    assert!(lab
        .repo
        .join("wal")
        .join(&cluster)
        .join("00000002.history")
        .exists());

    // A later recovery from the same base backup stays on the base's timeline unless told.
    let (pinned, out) = lab.restore_and_start("pinned", &[]);
    assert!(out.contains("on timeline 1"), "{out}");
    assert_eq!(pinned.psql("SELECT count(*) FROM marks"), "2");
    let (followed, out) = lab.restore_and_start("followed", &["--timeline", "2"]);
    assert!(out.contains("on timeline 2"), "{out}");
    assert_eq!(followed.psql("SELECT count(*) FROM marks"), "3");
}

#[test]
fn recovery_stops_at_a_named_restore_point_or_an_lsn() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    primary.psql("CREATE TABLE marks (n int)");
    lab.ok(&["pg", "basebackup", &primary.url()]);
    primary.psql("INSERT INTO marks VALUES (1)");
    primary.psql("SELECT pg_create_restore_point('before-the-second')");
    primary.psql("INSERT INTO marks VALUES (2)");
    let lsn = primary.psql("SELECT pg_current_wal_insert_lsn()");
    primary.psql("INSERT INTO marks VALUES (3)");
    primary.archive_now();

    let (named, out) = lab.restore_and_start("named", &["--at", "before-the-second"]);
    assert!(out.contains("restore point \"before-the-second\""), "{out}");
    assert_eq!(
        named.psql("SELECT string_agg(n::text, ',' ORDER BY n) FROM marks"),
        "1"
    );
    let (at_lsn, out) = lab.restore_and_start("at-lsn", &["--at", &lsn]);
    assert!(out.contains(&format!("LSN {lsn}")), "{out}");
    assert_eq!(
        at_lsn.psql("SELECT string_agg(n::text, ',' ORDER BY n) FROM marks"),
        "1,2"
    );

    // A recovered server that cannot start (its port is taken: the primary's) leaves no
    // half-recovered directory: the error says so and where its log was kept.
    let failed = lab.path("port-taken");
    let taken = primary.url();
    let port = taken.rsplit_once(':').unwrap().1.split('/').next().unwrap();
    let err = lab.fails(
        &[
            "pg",
            "restore",
            "--target-dir",
            failed.to_str().unwrap(),
            "--at",
            &lsn,
            "--start",
            "--port",
            port,
        ],
        1,
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("log kept as") && err.contains("was removed"),
        "{err}"
    );
    assert!(
        !failed.exists(),
        "the failed recovery left {}",
        failed.display()
    );
    let log = err
        .split("log kept as ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let kept = std::fs::read_to_string(log).unwrap();
    assert!(
        kept.contains("could not") || kept.contains("in use"),
        "{kept}"
    );
    std::fs::remove_file(log).unwrap();
    // The same restore on a free port then works in the same place.
    let (again, _) = lab.restore_and_start("port-taken", &["--at", &lsn]);
    assert_eq!(again.psql("SELECT count(*) FROM marks"), "2");
}

#[test]
fn forgetting_an_old_base_backup_drops_the_wal_only_it_needed() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    primary.psql("CREATE TABLE marks (n int)");
    lab.ok(&["pg", "basebackup", &primary.url()]);
    for i in 0..3 {
        primary.psql(&format!("INSERT INTO marks VALUES ({i})"));
        primary.archive_now();
    }
    lab.ok(&["pg", "basebackup", &primary.url()]);
    primary.psql("INSERT INTO marks VALUES (100)");
    primary.archive_now();
    let cluster = primary.psql("SELECT system_identifier FROM pg_control_system()");
    let wal_dir = lab.repo.join("wal").join(&cluster);
    let segments = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&wal_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 24)
            .collect();
        names.sort();
        names
    };
    let before = segments();

    let report: serde_json::Value =
        serde_json::from_str(&lab.ok(&["--json", "forget", "--keep-last", "1"])).unwrap();
    assert_eq!(report["removed_snapshots"], 1, "{report}");
    let timeline: serde_json::Value =
        serde_json::from_str(&lab.ok(&["--json", "timeline", &primary.url()])).unwrap();
    let base = &timeline["clusters"][0]["base_backups"][0];
    assert_eq!(
        timeline["clusters"][0]["base_backups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let start = base["start_wal"].as_str().unwrap();
    let after = segments();
    assert!(
        after.iter().all(|n| n.as_str() >= start),
        "{after:?} < {start}"
    );
    assert_eq!(
        report["removed_wal_files"].as_u64().unwrap() as usize,
        before.len() - after.len()
    );
    assert!(after.len() < before.len(), "no WAL was freed: {before:?}");
    assert!(base["wal_gap"].is_null(), "{timeline}");

    let (restored, _) = lab.restore_and_start("restored", &[]);
    assert_eq!(restored.psql("SELECT count(*) FROM marks"), "4");
}

#[test]
fn a_physical_drill_recovers_a_throwaway_cluster_runs_the_checks_and_removes_it() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    primary.psql("CREATE TABLE marks (n int); INSERT INTO marks VALUES (1), (2)");
    lab.ok(&["pg", "basebackup", &primary.url()]);
    primary.psql("INSERT INTO marks VALUES (3)");
    primary.archive_now();

    let config = lab.path("lifeboat.toml");
    let write_config = |check: &str| {
        std::fs::write(
            &config,
            format!(
                "[[source]]\nname = \"db\"\nurl = \"{}\"\nchecks = [{check:?}]\n\
                 [[target]]\nname = \"local\"\nurl = \"{}\"\n\
                 [[plan]]\nname = \"db\"\nsources = [\"db\"]\ntargets = [\"local\"]\nschedule = \"every 1h\"\n",
                primary.url(),
                lab.repo.display()
            ),
        )
        .unwrap();
    };
    // The scratch directory is the postgres user's, as the drill's cluster will be.
    let scratch = lab.path("scratch");
    let made = common::postgres::as_owner("mkdir")
        .arg(&scratch)
        .status()
        .unwrap();
    assert!(made.success());
    let drill = || {
        let out = lab
            .command()
            .args(["drill", "db", "--json"])
            .env("LIFEBOAT_CONFIG", &config)
            .env("TMPDIR", &scratch)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out.status.code(), report, stderr)
    };

    // No dumps, only a base backup: the drill is physical, and sees every archived row.
    write_config("SELECT count(*) = 3 FROM marks");
    let (code, report, stderr) = drill();
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["passed"], true, "{report}");
    let detail = report["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("recovered to"), "{report}");
    assert_eq!(report["checks"][1]["passed"], true, "{report}");
    assert!(report["rto_seconds"].as_f64().unwrap() > 0.0);
    assert!(
        std::fs::read_dir(&scratch).unwrap().next().is_none(),
        "the drill's cluster was left behind"
    );

    // A check that does not hold fails the drill, naming it; the cluster still goes.
    write_config("SELECT count(*) = 4 FROM marks");
    let (code, report, _) = drill();
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["passed"], false);
    assert!(
        report["reason"].as_str().unwrap().contains("count(*) = 4"),
        "{report}"
    );
    assert!(std::fs::read_dir(&scratch).unwrap().next().is_none());
}

#[test]
fn row_level_undo_recovers_the_exact_moment_from_base_backup_and_archived_wal() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    primary.psql("CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'ada')");
    lab.ok(&["pg", "basebackup", &primary.url()]);
    // Written after the base backup: no dump or base backup holds these rows.
    primary.psql("INSERT INTO customers VALUES (2, 'grace'), (3, 'edsger')");
    std::thread::sleep(Duration::from_millis(1100));
    let before_the_mistake = primary.psql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    );
    std::thread::sleep(Duration::from_millis(1100));
    primary.psql("DELETE FROM customers WHERE id IN (2, 3)");
    primary.psql("INSERT INTO customers VALUES (4, 'barbara')");
    primary.archive_now();

    let diff: serde_json::Value = serde_json::from_str(&lab.ok(&[
        "--json",
        "diff",
        &primary.url(),
        "--from",
        &before_the_mistake,
        "--table",
        "customers",
    ]))
    .unwrap();
    let table = &diff["tables"][0];
    assert_eq!(table["deleted"].as_array().unwrap().len(), 2, "{diff}");
    assert_eq!(table["inserted"].as_array().unwrap().len(), 1, "{diff}");
    assert_eq!(table["inserted"][0]["name"], "barbara", "{diff}");

    let out = lab.ok(&[
        "restore-rows",
        &primary.url(),
        "--at",
        &before_the_mistake,
        "--table",
        "customers",
        "--where",
        "id IN (2, 3)",
        "--apply",
    ]);
    assert!(out.contains("put back 2 missing"), "{out}");
    // The rows are back; the write made after the mistake stays.
    assert_eq!(
        primary.psql("SELECT string_agg(name, ',' ORDER BY id) FROM customers"),
        "ada,grace,edsger,barbara"
    );
    // The throwaway clusters are gone.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name.starts_with("lifeboat-rows-") || name.starts_with("lifeboat-diff-"))
                && e.path().join("cluster/postmaster.pid").exists()
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_lost_database_server_is_recovered_by_running_the_runbook_as_printed() {
    let lab = PgLab::new();
    let primary = Cluster::start(&lab, "primary", &lab.archive_command());
    primary.psql(
        "CREATE TABLE ticks (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    );
    lab.ok(&["pg", "basebackup", &primary.url()]);
    // Acknowledged writes; the archive then reaches the last of these (a quiet server
    // archives within archive_timeout; here the test switches WAL files itself).
    for n in 1..=200 {
        primary.psql(&format!("INSERT INTO ticks (n) VALUES ({n})"));
    }
    primary.archive_now();
    let archived_at = primary.psql("SELECT max(at) FROM ticks");
    // Written after the last archived WAL file: what a lost server loses.
    for n in 201..=210 {
        primary.psql(&format!("INSERT INTO ticks (n) VALUES ({n})"));
    }
    let last_write = primary.psql("SELECT max(at) FROM ticks");

    let config = lab.path("lifeboat.toml");
    std::fs::write(
        &config,
        format!(
            "[[source]]\nname = \"db\"\nurl = \"{}\"\n[[target]]\nname = \"vault\"\nurl = \"{}\"\npassword_file = \"{}\"\n\
             [[plan]]\nname = \"p\"\nsources = [\"db\"]\ntargets = [\"vault\"]\nschedule = \"every 1h\"\n",
            primary.url(),
            lab.repo.display(),
            lab.password_file.display()
        ),
    )
    .unwrap();
    let runbook = lab.ok(&["plan", "--config", config.to_str().unwrap()]);
    let block = common::runbook_blocks(&runbook, "### db")
        .into_iter()
        .find(|block| block.contains("pg restore"))
        .unwrap_or_else(|| panic!("no pg restore block under ### db:\n{runbook}"));
    assert!(
        runbook.contains("**The database server is lost**"),
        "{runbook}"
    );

    // The disaster: the server and its data directory are gone.
    let port = primary.port;
    primary.pg_ctl(&["-m", "immediate", "stop"]);
    std::fs::remove_dir_all(primary.data()).unwrap();
    drop(primary);

    // A new server: the block run as a shell script by the cluster's owner, with only
    // PATH, HOME and PGDATA set.
    let pgdata = lab.path("new-server/data");
    let made = common::postgres::as_owner("mkdir")
        .arg("-p")
        .arg(pgdata.parent().unwrap())
        .status()
        .unwrap();
    assert!(made.success());
    let bin_dir = lab.lifeboat.parent().unwrap().to_path_buf();
    let started = Instant::now();
    let out = common::postgres::as_owner("env")
        .arg("-i")
        .arg(format!(
            "PATH={}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ))
        .arg(format!("HOME={}", lab.path("new-home").display()))
        .arg(format!("PGDATA={}", pgdata.display()))
        .args(["sh", "-e", "-c", &block])
        .current_dir(lab.dir.path())
        .output()
        .unwrap();
    let recovery_time = started.elapsed();
    assert!(
        out.status.success(),
        "the runbook's block failed:\n{block}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let recovered = Cluster::adopt(pgdata, port);
    // Every archived write is back, in order, and nothing after the archive's end.
    assert_eq!(recovered.psql("SELECT count(*) FROM ticks"), "200");
    assert_eq!(recovered.psql("SELECT max(n) FROM ticks"), "200");
    assert_eq!(recovered.psql("SELECT max(at) FROM ticks"), archived_at);
    let lost = recovered.psql(&format!(
        "SELECT extract(epoch FROM '{last_write}'::timestamptz - max(at)) FROM ticks"
    ));
    eprintln!(
        "PostgreSQL server recovered from the runbook in {:.1}s (RTO); {lost}s of writes lost (RPO: they were not archived yet)",
        recovery_time.as_secs_f64()
    );
    // It keeps archiving its new timeline into the repository.
    recovered.psql("INSERT INTO ticks (n) VALUES (1000)");
    recovered.archive_now();
}
