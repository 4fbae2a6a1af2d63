//! Every job is a `lifeboat` child process: a crash or a hang in one job cannot take the
//! agent down, and stopping the agent is a SIGTERM to each child (a backup then stops
//! without a snapshot, which leaves the repository as it was; a replicator ships what
//! committed and exits).

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lifeboat_config::Target;

/// The children running now, by a number of our own (pids are reused).
#[derive(Clone, Default)]
pub struct Children {
    running: Arc<Mutex<HashMap<u64, u32>>>,
    next: Arc<AtomicU64>,
}

/// What a finished child printed, and whether it succeeded.
pub struct Finished {
    pub success: bool,
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    pub stdout: String,
    /// The child's last error line (it prints one line per error), or its exit status.
    pub error: String,
}

impl Children {
    /// Runs `lifeboat ARGS` against `target` and waits for it.
    pub fn run(
        &self,
        exe: &PathBuf,
        target: &Target,
        args: &[String],
    ) -> std::io::Result<Finished> {
        self.run_with_input(exe, Some(target), args, None)
    }

    /// [`Children::run`] with `input` written to the child's standard input (then closed): how a request reaches `lifeboat request`,
    /// since arguments show in `ps` for every user. Without a target, the child finds
    /// each repository in lifeboat.toml itself.
    pub fn run_with_input(
        &self,
        exe: &PathBuf,
        target: Option<&Target>,
        args: &[String],
        input: Option<Vec<u8>>,
    ) -> std::io::Result<Finished> {
        let mut command = Command::new(exe);
        command
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(target) = target {
            for_target(&mut command, target);
        }
        die_with_the_agent(&mut command);
        let mut child = command.spawn()?;
        let key = self.next.fetch_add(1, Ordering::SeqCst);
        self.running
            .lock()
            .expect("children")
            .insert(key, child.id());
        // Written from a thread of its own: a child that prints before it has read all
        // of its input must not stall on a full pipe while we are still writing.
        let writer = match (input, child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => Some(std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&bytes);
            })),
            _ => None,
        };
        let mut stderr = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut stdout = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        let status = child.wait();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        self.running.lock().expect("children").remove(&key);
        let stderr = reader.join().unwrap_or_default();
        let status = status?;
        let error = error_line(&stderr, &status);
        Ok(Finished {
            success: status.success(),
            code: status.code(),
            stdout,
            error,
        })
    }

    /// Asks every child to stop.
    pub fn terminate_all(&self) {
        for pid in self.running.lock().expect("children").values() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(*pid as i32, libc::SIGTERM);
            }
        }
    }

    pub fn register(&self, pid: u32) -> u64 {
        let key = self.next.fetch_add(1, Ordering::SeqCst);
        self.running.lock().expect("children").insert(key, pid);
        key
    }

    pub fn unregister(&self, key: u64) {
        self.running.lock().expect("children").remove(&key);
    }
}

/// Makes the child receive SIGTERM when the agent dies, however it dies: a `kill -9`d
/// agent must not leave a replicator holding its stream's lease (the restarted agent's
/// replicator would find the stream taken) or a backup running unsupervised. Every
/// child is spawned by a thread that waits for it, so the thread-bound parent-death
/// signal fires only when the agent itself is gone.
pub fn die_with_the_agent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let agent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and
    // exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The agent died before the signal was armed: do not outlive it.
            if libc::getppid() != agent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// The repository and passphrase of `target`, passed as the environment (never as
/// arguments, which `ps` shows).
pub fn for_target(command: &mut Command, target: &Target) {
    command
        .env("LIFEBOAT_REPO", &target.url)
        .env_remove("LIFEBOAT_CONFIG");
    if let Some(password) = &target.password {
        command
            .env("LIFEBOAT_PASSWORD", password.expose())
            .env_remove("LIFEBOAT_PASSWORD_FILE");
    } else if let Some(file) = &target.password_file {
        command.env("LIFEBOAT_PASSWORD_FILE", file);
    }
}

/// The last error a `lifeboat` child printed (one `lifeboat: ...` line per error), else
/// its exit status.
pub fn error_line(stderr: &str, status: &std::process::ExitStatus) -> String {
    stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("lifeboat: "))
        .map(str::to_string)
        .unwrap_or_else(|| format!("exited with {status}"))
}
