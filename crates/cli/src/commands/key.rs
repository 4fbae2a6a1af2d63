use anyhow::Result;
use serde_json::json;

use crate::args::{KeyArgs, KeyCommand};
use crate::commands::init::kdf_params;
use crate::context::Context;

pub fn run(ctx: &Context, args: &KeyArgs) -> Result<()> {
    let repo = ctx.open()?;
    if !matches!(args.command, KeyCommand::List) {
        ctx.require_admin(&repo, "key")?;
    }
    match &args.command {
        KeyCommand::List => {
            let slots = repo.list_keys()?;
            if ctx.global.json {
                let list: Vec<_> = slots
                    .iter()
                    .map(|s| {
                        json!({
                            "id": s.id,
                            "current": s.current,
                            "created": s.file.created.to_rfc3339(),
                            "host": s.file.host,
                            "username": s.file.username,
                            "kdf": s.file.kdf,
                            "params": s.file.params,
                        })
                    })
                    .collect();
                ctx.print_json(&serde_json::Value::Array(list));
            } else {
                for s in slots {
                    out!(
                        "{} {:<9} {} {}@{}",
                        if s.current { "*" } else { " " },
                        &s.id[..8],
                        s.file.created.format("%Y-%m-%d %H:%M:%S"),
                        s.file.username,
                        s.file.host
                    );
                }
            }
        }
        KeyCommand::Add(new) => {
            let passphrase = crate::secrets::new_passphrase(new.new_password_file.as_deref())?;
            let id = repo.add_key(passphrase.as_bytes(), kdf_params(&new.kdf))?;
            ctx.say(format!("added key {}", &id[..8]));
        }
        KeyCommand::Remove { id } => {
            let removed = repo.remove_key(id)?;
            ctx.say(format!("removed key {}", &removed[..8]));
        }
        KeyCommand::Passwd(new) => {
            let passphrase = crate::secrets::new_passphrase(new.new_password_file.as_deref())?;
            let id = repo.change_passphrase(passphrase.as_bytes(), kdf_params(&new.kdf))?;
            ctx.say(format!("passphrase changed (new key {})", &id[..8]));
        }
    }
    Ok(())
}
