//! A three-node Garage cluster on loopback with `replication_factor = 3`, as Garage's
//! docs describe a production cluster: one process per node, each with its own RPC, S3
//! and admin ports and data, joined into one layout. Clients talk to node 0's S3 API;
//! any other node can be stopped and started again on its data.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::postgres::free_port;

pub const BUCKET: &str = "lifeboat-cluster";

struct Node {
    config: PathBuf,
    rpc_port: u16,
    child: Option<Child>,
}

pub struct GarageCluster {
    pub dir: tempfile::TempDir,
    garage: PathBuf,
    nodes: Vec<Node>,
    s3_port: u16,
    key_id: String,
    secret: String,
}

/// `bytes` random bytes in hex (at most 32).
fn hex(bytes: usize) -> String {
    lifeboat_repo::Id::random().to_hex()[..2 * bytes].to_string()
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "garage cluster: no {what} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl GarageCluster {
    /// `None` (with the reason printed) when Garage is not installed.
    pub fn start(nodes: usize) -> Option<GarageCluster> {
        let in_path: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join("garage"))
                    .collect()
            })
            .unwrap_or_default();
        let cargo_bin =
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/garage"));
        let garage = in_path.into_iter().chain(cargo_bin).find(|p| p.exists());
        let Some(garage) = garage else {
            super::skip("garage is missing (cargo install garage --locked)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let (rpc_secret, admin_token) = (hex(32), hex(32));
        let mut cluster = GarageCluster {
            dir,
            garage,
            nodes: Vec::new(),
            s3_port: 0,
            key_id: format!("GK{}", hex(12)),
            secret: hex(32),
        };
        for i in 0..nodes {
            let (rpc_port, s3_port, admin_port) = (free_port(), free_port(), free_port());
            if i == 0 {
                cluster.s3_port = s3_port;
            }
            let root = cluster.dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(root.join("meta")).unwrap();
            std::fs::create_dir_all(root.join("data")).unwrap();
            let config = root.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = {nodes}
compression_level = "none"
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{admin_token}"
"#,
                    root = root.display()
                ),
            )
            .unwrap();
            cluster.nodes.push(Node {
                config,
                rpc_port,
                child: None,
            });
            cluster.start_node(i);
        }
        let ids: Vec<String> = (0..nodes)
            .map(|i| {
                let mut id = String::new();
                wait("node id", Duration::from_secs(60), || {
                    let out = cluster.g(i, &["node", "id", "-q"]);
                    id = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    out.status.success() && !id.is_empty()
                });
                id.split('@').next().unwrap().to_string()
            })
            .collect();
        for (i, id) in ids.iter().enumerate().skip(1) {
            let peer = format!("{id}@127.0.0.1:{}", cluster.nodes[i].rpc_port);
            wait("a connection", Duration::from_secs(60), || {
                cluster.g(0, &["node", "connect", &peer]).status.success()
            });
        }
        for id in &ids {
            let out = cluster.g(0, &["layout", "assign", "-z", "dc1", "-c", "1G", id]);
            assert!(out.status.success(), "layout assign: {out:?}");
        }
        let out = cluster.g(0, &["layout", "apply", "--version", "1"]);
        assert!(out.status.success(), "layout apply: {out:?}");
        wait("a healthy cluster", Duration::from_secs(60), || {
            cluster.g(0, &["health"]).status.success()
        });
        let (key_id, secret) = (cluster.key_id.clone(), cluster.secret.clone());
        for args in [
            vec!["key", "import", "--yes", "-n", "lifeboat", &key_id, &secret],
            vec!["bucket", "create", BUCKET],
            vec![
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", &key_id,
            ],
        ] {
            let out = cluster.g(0, &args);
            assert!(out.status.success(), "garage {args:?}: {out:?}");
        }
        wait("the S3 API", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", cluster.s3_port)).is_ok()
        });
        Some(cluster)
    }

    fn g(&self, node: usize, args: &[&str]) -> Output {
        Command::new(&self.garage)
            .arg("-c")
            .arg(&self.nodes[node].config)
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .output()
            .unwrap()
    }

    /// Starts node `i` (again, on its data).
    pub fn start_node(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{i}.log")))
            .unwrap();
        let child = Command::new(&self.garage)
            .arg("-c")
            .arg(&self.nodes[i].config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i].child = Some(child);
    }

    /// Kills node `i` outright (a crashed or unplugged machine).
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The variables that point an S3 client at node 0.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret.clone()),
            ("AWS_REGION".into(), "garage".into()),
            (
                "AWS_ENDPOINT_URL".into(),
                format!("http://127.0.0.1:{}", self.s3_port),
            ),
        ]
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i);
        }
    }
}
