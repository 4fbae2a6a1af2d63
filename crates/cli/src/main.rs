//! The `lifeboat` binary: parse arguments, call the library crates, print results.

/// `println!` that takes a closed standard output (`lifeboat snapshots | head`) as the end
/// of the output rather than a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout_line(&format!($($arg)*))
    };
}

mod args;
mod commands;
mod context;
mod exit;
mod progress;
mod secrets;

use clap::Parser;

/// glibc raises its mmap threshold after the first large free, after which every 8 MiB pack
/// buffer comes from a per-thread arena and stays resident once freed: a backup's RSS then
/// doubles (measured: 70 MiB against 39 MiB on a 510 MiB file). A fixed threshold keeps
/// packs in mmap'd memory that is returned at once; two arenas limit per-thread hoarding.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

pub(crate) fn write_stdout_line(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{text}").and_then(|_| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("lifeboat: cannot write the output: {e}");
        std::process::exit(exit::FAILURE);
    }
}

fn main() {
    tune_allocator();
    // Before any HTTPS client exists (object stores, webhooks, `lifeboat serve`).
    lifeboat_storage::tls::install_crypto_provider();
    let cli = args::Cli::parse();
    lifeboat_sources::child_env::pass_through(&cli.global.pass_env);
    // The agent is a service: its log says what each job did (one line per job) and
    // when; one-shot commands print only problems unless asked.
    let is_agent = matches!(cli.command, args::Command::Agent(_));
    // reqsign logs each credential source it tries and fails as a warning that dumps the
    // provider's internals; the one line that matters is the error Lifeboat reports.
    let filter = match (cli.global.verbose, is_agent) {
        (0, true) => "warn,lifeboat_agent=info,reqsign_core=error,reqsign_aws_core=error",
        (0, false) => "warn,reqsign_core=error,reqsign_aws_core=error",
        (1, _) => "info",
        _ => "debug",
    };
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colours only for people: a log file (lifeboat serve's, say) gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    if is_agent {
        subscriber.init();
    } else {
        subscriber.without_time().init();
    }
    let result = commands::run(cli);
    if let Err(error) = result {
        let code = exit::code_for(&error);
        eprintln!("lifeboat: {}", exit::one_line(&error));
        std::process::exit(code);
    }
}
