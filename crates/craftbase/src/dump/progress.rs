//! What backup and restore show while they run: steps and a bar of tables on a terminal, log
//! lines otherwise (a pipe, a file, a service manager's journal).

use std::io::{IsTerminal, Write};

/// Width of the bar in characters.
const BAR_WIDTH: usize = 30;
/// The longest table name drawn after the bar.
const NAME_WIDTH: usize = 40;

/// Steps before and after the long part.
pub fn step(step: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("  • {step}…");
    } else {
        tracing::info!("{step}");
    }
}

/// Tables done out of `total` (when known).
pub struct Bar {
    terminal: bool,
    total: Option<usize>,
    done: usize,
    verb: &'static str,
}

impl Bar {
    /// `verb` says what happened to each table: "dumped", "restored".
    pub fn new(total: Option<usize>, verb: &'static str) -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            total,
            done: 0,
            verb,
        }
    }

    pub fn done(&self) -> usize {
        self.done
    }

    /// One more table.
    pub fn advance(&mut self, table: &str) {
        self.done += 1;
        if !self.terminal {
            let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
            tracing::info!(table, progress = %format!("{}{of}", self.done), "{}", self.verb);
            return;
        }
        let line = self.render(table);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Ends the bar's line on a terminal.
    pub fn finish(&mut self) {
        if self.terminal && self.done > 0 {
            eprintln!();
        }
    }

    fn render(&self, table: &str) -> String {
        let name: String = table.chars().take(NAME_WIDTH).collect();
        match self.total {
            Some(total) if total > 0 => {
                let done = self.done.min(total);
                let filled = done * BAR_WIDTH / total;
                format!(
                    "  [{}{}] {done}/{total} tables {}  {name}",
                    "#".repeat(filled),
                    "-".repeat(BAR_WIDTH - filled),
                    self.verb
                )
            }
            _ => format!("  {} tables {}  {name}", self.done, self.verb),
        }
    }
}

/// The table a `pg_dump --verbose` line says it is dumping the rows of.
pub fn dumped_table(line: &str) -> Option<&str> {
    table_in(line, "pg_dump: dumping contents of table ")
}

/// The table a `pg_restore --verbose` line says it is restoring the rows of.
pub fn restored_table(line: &str) -> Option<&str> {
    table_in(line, "pg_restore: processing data for table ")
}

fn table_in<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    Some(line.strip_prefix(prefix)?.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_from_the_verbose_lines() {
        assert_eq!(
            dumped_table("pg_dump: dumping contents of table \"auth.users\""),
            Some("auth.users")
        );
        assert_eq!(
            restored_table("pg_restore: processing data for table \"public.notes\""),
            Some("public.notes")
        );
        assert_eq!(dumped_table("pg_dump: reading schemas"), None);
    }

    #[test]
    fn the_bar_fills_with_the_tables_done_and_never_overflows() {
        let mut bar = Bar {
            terminal: false,
            total: Some(4),
            done: 2,
            verb: "dumped",
        };
        let half = bar.render("public.notes");
        assert!(half.contains(&format!("[{}{}]", "#".repeat(15), "-".repeat(15))));
        assert!(half.contains("2/4 tables dumped  public.notes"));
        bar.done = 9;
        assert!(bar.render("x").contains(&format!("[{}]", "#".repeat(30))));
        bar.total = None;
        assert!(bar.render("x").contains("9 tables dumped"));
    }
}
