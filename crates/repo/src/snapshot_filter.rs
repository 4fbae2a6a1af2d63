//! Which snapshots a command considers: restic's `--host`, `--tag` and `--path`, shared by
//! `snapshots`, `ls`, `restore latest` and `forget`.

use crate::snapshot::Snapshot;

/// Empty lists match everything. A snapshot matches when its host is one of `hosts`, it
/// carries every tag of at least one of `tags` (`"a,b"` means a and b), and its paths
/// include every one of `paths`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    pub hosts: Vec<String>,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
}

impl SnapshotFilter {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.tags.is_empty() && self.paths.is_empty()
    }

    pub fn matches(&self, snapshot: &Snapshot) -> bool {
        let host = self.hosts.is_empty() || self.hosts.contains(&snapshot.host);
        let tags = self.tags.is_empty()
            || self.tags.iter().any(|all| {
                all.split(',')
                    .filter(|t| !t.is_empty())
                    .all(|t| snapshot.tags.iter().any(|have| have == t))
            });
        let paths = self.paths.iter().all(|p| snapshot.paths.contains(p));
        host && tags && paths
    }

    /// The filter as options (`--host web1 --tag plan:app`), for messages.
    pub fn describe(&self) -> String {
        let option = |name: &str, values: &[String]| {
            values
                .iter()
                .map(|v| format!(" --{name} {v}"))
                .collect::<String>()
        };
        format!(
            "{}{}{}",
            option("host", &self.hosts),
            option("tag", &self.tags),
            option("path", &self.paths)
        )
        .trim_start()
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{SnapshotSource, SnapshotSummary, SNAPSHOT_VERSION};
    use crate::Id;

    fn snapshot(host: &str, tags: &[&str], paths: &[&str]) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            time: chrono::Utc::now(),
            host: host.into(),
            username: "app".into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pinned: false,
            source: SnapshotSource::Files,
            tree: Id([0; 32]),
            parent: None,
            original: None,
            summary: SnapshotSummary::default(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn hosts_any_tags_any_group_of_all_paths_all() {
        let s = snapshot("web1", &["plan:app", "source:db"], &["/srv/db", "/srv/up"]);
        let filter = |hosts: &[&str], tags: &[&str], paths: &[&str]| SnapshotFilter {
            hosts: hosts.iter().map(|v| v.to_string()).collect(),
            tags: tags.iter().map(|v| v.to_string()).collect(),
            paths: paths.iter().map(|v| v.to_string()).collect(),
        };
        assert!(filter(&[], &[], &[]).matches(&s));
        assert!(filter(&["web2", "web1"], &[], &[]).matches(&s));
        assert!(!filter(&["web2"], &[], &[]).matches(&s));
        assert!(filter(&[], &["plan:app,source:db"], &[]).matches(&s));
        assert!(!filter(&[], &["plan:app,source:up"], &[]).matches(&s));
        assert!(filter(&[], &["plan:app,source:up", "source:db"], &[]).matches(&s));
        assert!(filter(&[], &[], &["/srv/db"]).matches(&s));
        assert!(!filter(&[], &[], &["/srv/db", "/srv/other"]).matches(&s));
        assert!(!filter(&["web1"], &["plan:other"], &["/srv/db"]).matches(&s));
        assert_eq!(
            filter(&["web1"], &["a,b"], &["/srv/db"]).describe(),
            "--host web1 --tag a,b --path /srv/db"
        );
    }
}
