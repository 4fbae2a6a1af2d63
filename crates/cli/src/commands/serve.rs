//! `lifeboat serve` and `lifeboat serve token ...`: the repository server (the work is in
//! `lifeboat_server`; this parses, calls and prints).

use std::path::PathBuf;

use anyhow::Result;
use lifeboat_server::{tokens, Role, ServeOptions};
use serde_json::json;

use crate::args::{ServeArgs, ServeCommand, ServeStateArgs, TokenCommand, TokenRole};
use crate::context::Context;

pub fn run(ctx: &Context, args: &ServeArgs) -> Result<()> {
    let state_dir = state_dir(&args.state)?;
    let token_file = args
        .state
        .tokens
        .clone()
        .unwrap_or_else(|| state_dir.join("tokens.json"));
    match &args.command {
        Some(ServeCommand::Token(command)) => token(ctx, command, &token_file),
        None => serve(ctx, args, state_dir, token_file),
    }
}

fn state_dir(args: &ServeStateArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.state_dir {
        return Ok(dir.clone());
    }
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|base| base.join("lifeboat/serve"))
        .ok_or_else(|| {
            crate::exit::Usage(
                "no home directory: give the state directory with --state-dir".into(),
            )
            .into()
        })
}

fn serve(ctx: &Context, args: &ServeArgs, state_dir: PathBuf, tokens: PathBuf) -> Result<()> {
    let repo = ctx.repo_url()?.to_string();
    let shown = lifeboat_storage::Location::parse(&repo)?.display();
    let options = ServeOptions {
        repo,
        listen: args.listen,
        state_dir: state_dir.clone(),
        tokens: tokens.clone(),
        certificate: args.cert.clone().zip(args.key.clone()),
    };
    lifeboat_server::serve(options, |ready| {
        out!(
            "lifeboat serve: {shown} at {}://{}",
            lifeboat_storage::SERVER_SCHEME,
            ready.address
        );
        let origin = if ready.self_signed {
            format!("self-signed, kept in {}", state_dir.display())
        } else {
            "from --cert".to_string()
        };
        out!(
            "certificate fingerprint: {} ({origin}; clients pin it with {}=...)",
            ready.fingerprint,
            lifeboat_storage::FINGERPRINT_ENV
        );
        if ready.tokens == 0 {
            eprintln!(
                "no tokens yet in {}: add one with `lifeboat serve token add NAME --role append`",
                tokens.display()
            );
        }
    })?;
    Ok(())
}

fn token(ctx: &Context, command: &TokenCommand, file: &std::path::Path) -> Result<()> {
    match command {
        TokenCommand::Add { name, role } => {
            let role = match role {
                TokenRole::Read => Role::Read,
                TokenRole::Append => Role::Append,
                TokenRole::Admin => Role::Admin,
            };
            let token = tokens::add(file, name, role).map_err(usage)?;
            if ctx.global.json {
                ctx.print_json(&json!({"name": name, "role": role.as_str(), "token": token}));
            } else {
                // Stdout holds the token alone, for `TOKEN=$(lifeboat serve token add ...)`.
                out!("{token}");
                if !ctx.global.quiet {
                    eprintln!(
                        "token '{name}' ({}) added to {}; it is shown only this once: give it to the client as {}",
                        role.as_str(),
                        file.display(),
                        lifeboat_storage::TOKEN_ENV
                    );
                }
            }
        }
        TokenCommand::List => {
            let entries = tokens::load(file)?;
            if ctx.global.json {
                let list: Vec<_> = entries
                    .iter()
                    .map(|t| json!({"name": t.name, "role": t.role.as_str(), "created": t.created.to_rfc3339()}))
                    .collect();
                ctx.print_json(&serde_json::Value::Array(list));
            } else {
                for t in &entries {
                    out!(
                        "{:<20} {:<7} {}",
                        t.name,
                        t.role.as_str(),
                        t.created.format("%Y-%m-%d %H:%M:%S")
                    );
                }
            }
        }
        TokenCommand::Remove { name } => {
            if !tokens::remove(file, name)? {
                return Err(crate::exit::Usage(format!(
                    "no token named {name:?} in {}",
                    file.display()
                ))
                .into());
            }
            ctx.say(format!("token '{name}' removed"));
        }
    }
    Ok(())
}

/// The server crate's usage errors are usage errors here too (exit 2).
fn usage(e: lifeboat_server::ServerError) -> anyhow::Error {
    match e {
        lifeboat_server::ServerError::Usage(text) => crate::exit::Usage(text).into(),
        other => other.into(),
    }
}
