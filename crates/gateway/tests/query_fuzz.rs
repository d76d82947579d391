//! Fuzzing the REST query-string parser (`craftbase_gateway::query`) with proptest: structured
//! query strings (select trees with embeds, spreads, hints, casts and JSON paths; filters with
//! every operator and modifier; `or=`/`and=` logic trees; order; quoted names; random
//! percent-encoding) and plain random bytes. The parser must never panic, and a select tree
//! built from the grammar parses exactly when it is within the bounds.
//!
//! Cases per property: 256 by default (seconds, for CI); `PROPTEST_CASES=1000000` for a long run.

use craftbase_gateway::query::{select, ApiQuery, Limits};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// A bare name that is no keyword of the grammar (`count`, `inner`, `left`, operators).
fn bare_name() -> impl Strategy<Value = String> {
    "c_[a-z0-9_]{0,6}"
}

/// A name as a client may write it: bare, or double-quoted with anything inside.
fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => bare_name(),
        1 => "[a-zA-Z0-9 ,.()!:*>\\-\"\\\\'é日]{1,10}"
            .prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))),
        1 => "\\PC{0,6}",
    ]
}

fn json_path() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::bool::ANY, any_name()), 0..3).prop_map(|steps| {
        steps
            .into_iter()
            .map(|(text, key)| format!("{}{key}", if text { "->>" } else { "->" }))
            .collect()
    })
}

fn cast() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => prop::sample::select(vec!["::text", "::int", "::jsonb", "::int4[]", "::character varying", "::", "::(x)"])
            .prop_map(str::to_owned),
    ]
}

fn alias() -> impl Strategy<Value = String> {
    prop_oneof![2 => Just(String::new()), 1 => any_name().prop_map(|a| format!("{a}:"))]
}

/// One leaf of a select list: `*`, a column, an aggregate.
fn select_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_owned()),
        6 => (alias(), any_name(), json_path(), cast()).prop_map(|(a, n, p, c)| format!("{a}{n}{p}{c}")),
        1 => (alias(), cast()).prop_map(|(a, c)| format!("{a}count(){c}")),
        1 => (alias(), any_name(), prop::sample::select(vec!["sum", "avg", "min", "max", "median"]), cast())
            .prop_map(|(a, n, f, c)| format!("{a}{n}.{f}(){c}")),
    ]
}

/// A select list, nested through embeds and spreads.
fn select_list() -> impl Strategy<Value = String> {
    let leaf = prop::collection::vec(select_leaf(), 1..4).prop_map(|v| v.join(","));
    leaf.prop_recursive(18, 48, 3, |inner| {
        prop::collection::vec(
            prop_oneof![
                2 => select_leaf(),
                1 => (
                    alias(),
                    prop::bool::ANY,
                    any_name(),
                    prop::sample::select(vec!["", "!inner", "!left", "!fk_x", "!fk_x!inner", "!a!b!c"]),
                    inner,
                )
                    .prop_map(|(a, spread, n, h, items)| {
                        if spread {
                            format!("...{n}{h}({items})")
                        } else {
                            format!("{a}{n}{h}({items})")
                        }
                    }),
            ],
            1..4,
        )
        .prop_map(|v| v.join(","))
    })
}

const OPERATORS: &[&str] = &[
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "like",
    "ilike",
    "match",
    "imatch",
    "in",
    "is",
    "fts",
    "plfts",
    "phfts",
    "wfts",
    "cs",
    "cd",
    "ov",
    "sl",
    "sr",
    "nxr",
    "nxl",
    "adj",
    "isdistinct",
    "not",
    "xx",
    "",
];

fn filter_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9 %*&|!:]{0,8}",
        1 => prop::collection::vec("[a-z0-9\"\\\\,() ]{0,5}", 0..4).prop_map(|v| format!("({})", v.join(","))),
        1 => prop::sample::select(vec!["null", "not_null", "true", "false", "unknown", "{1,2}", "[1,5)", "\"a,b\""])
            .prop_map(str::to_owned),
        1 => "\\PC{0,10}",
    ]
}

/// `[not.]op[(modifier)].value`.
fn operation() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.2),
        prop::sample::select(OPERATORS),
        prop::sample::select(vec!["", "", "(any)", "(all)", "(english)", "(", "()"]),
        filter_value(),
    )
        .prop_map(|(not, op, m, v)| format!("{}{op}{m}.{v}", if not { "not." } else { "" }))
}

/// `or=(a.eq.1,and(b.gt.2,not.or(c.is.null)))` without the key.
fn logic_tree() -> impl Strategy<Value = String> {
    let leaf = (any_name(), json_path(), operation()).prop_map(|(n, p, o)| format!("{n}{p}.{o}"));
    leaf.prop_recursive(18, 32, 3, |inner| {
        (
            prop::sample::select(vec!["and", "or", "not.and", "not.or"]),
            prop::collection::vec(inner, 1..4),
        )
            .prop_map(|(op, children)| format!("{op}({})", children.join(",")))
    })
    .prop_map(|t| {
        // The key's value is the parenthesised list.
        match t.find('(') {
            Some(i) if !t.starts_with("c_") && !t.starts_with('"') => t[i..].to_owned(),
            _ => format!("({t})"),
        }
    })
}

fn order_term() -> impl Strategy<Value = String> {
    (
        any_name(),
        json_path(),
        prop::sample::select(vec![
            "",
            ".asc",
            ".desc",
            ".asc.nullsfirst",
            ".desc.nullslast",
            ".up",
            ".nullsfirst",
        ]),
    )
        .prop_map(|(n, p, d)| format!("{n}{p}{d}"))
}

/// An embed path prefix for a key: `a.b.`.
fn key_prefix() -> impl Strategy<Value = String> {
    prop::collection::vec(bare_name(), 0..3)
        .prop_map(|v| v.iter().map(|p| format!("{p}.")).collect())
}

/// One `key=value` pair of a query string, before encoding.
fn pair() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        2 => select_list().prop_map(|s| ("select".to_owned(), s)),
        4 => (key_prefix(), any_name(), json_path(), operation()).prop_map(|(k, n, p, o)| (format!("{k}{n}{p}"), o)),
        2 => (key_prefix(), prop::sample::select(vec!["or", "and", "not.or", "not.and"]), logic_tree())
            .prop_map(|(k, op, t)| (format!("{k}{op}"), t)),
        1 => (key_prefix(), prop::collection::vec(order_term(), 1..4))
            .prop_map(|(k, t)| (format!("{k}order"), t.join(","))),
        1 => (key_prefix(), prop::sample::select(vec!["limit", "offset"]), "-?[0-9]{0,22}|x")
            .prop_map(|(k, w, n)| (format!("{k}{w}"), n)),
        1 => (prop::sample::select(vec!["columns", "on_conflict", "apikey", "_", "a"]), "[a-z,\"]{0,12}")
            .prop_map(|(k, v)| (k.to_owned(), v)),
    ]
}

/// Percent-encodes `s` as a client might: nothing, the reserved characters, every byte, or
/// with broken `%` sequences mixed in.
fn encode(s: &str, how: u8) -> String {
    let mut out = String::new();
    for (i, b) in s.bytes().enumerate() {
        let reserved = matches!(b, b'&' | b'=' | b'%' | b'+' | b'#') || !b.is_ascii_graphic();
        match how % 8 {
            0..=4 if !reserved => out.push(b as char),
            5 if !reserved && i % 2 == 0 => out.push(b as char),
            7 if i % 7 == 3 => out.push_str("%G"),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn query_string() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((pair(), any::<u8>()), 0..6),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(pairs, raw)| {
            pairs
                .into_iter()
                .map(|((k, v), how)| {
                    if raw {
                        format!("{k}={v}")
                    } else {
                        format!("{}={}", encode(&k, how / 8), encode(&v, how))
                    }
                })
                .collect::<Vec<_>>()
                .join("&")
        })
}

/// Every entry point of the parser on one input, within the default and within tight bounds.
fn parse_everything(raw: &str) {
    let tight = Limits {
        max_select_items: 3,
        max_embed_depth: 1,
    };
    let _ = ApiQuery::parse(raw, &[]);
    let _ = ApiQuery::parse_within(raw, &["a".to_owned(), "c_a".to_owned()], &tight);
    let _ = select::parse(raw);
    let _ = select::parse_within(raw, &tight);
}

/// Items of a select list built by [`valid_select`], at every level, and its embed depth.
fn measure(items: &[select::SelectItem]) -> (usize, usize) {
    let mut count = 0;
    let mut depth = 0;
    for item in items {
        count += 1;
        if let select::SelectItem::Embed(e) = item {
            let (c, d) = measure(&e.items);
            count += c;
            depth = depth.max(d + 1);
        }
    }
    (count, depth)
}

/// A select list of bare columns and embeds only, always well-formed: (text, items, depth).
fn valid_select() -> impl Strategy<Value = (String, usize, usize)> {
    let leaf = prop::collection::vec(bare_name(), 1..5).prop_map(|v| {
        let n = v.len();
        (v.join(","), n, 0)
    });
    leaf.prop_recursive(24, 400, 6, |inner| {
        prop::collection::vec(
            prop_oneof![
                bare_name().prop_map(|n| (n, 1, 0)),
                (bare_name(), inner).prop_map(|(n, (s, c, d))| (format!("{n}({s})"), c + 1, d + 1)),
            ],
            1..6,
        )
        .prop_map(|v| {
            let text = v
                .iter()
                .map(|(s, _, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let count = v.iter().map(|(_, c, _)| c).sum();
            let depth = v.iter().map(|(_, _, d)| *d).max().unwrap_or(0);
            (text, count, depth)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Structured query strings, encoded in every way, never make the parser panic.
    #[test]
    fn structured_query_strings_never_panic(raw in query_string()) {
        parse_everything(&raw);
    }

    /// Nor do plain random bytes, raw (as lossy text) or percent-encoded.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        parse_everything(&text);
        let encoded: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
        parse_everything(&format!("select={encoded}&{encoded}={encoded}&or={encoded}"));
    }

    /// Nor do random strings over the grammar's own characters, where nesting is likely.
    #[test]
    fn grammar_soup_never_panics(raw in "[a-c_.,:()!*\"\\\\\\-><=&%0-9 ]{0,200}") {
        parse_everything(&raw);
        parse_everything(&format!("select={raw}&or=({raw})&order={raw}&a={raw}"));
    }

    /// A well-formed select tree parses exactly when it is within the bounds, and the parser
    /// sees the items and depth it was given.
    #[test]
    fn select_bounds_are_exact((text, count, depth) in valid_select(), max_items in 1usize..60, max_depth in 1usize..20) {
        let limits = Limits { max_select_items: max_items, max_embed_depth: max_depth };
        match select::parse_within(&text, &limits) {
            Ok(items) => {
                prop_assert!(count <= max_items && depth <= max_depth, "{text}");
                prop_assert_eq!(measure(&items), (count, depth));
            }
            Err(e) => {
                prop_assert!(count > max_items || depth > max_depth, "{text}: {e:?}");
            }
        }
    }
}

#[test]
#[ignore = "prints samples of the generators"]
fn print_samples() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::default();
    let (mut ok, mut n) = (0, 0);
    for i in 0..2000 {
        let raw = query_string().new_tree(&mut runner).unwrap().current();
        let parsed = ApiQuery::parse(&raw, &[]);
        if i < 12 {
            println!("{raw}\n  -> {:?}\n", parsed.as_ref().err());
        }
        n += 1;
        ok += usize::from(parsed.is_ok());
    }
    println!("{ok} of {n} parse");
}
