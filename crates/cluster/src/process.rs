//! The few operating-system calls the cluster needs, wrapped safely in one place.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// True when this process runs as root, where PostgreSQL refuses to run.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Sends `signal` to `pid`; false if there is no such process (or it is not ours to signal).
pub fn signal(pid: u32, signal: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill has no memory-safety preconditions; a positive pid names one process.
    pid > 0 && unsafe { libc::kill(pid, signal) == 0 }
}

/// True if a process with this pid exists.
pub fn alive(pid: u32) -> bool {
    signal(pid, 0)
}

/// Makes the child receive `sig` when the thread that spawned it dies, so that a craftbase killed
/// with SIGKILL still takes PostgreSQL down with it (fast shutdown, nothing lost).
pub fn die_with_parent(cmd: &mut Command, sig: libc::c_int) {
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and only calls the
    // async-signal-safe functions prctl and getppid; std runs it after the uid/gid switch, which
    // would otherwise clear the setting.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited before exec"));
            }
            Ok(())
        });
    }
}

/// The uid and gid of the `postgres` account, read from /etc/passwd.
pub fn postgres_account() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == "postgres").then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}
