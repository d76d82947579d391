//! "Perhaps you meant ..." hints. PostgREST picks them with a fuzzy string set (the `fuzzyset`
//! Haskell library): candidates ranked by the cosine of their 3-grams (2-grams when no 3-gram
//! matches), the best 50 re-ranked by normalised Levenshtein similarity, kept above a minimum
//! score. The same ranking here gives the same hint for the same names.

use std::collections::HashMap;

/// The default minimum score of `get`/`getOne`.
pub const DEFAULT_MIN: f64 = 0.33;
/// The stricter minimum PostgREST uses for table and function names.
pub const NAME_MIN: f64 = 0.75;

/// Names to match against, built per error (only failed requests pay for it).
pub struct NameSet {
    entries: Vec<Entry>,
}

struct Entry {
    /// Lowercased, as the set keys it.
    key: String,
    original: String,
    /// Gram counts for sizes 2 and 3.
    grams: [HashMap<String, usize>; 2],
}

impl NameSet {
    /// A set of `names`; a name already present (ignoring case) is kept once.
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut entries: Vec<Entry> = Vec::new();
        for name in names {
            let original = name.into();
            let key = original.to_lowercase();
            if entries.iter().any(|e| e.key == key) {
                continue;
            }
            let grams = [grams(&key, 2), grams(&key, 3)];
            entries.push(Entry {
                key,
                original,
                grams,
            });
        }
        NameSet { entries }
    }

    /// Matches of `query` scoring at least `min`, best first; an exact match (ignoring case)
    /// alone with score 1.
    pub fn get(&self, query: &str, min: f64) -> Vec<(f64, &str)> {
        let key = query.to_lowercase();
        if let Some(e) = self.entries.iter().find(|e| e.key == key) {
            return vec![(1.0, e.original.as_str())];
        }
        for size in [3usize, 2] {
            let q = grams(&key, size);
            let q_norm = norm(&q);
            let mut ranked: Vec<(f64, &Entry)> = self
                .entries
                .iter()
                .filter_map(|e| {
                    let g = &e.grams[size - 2];
                    let dot: usize = q.iter().map(|(k, n)| n * g.get(k).unwrap_or(&0)).sum();
                    (dot > 0).then(|| (dot as f64 / (q_norm * norm(g)), e))
                })
                .collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
            ranked.truncate(50);
            let mut rescored: Vec<(f64, &str)> = ranked
                .into_iter()
                .map(|(_, e)| (similarity(&key, &e.key), e.original.as_str()))
                .collect();
            rescored.sort_by(|a, b| b.0.total_cmp(&a.0));
            rescored.retain(|(score, _)| *score >= min);
            if !rescored.is_empty() {
                return rescored;
            }
        }
        Vec::new()
    }

    /// The best match of `query` scoring at least `min`.
    pub fn get_one(&self, query: &str, min: f64) -> Option<&str> {
        self.get(query, min).first().map(|(_, name)| *name)
    }
}

/// Lowercase, keep letters, digits, spaces and commas, enclose in `-`, then every window of
/// `size` characters.
fn grams(key: &str, size: usize) -> HashMap<String, usize> {
    let kept: Vec<char> = std::iter::once('-')
        .chain(
            key.chars()
                .flat_map(char::to_lowercase)
                .filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == ','),
        )
        .chain(std::iter::once('-'))
        .collect();
    let mut out = HashMap::new();
    if kept.len() >= size {
        for w in kept.windows(size) {
            *out.entry(w.iter().collect()).or_insert(0) += 1;
        }
    }
    out
}

fn norm(v: &HashMap<String, usize>) -> f64 {
    (v.values().map(|n| n * n).sum::<usize>() as f64).sqrt()
}

/// `1 - levenshtein / longer length`, in characters.
fn similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    1.0 - row[b.len()] as f64 / longest as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    // The examples PostgREST documents for its hints.
    #[test]
    fn names_as_postgrest_suggests_them() {
        let parents = NameSet::new(["films"]);
        assert_eq!(parents.get_one("film", DEFAULT_MIN), Some("films"));
        let children = NameSet::new(["directors", "roles", "actors"]);
        assert_eq!(children.get_one("role", DEFAULT_MIN), Some("roles"));
        assert_eq!(children.get_one("noclosealternative", DEFAULT_MIN), None);
        let procs = NameSet::new(["test", "another"]);
        assert_eq!(procs.get_one("testt", NAME_MIN), Some("test"));
        assert_eq!(procs.get_one("other", NAME_MIN), None);
        let params = NameSet::new(["(name, param, val)", "(attr, id)"]);
        assert_eq!(
            params.get_one("(nam, pqaram, vall)", DEFAULT_MIN),
            Some("(name, param, val)")
        );
        assert_eq!(
            params.get_one("(attrs, id)", DEFAULT_MIN),
            Some("(attr, id)")
        );
        assert_eq!(params.get_one("(id)", DEFAULT_MIN), Some("(attr, id)"));
        assert_eq!(params.get_one("(noclosealternative)", DEFAULT_MIN), None);
    }

    #[test]
    fn levenshtein_similarity() {
        assert_eq!(similarity("kitten", "sitting"), 1.0 - 3.0 / 7.0);
        assert_eq!(similarity("", ""), 1.0);
    }
}
