//! Finding PostgreSQL's server binaries on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ClusterError;

/// Finds a directory holding `postgres` and `initdb`: `pg_config --bindir`, then `PATH`, then
/// `/usr/lib/postgresql/*/bin` (newest major version first), as Debian and Ubuntu install them.
pub fn find_bindir() -> Result<PathBuf, ClusterError> {
    candidates()
        .into_iter()
        .find(|dir| has_server(dir))
        .ok_or(ClusterError::NoBinaries)
}

fn has_server(dir: &Path) -> bool {
    dir.join("postgres").is_file() && dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.extend(debian_versions(Path::new("/usr/lib/postgresql")));
    dirs
}

/// `/usr/lib/postgresql/<major>/bin`, highest major first.
fn debian_versions(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    found.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    found.into_iter().map(|(_, dir)| dir).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_debian_version_comes_first() {
        let root = tempfile::tempdir().unwrap();
        for v in ["9", "15", "13", "notaversion"] {
            std::fs::create_dir_all(root.path().join(v).join("bin")).unwrap();
        }
        let found = debian_versions(root.path());
        let majors: Vec<_> = found
            .iter()
            .map(|p| p.parent().unwrap().file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(majors, ["15", "13", "9"]);
    }
}
