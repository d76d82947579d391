//! Locks over caches and registries that survive a panicking holder: what they guard is a
//! cache or a registry that stays consistent between statements, so a poisoned lock is taken
//! over rather than spreading the panic.

use std::sync::Mutex;

/// Locks a mutex, recovering it if a panicking holder poisoned it (the data is a cache).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
