//! Progress bars on a terminal; silence in pipes, with --json or --quiet.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    pub fn bytes(enabled: bool, total: Option<u64>, message: &str) -> Bar {
        if !Bar::visible(enabled) {
            return Bar { bar: None };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template"),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                    .expect("valid template"),
            ),
        };
        bar.set_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Bar { bar: Some(bar) }
    }

    /// Whether a bar would be drawn: asked for, and stderr a terminal.
    pub fn visible(enabled: bool) -> bool {
        enabled && std::io::stderr().is_terminal()
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl lifeboat_sources::Progress for Bar {
    fn bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A bar per phase of a use case, on a terminal.
pub struct Terminal<'a> {
    ctx: &'a crate::context::Context<'a>,
}

impl<'a> Terminal<'a> {
    pub fn new(ctx: &'a crate::context::Context<'a>) -> Self {
        Terminal { ctx }
    }
}

impl lifeboat_ops::meters::Meters for Terminal<'_> {
    fn start(&self, phase: &str, total: Option<u64>) -> Box<dyn lifeboat_sources::Progress + '_> {
        Box::new(Bar::bytes(self.ctx.progress_enabled(), total, phase))
    }

    fn shown(&self) -> bool {
        Bar::visible(self.ctx.progress_enabled())
    }
}
