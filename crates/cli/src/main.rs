//! The `lifeboat` binary: parse arguments, call the library crates, print results.

mod args;
mod commands;
mod context;
mod exit;
mod progress;
mod secrets;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let filter = match cli.global.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
    let result = commands::run(cli);
    if let Err(error) = result {
        let code = exit::code_for(&error);
        eprintln!("lifeboat: {}", exit::one_line(&error));
        std::process::exit(code);
    }
}
