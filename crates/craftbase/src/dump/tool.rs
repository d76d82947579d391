//! Running pg_dump and pg_restore: their `--verbose` lines drive the progress bar, and when one
//! fails, what it said on stderr is the error.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;

/// Lines of stderr kept to explain a failure.
const KEPT_LINES: usize = 40;

/// A `pg_dump`/`pg_restore` command of the installation in `bindir`, told to say what it does.
/// The environment's `PGOPTIONS` would reach the server as session settings: dropped.
pub fn command(bindir: &Path, name: &str) -> Command {
    let mut cmd = Command::new(bindir.join(name));
    cmd.arg("--verbose")
        .arg("--no-password")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` (stdout as the caller set it), handing each stderr line to `on_line`. Returns the
/// warnings it printed; fails with its errors (or the end of its stderr) when it exits non-zero.
/// Blocks: call it where blocking is allowed.
pub fn run(mut cmd: Command, on_line: &mut dyn FnMut(&str)) -> anyhow::Result<Vec<String>> {
    let name = cmd
        .get_program()
        .to_string_lossy()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", cmd.get_program().to_string_lossy()))?;
    let stderr = child.stderr.take().context("stderr was not piped")?;
    let mut messages = VecDeque::new();
    let mut tail = VecDeque::new();
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        on_line(line);
        keep(&mut tail, line);
        if is_message(&name, line) {
            keep(&mut messages, line);
        }
    }
    let status = child.wait()?;
    if status.success() {
        return Ok(messages.into());
    }
    let said = if messages.is_empty() { tail } else { messages };
    let said: Vec<String> = said.into();
    anyhow::bail!("{name} failed ({status}):\n{}", said.join("\n"))
}

fn keep(lines: &mut VecDeque<String>, line: &str) {
    if lines.len() == KEPT_LINES {
        lines.pop_front();
    }
    lines.push_back(line.to_owned());
}

/// An error, a warning, or their detail, hint and the command that failed, as opposed to the
/// `--verbose` narration (`pg_dump: reading tables`).
fn is_message(name: &str, line: &str) -> bool {
    match line.strip_prefix(name).and_then(|l| l.strip_prefix(": ")) {
        Some(rest) => ["error:", "warning:", "detail:", "hint:"]
            .iter()
            .any(|kind| rest.starts_with(kind)),
        None => !line.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_message;

    #[test]
    fn errors_and_their_context_are_messages_and_narration_is_not() {
        assert!(!is_message("pg_dump", "pg_dump: reading extensions"));
        assert!(!is_message(
            "pg_restore",
            "pg_restore: processing data for table \"public.notes\""
        ));
        assert!(is_message(
            "pg_dump",
            "pg_dump: error: connection to server failed"
        ));
        assert!(is_message(
            "pg_restore",
            "pg_restore: warning: errors ignored on restore: 1"
        ));
        assert!(is_message("pg_restore", "Command was: CREATE TABLE x ();"));
        assert!(is_message(
            "pg_restore",
            "ERROR:  role \"editor\" does not exist"
        ));
    }
}
