//! Where a token keeps its role (`PGRST_JWT_ROLE_CLAIM_KEY`): PostgREST 12's JSPath, such as
//! `.role`, `."https://example.com/claims".roles[0]` or `.roles[?(@ == "admin")]`.

use serde_json::Value;

/// One step of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `.name` or `."any text"`.
    Key(String),
    /// `[0]`.
    Index(usize),
    /// `[?(@ op "text")]`: the first string of an array that matches; only last.
    Filter(Match, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Equals,
    NotEquals,
    StartsWith,
    EndsWith,
    Contains,
}

/// A parsed role claim key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleClaimKey(Vec<Step>);

impl Default for RoleClaimKey {
    fn default() -> Self {
        RoleClaimKey(vec![Step::Key("role".into())])
    }
}

impl std::str::FromStr for RoleClaimKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let fail = |why: &str| {
            Err(format!(
                "failed to parse role-claim-key value ({text}): {why}"
            ))
        };
        let mut steps = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if matches!(steps.last(), Some(Step::Filter(..))) {
                return fail("a filter must be the last step");
            }
            if let Some(after) = rest.strip_prefix('.') {
                if let Some(quoted) = after.strip_prefix('"') {
                    let Some(end) = quoted.find('"') else {
                        return fail("unclosed quote");
                    };
                    steps.push(Step::Key(quoted[..end].to_owned()));
                    rest = &quoted[end + 1..];
                } else {
                    let end = after
                        .find(|c: char| !(c.is_alphanumeric() || "_$@".contains(c)))
                        .unwrap_or(after.len());
                    if end == 0 {
                        return fail("expected a key after '.'");
                    }
                    steps.push(Step::Key(after[..end].to_owned()));
                    rest = &after[end..];
                }
            } else if let Some(after) = rest.strip_prefix("[?(") {
                let Some(close) = after.rfind(")]") else {
                    return fail("unclosed filter");
                };
                if close + 2 != after.len() {
                    return fail("a filter must be the last step");
                }
                let cond = after[..close].trim();
                let Some(cond) = cond.strip_prefix('@') else {
                    return fail("a filter starts with @");
                };
                let cond = cond.trim_start();
                let (op, value) = [
                    ("==^", Match::EndsWith),
                    ("==", Match::Equals),
                    ("!=", Match::NotEquals),
                    ("^==", Match::StartsWith),
                    ("*==", Match::Contains),
                ]
                .into_iter()
                .find_map(|(token, op)| cond.strip_prefix(token).map(|v| (op, v.trim())))
                .map_or((None, ""), |(op, v)| (Some(op), v));
                let Some(op) = op else {
                    return fail("unknown filter operator");
                };
                let Some(value) = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .filter(|v| !v.contains('"'))
                else {
                    return fail("a filter compares with a quoted string");
                };
                steps.push(Step::Filter(op, value.to_owned()));
                rest = "";
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').unwrap_or(0);
                let Ok(index) = after[..end].parse::<usize>() else {
                    return fail("expected an array index");
                };
                steps.push(Step::Index(index));
                rest = &after[end + 1..];
            } else {
                return fail("expected '.' or '['");
            }
        }
        if steps.is_empty() {
            return fail("empty");
        }
        Ok(RoleClaimKey(steps))
    }
}

impl RoleClaimKey {
    /// The value the path leads to in `claims`, if any.
    pub fn find<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        let mut at = claims;
        for step in &self.0 {
            at = match (step, at) {
                (Step::Key(k), Value::Object(o)) => o.get(k)?,
                (Step::Index(i), Value::Array(a)) => a.get(*i)?,
                (Step::Filter(op, text), Value::Array(a)) => a.iter().find(|v| {
                    v.as_str().is_some_and(|s| match op {
                        Match::Equals => s == text,
                        Match::NotEquals => s != text,
                        Match::StartsWith => s.starts_with(text.as_str()),
                        Match::EndsWith => s.ends_with(text.as_str()),
                        Match::Contains => s.contains(text.as_str()),
                    })
                })?,
                _ => return None,
            };
        }
        Some(at)
    }

    /// Whether the key is PostgREST's default, `.role`.
    pub fn is_default(&self) -> bool {
        *self == RoleClaimKey::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(s: &str) -> RoleClaimKey {
        s.parse().unwrap()
    }

    #[test]
    fn paths_reach_nested_roles() {
        let claims = json!({
            "role": "authenticated",
            "https://example.com/claims": {"roles": ["viewer", "admin"]},
            "app": {"role_name": "editor"}
        });
        assert_eq!(key(".role").find(&claims), Some(&json!("authenticated")));
        assert!(key(".role").is_default());
        assert_eq!(
            key(r#"."https://example.com/claims".roles[1]"#).find(&claims),
            Some(&json!("admin"))
        );
        assert_eq!(key(".app.role_name").find(&claims), Some(&json!("editor")));
        let roles = r#"."https://example.com/claims".roles"#;
        for (filter, found) in [
            (r#"[?(@ == "admin")]"#, "admin"),
            (r#"[?(@ != "viewer")]"#, "admin"),
            (r#"[?(@ ^== "vie")]"#, "viewer"),
            (r#"[?(@ ==^ "min")]"#, "admin"),
            (r#"[?(@ *== "ewe")]"#, "viewer"),
        ] {
            assert_eq!(
                key(&format!("{roles}{filter}")).find(&claims),
                Some(&json!(found)),
                "{filter}"
            );
        }
        assert_eq!(key(".missing.role").find(&claims), None);
        assert_eq!(key(".role[0]").find(&claims), None);
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [
            "",
            "role",
            ".",
            r#"."open"#,
            ".a[x]",
            r#".a[?(@ == "x")].b"#,
            r#".a[?(@ = "x")]"#,
        ] {
            assert!(bad.parse::<RoleClaimKey>().is_err(), "{bad}");
        }
    }
}
