//! CPU time per request, read from /proc, to show where each side's time goes: this process
//! (the load generator plus the gateway, or plus the ceiling's client) and PostgreSQL (the
//! postmaster and its children).

use std::time::Duration;

/// Reads CPU times of this process and of one PostgreSQL cluster.
pub struct Meter {
    ticks_per_second: f64,
    postmaster: u32,
}

/// Cumulative CPU ticks at one moment.
#[derive(Clone, Copy, Default)]
pub struct Sample {
    own: u64,
    postgres: u64,
}

/// CPU spent between samples, summed over slices.
#[derive(Clone, Copy, Default)]
pub struct Spent {
    own: u64,
    postgres: u64,
}

impl Meter {
    /// `postmaster` is the pid of the cluster's postmaster.
    pub fn new(postmaster: u32) -> Self {
        let ticks_per_second = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0);
        Meter {
            ticks_per_second,
            postmaster,
        }
    }

    pub fn sample(&self) -> Sample {
        let own = stat("self").map_or(0, |s| s.ticks);
        let mut postgres = stat(&self.postmaster.to_string()).map_or(0, |s| s.ticks);
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !name.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                if let Some(s) = stat(&name).filter(|s| s.ppid == self.postmaster) {
                    postgres += s.ticks;
                }
            }
        }
        Sample { own, postgres }
    }

    /// Microseconds of CPU per request: (this process, PostgreSQL).
    pub fn per_request(&self, spent: Spent, requests: usize) -> (f64, f64) {
        let us = |ticks: u64| {
            Duration::from_secs_f64(ticks as f64 / self.ticks_per_second).as_secs_f64() * 1e6
                / requests.max(1) as f64
        };
        (us(spent.own), us(spent.postgres))
    }
}

impl Spent {
    /// Adds what was spent from `before` to `after`.
    pub fn add(&mut self, before: Sample, after: Sample) {
        self.own += after.own.saturating_sub(before.own);
        self.postgres += after.postgres.saturating_sub(before.postgres);
    }
}

struct Stat {
    ppid: u32,
    ticks: u64,
}

/// utime + stime (fields 14 and 15) and ppid (field 4) of /proc/<pid>/stat.
fn stat(pid: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it start past the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        ticks: fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?,
    })
}
