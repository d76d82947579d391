//! What the decoder publishes to the change log: entries of committed transactions, each entry
//! within NATS's message size. A batch's transactions are packed into as few entries as fit; a
//! transaction larger than one entry goes in parts, each part its own entry, so a reader can
//! tell which parts it has delivered.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::changes::decode::{Change, Transaction};

/// Room kept in a NATS message for its headers.
const HEADER_ROOM: usize = 4096;

/// Where a piece sits in the stream of commits: a transaction's commit LSN, then its part.
/// After a transaction's last part, a reader is at `(lsn, u32::MAX)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub lsn: u64,
    pub part: u32,
}

impl Position {
    /// The position after this piece: past the whole transaction when it was the last part.
    pub fn done_if(self, last: bool) -> Position {
        if last {
            Position {
                part: u32::MAX,
                ..self
            }
        } else {
            self
        }
    }
}

/// One transaction, or one part of it.
#[derive(Debug, Deserialize)]
pub struct Piece {
    pub part: u32,
    /// Whether this is the transaction's last (or only) part.
    pub last: bool,
    pub transaction: Transaction,
}

impl Piece {
    pub fn position(&self) -> Position {
        Position {
            lsn: self.transaction.lsn,
            part: self.part,
        }
    }
}

/// A piece as written, borrowing its transaction.
#[derive(Serialize)]
struct PieceRef<'a> {
    part: u32,
    last: bool,
    transaction: &'a Transaction,
}

/// One entry of the log.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// Relations whose definition changed before these transactions (each node's catalog
    /// cache forgets them).
    pub invalidated: Vec<u32>,
    pub pieces: Vec<Piece>,
}

impl Entry {
    pub fn parse(bytes: &[u8]) -> Result<Entry, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// The largest entry for a server whose `max_payload` is `max_payload`.
pub fn entry_limit(max_payload: usize) -> usize {
    max_payload.saturating_sub(HEADER_ROOM).max(HEADER_ROOM)
}

/// The entries of a batch, each with the position of its last piece (what the log
/// deduplicates by), in commit order. The relations invalidated go with the first entry.
pub fn entries(
    batch: &[Transaction],
    invalidated: &[u32],
    max_bytes: usize,
) -> Vec<(Position, Bytes)> {
    let mut packer = Packer {
        out: Vec::new(),
        pieces: Vec::new(),
        size: 0,
        at: Position::default(),
        invalidated: invalidated.to_vec(),
        max_bytes,
    };
    for t in batch {
        let whole = piece(0, true, t);
        if whole.len() + packer.overhead() <= max_bytes {
            packer.push(
                whole,
                Position {
                    lsn: t.lsn,
                    part: 0,
                },
            );
        } else {
            packer.flush();
            for (part, (last, p)) in parts(t, max_bytes - packer.overhead())
                .into_iter()
                .enumerate()
            {
                let part = u32::try_from(part).unwrap_or(u32::MAX);
                packer.push(piece(part, last, &p), Position { lsn: t.lsn, part });
                packer.flush();
            }
        }
    }
    packer.flush();
    packer.out
}

fn piece(part: u32, last: bool, transaction: &Transaction) -> Vec<u8> {
    serde_json::to_vec(&PieceRef {
        part,
        last,
        transaction,
    })
    .unwrap_or_default()
}

/// Builds entries out of serialized pieces.
struct Packer {
    out: Vec<(Position, Bytes)>,
    pieces: Vec<Vec<u8>>,
    size: usize,
    at: Position,
    invalidated: Vec<u32>,
    max_bytes: usize,
}

impl Packer {
    /// The bytes of an entry around its pieces.
    fn overhead(&self) -> usize {
        64 + 11 * self.invalidated.len()
    }

    fn push(&mut self, piece: Vec<u8>, at: Position) {
        if !self.pieces.is_empty() && self.size + piece.len() + 1 + self.overhead() > self.max_bytes
        {
            self.flush();
        }
        self.size += piece.len() + 1;
        self.pieces.push(piece);
        self.at = at;
    }

    fn flush(&mut self) {
        if self.pieces.is_empty() {
            return;
        }
        let invalidated = serde_json::to_string(&std::mem::take(&mut self.invalidated))
            .unwrap_or_else(|_| "[]".to_owned());
        let mut entry = Vec::with_capacity(self.size + 64 + invalidated.len());
        entry.extend_from_slice(b"{\"invalidated\":");
        entry.extend_from_slice(invalidated.as_bytes());
        entry.extend_from_slice(b",\"pieces\":[");
        for (i, p) in self.pieces.drain(..).enumerate() {
            if i > 0 {
                entry.push(b',');
            }
            entry.extend_from_slice(&p);
        }
        entry.extend_from_slice(b"]}");
        self.size = 0;
        self.out.push((self.at, Bytes::from(entry)));
    }
}

/// A transaction too large for one entry, in parts that each fit in `max_bytes` (with the last
/// flagged). A single change or broadcast larger than that cannot be sent and is dropped, with
/// a warning.
fn parts(t: &Transaction, max_bytes: usize) -> Vec<(bool, Transaction)> {
    let empty = || Transaction {
        lsn: t.lsn,
        commit_timestamp: t.commit_timestamp.clone(),
        changes: Vec::new(),
        broadcasts: Vec::new(),
    };
    let room = max_bytes.saturating_sub(256 + t.commit_timestamp.len());
    let mut out = Vec::new();
    let mut current = empty();
    let mut size = 0;
    let mut add = |current: &mut Transaction, size: &mut usize, len: usize| -> bool {
        if len > room {
            return false;
        }
        if *size + len + 1 > room {
            out.push(std::mem::replace(current, empty()));
            *size = 0;
        }
        *size += len + 1;
        true
    };
    for c in &t.changes {
        let len = serde_json::to_vec(c).map_or(usize::MAX, |v| v.len());
        if add(&mut current, &mut size, len) {
            current.changes.push(Change::clone(c));
        } else {
            tracing::warn!(
                table = c.table_oid,
                bytes = len,
                "a change larger than a NATS message is not delivered in cluster mode"
            );
        }
    }
    for b in &t.broadcasts {
        let len = serde_json::to_vec(b).map_or(usize::MAX, |v| v.len());
        if add(&mut current, &mut size, len) {
            current.broadcasts.push(b.clone());
        } else {
            tracing::warn!(
                bytes = len,
                "a broadcast larger than a NATS message is not delivered in cluster mode"
            );
        }
    }
    out.push(current);
    let n = out.len();
    out.into_iter()
        .enumerate()
        .map(|(i, t)| (i + 1 == n, t))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn transaction(lsn: u64, rows: usize, bytes: usize) -> Transaction {
        let mut t = Transaction::new("2026-12-03T00:00:00.000Z".to_owned());
        t.lsn = lsn;
        for i in 0..rows {
            t.changes.push(Change {
                table_oid: 7,
                kind: "INSERT",
                new: Some(vec![
                    (Arc::from("id"), Some(i.to_string())),
                    (Arc::from("body"), Some("x".repeat(bytes))),
                ]),
                old: None,
            });
        }
        t
    }

    fn read(entries: &[(Position, Bytes)]) -> Vec<Entry> {
        entries
            .iter()
            .map(|(_, b)| Entry::parse(b).unwrap())
            .collect()
    }

    #[test]
    fn small_transactions_share_an_entry_with_the_invalidations() {
        let batch = [transaction(10, 2, 10), transaction(20, 3, 10)];
        let out = entries(&batch, &[7, 8], 64 * 1024);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, Position { lsn: 20, part: 0 });
        let e = &read(&out)[0];
        assert_eq!(e.invalidated, vec![7, 8]);
        let lsns: Vec<u64> = e.pieces.iter().map(|p| p.transaction.lsn).collect();
        assert_eq!(lsns, vec![10, 20]);
        assert!(e.pieces.iter().all(|p| p.last && p.part == 0));
        assert_eq!(e.pieces[1].transaction.changes.len(), 3);
        assert_eq!(e.pieces[1].transaction.changes[0].kind, "INSERT");
    }

    #[test]
    fn a_large_transaction_goes_in_parts_each_within_the_limit() {
        let max = 16 * 1024;
        let batch = [
            transaction(10, 1, 10),
            transaction(20, 100, 1000),
            transaction(30, 1, 10),
        ];
        let out = entries(&batch, &[], max);
        assert!(out.iter().all(|(_, b)| b.len() <= max));
        let pieces: Vec<(u64, u32, bool, usize)> = read(&out)
            .into_iter()
            .flat_map(|e| e.pieces)
            .map(|p| {
                (
                    p.transaction.lsn,
                    p.part,
                    p.last,
                    p.transaction.changes.len(),
                )
            })
            .collect();
        let big: Vec<_> = pieces.iter().filter(|p| p.0 == 20).collect();
        assert!(big.len() > 5);
        assert_eq!(big.iter().map(|p| p.3).sum::<usize>(), 100, "no row lost");
        assert!(big.iter().enumerate().all(|(i, p)| p.1 == i as u32));
        assert!(big.iter().rev().skip(1).all(|p| !p.2) && big.last().unwrap().2);
        // Each entry's position is its last piece's, increasing.
        let positions: Vec<Position> = out.iter().map(|(p, _)| *p).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(pieces.first().unwrap().0, 10);
        assert_eq!(pieces.last().unwrap().0, 30);
    }

    #[test]
    fn a_change_larger_than_a_message_is_dropped_not_the_transaction() {
        let mut t = transaction(10, 2, 10);
        t.changes.extend(transaction(10, 1, 50_000).changes);
        let out = entries(&[t], &[], 16 * 1024);
        let kept: usize = read(&out)
            .iter()
            .flat_map(|e| &e.pieces)
            .map(|p| p.transaction.changes.len())
            .sum();
        assert_eq!(kept, 2);
    }
}
