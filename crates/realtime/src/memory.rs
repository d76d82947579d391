//! Registries that give their memory back: after a flood of topics or subscriptions, a map
//! would otherwise stay at its peak size for the life of the process.

use std::collections::HashMap;

/// Gives back a map's memory once it is mostly empty: after a flood of topics or subscriptions
/// the tables would otherwise stay at their peak size for the life of the process.
pub fn shrink<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to_fit();
    }
}
