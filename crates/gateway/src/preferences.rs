//! The request headers that shape a response: `Prefer` (§1.2) and `Accept` (§1.6).

use crate::error::ApiError;

/// What to return from a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    #[default]
    Minimal,
    HeadersOnly,
    Representation,
}

/// How an insert treats conflicting rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// The honoured tokens of `Prefer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub return_: Return,
    /// `count=exact|planned|estimated`.
    pub count: Option<&'static str>,
    pub resolution: Option<Resolution>,
    pub missing_default: bool,
    /// `tx=rollback` (`Some(true)`) or `tx=commit` as asked.
    pub tx: Option<bool>,
    /// Whether the transaction rolls back: `PGRST_DB_TX_END`, overridden by `tx=` only when it
    /// allows (see [`Preferences::end_with`]).
    pub rollback: bool,
    /// `tx=` was honoured, so `Preference-Applied` echoes it.
    pub tx_applied: bool,
    /// `max-affected=N`, enforced with `handling=strict`.
    pub max_affected: Option<i64>,
    pub strict: bool,
    /// `handling=` was given (echoed in `Preference-Applied`).
    pub handling_given: bool,
    /// `timezone=Area/City`: the transaction's TimeZone.
    pub timezone: Option<String>,
    /// Tokens that were not understood, refused with `handling=strict` (PGRST122).
    pub invalid: Vec<String>,
}

impl Preferences {
    /// Parses every `Prefer` header; unknown tokens are ignored, as PostgREST does by default.
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Self {
        let mut p = Preferences::default();
        for token in values.flat_map(|v| v.split(',')).map(str::trim) {
            match token {
                "return=minimal" => p.return_ = Return::Minimal,
                "return=headers-only" => p.return_ = Return::HeadersOnly,
                "return=representation" => p.return_ = Return::Representation,
                "count=exact" => p.count = Some("exact"),
                "count=planned" => p.count = Some("planned"),
                "count=estimated" => p.count = Some("estimated"),
                "resolution=merge-duplicates" => p.resolution = Some(Resolution::MergeDuplicates),
                "resolution=ignore-duplicates" => p.resolution = Some(Resolution::IgnoreDuplicates),
                "missing=default" => p.missing_default = true,
                "tx=rollback" => p.tx = Some(true),
                "tx=commit" => p.tx = Some(false),
                "handling=strict" => (p.strict, p.handling_given) = (true, true),
                "handling=lenient" => (p.strict, p.handling_given) = (false, true),
                _ => {
                    if let Some(n) = token.strip_prefix("max-affected=") {
                        p.max_affected = n.parse().ok();
                    } else if let Some(tz) = token.strip_prefix("timezone=") {
                        p.timezone = Some(tz.to_owned()).filter(|t| !t.is_empty());
                    } else if !token.is_empty() && !token.starts_with("params=") {
                        p.invalid.push(token.to_owned());
                    }
                }
            }
        }
        p
    }

    /// Decides how the transaction ends: `tx=` counts only when `PGRST_DB_TX_END` allows an
    /// override, as PostgREST.
    pub fn end_with(&mut self, end: crate::config::TxEnd) {
        (self.rollback, self.tx_applied) = end.resolve(self.tx);
    }

    /// The `Preference-Applied` header value for what was honoured.
    pub fn applied(&self, is_write: bool) -> Option<String> {
        let mut out = Vec::new();
        if let Some(r) = self.resolution {
            out.push(match r {
                Resolution::MergeDuplicates => "resolution=merge-duplicates",
                Resolution::IgnoreDuplicates => "resolution=ignore-duplicates",
            });
        }
        if self.missing_default {
            out.push("missing=default");
        }
        if is_write {
            out.push(match self.return_ {
                Return::Minimal => "return=minimal",
                Return::HeadersOnly => "return=headers-only",
                Return::Representation => "return=representation",
            });
        }
        if let Some(c) = self.count {
            out.push(match c {
                "exact" => "count=exact",
                "planned" => "count=planned",
                _ => "count=estimated",
            });
        }
        if self.tx_applied {
            out.push(if self.rollback {
                "tx=rollback"
            } else {
                "tx=commit"
            });
        }
        if self.handling_given {
            out.push(if self.strict {
                "handling=strict"
            } else {
                "handling=lenient"
            });
        }
        let timezone = self.timezone.as_ref().map(|tz| format!("timezone={tz}"));
        if let Some(tz) = &timezone {
            out.push(tz);
        }
        let max_affected = self
            .max_affected
            .filter(|_| self.strict)
            .map(|n| format!("max-affected={n}"));
        if let Some(max) = &max_affected {
            out.push(max);
        }
        (!out.is_empty()).then(|| out.join(", "))
    }
}

/// The body format a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// The body's format, or with `plan`, the format the explained statement is built for.
    pub kind: FormatKind,
    pub strip_nulls: bool,
    /// `application/vnd.pgrst.plan`: the statement's plan instead of its result.
    pub plan: Option<PlanRequest>,
}

/// What `Accept: application/vnd.pgrst.plan+json|text; for="..."; options=...` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanRequest {
    pub json: bool,
    pub analyze: bool,
    pub verbose: bool,
    pub settings: bool,
    pub buffers: bool,
    pub wal: bool,
}

impl PlanRequest {
    /// The `EXPLAIN (...) ` prefix; every option is a fixed word, never request text.
    pub fn explain_prefix(&self) -> String {
        let mut options = vec![if self.json {
            "FORMAT JSON"
        } else {
            "FORMAT TEXT"
        }];
        for (on, word) in [
            (self.analyze, "ANALYZE"),
            (self.verbose, "VERBOSE"),
            (self.settings, "SETTINGS"),
            (self.buffers, "BUFFERS"),
            (self.wal, "WAL"),
        ] {
            if on {
                options.push(word);
            }
        }
        format!("EXPLAIN ({}) ", options.join(", "))
    }

    /// The response's Content-Type, naming the format the plan is for.
    pub fn content_type(&self, kind: FormatKind) -> String {
        let plan = if self.json { "json" } else { "text" };
        let target = match kind {
            FormatKind::Json => "application/json",
            FormatKind::Object => "application/vnd.pgrst.object+json",
            FormatKind::Csv => "text/csv",
            FormatKind::GeoJson => "application/geo+json",
        };
        format!("application/vnd.pgrst.plan+{plan}; for=\"{target}\"; charset=utf-8")
    }

    /// Reads the media type's parameters; `None` when `for=` names a format not served.
    fn parse<'a>(json: bool, params: impl Iterator<Item = &'a str>) -> Option<(Self, FormatKind)> {
        let mut plan = PlanRequest {
            json,
            ..PlanRequest::default()
        };
        let mut kind = FormatKind::Json;
        for param in params {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "for" => {
                    kind = match value.to_ascii_lowercase().as_str() {
                        "application/json" | "application/vnd.pgrst.array+json" => FormatKind::Json,
                        "application/vnd.pgrst.object+json" => FormatKind::Object,
                        "text/csv" => FormatKind::Csv,
                        "application/geo+json" => FormatKind::GeoJson,
                        _ => return None,
                    }
                }
                "options" => {
                    for option in value.split('|') {
                        match option.trim() {
                            "" => {}
                            "analyze" => plan.analyze = true,
                            "verbose" => plan.verbose = true,
                            "settings" => plan.settings = true,
                            "buffers" => plan.buffers = true,
                            "wal" => plan.wal = true,
                            _ => return None,
                        }
                    }
                }
                _ => {}
            }
        }
        Some((plan, kind))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatKind {
    Json,
    Object,
    Csv,
    /// `application/geo+json`: a FeatureCollection of the rows (`ST_AsGeoJSON`, PostGIS).
    GeoJson,
}

impl Format {
    /// Picks the first supported media type of `Accept` (JSON when absent). Plans are served
    /// only when `plans` is on (`PGRST_DB_PLAN_ENABLED`); otherwise they are not acceptable.
    pub fn from_accept(accept: Option<&str>, plans: bool) -> Result<Self, ApiError> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Ok(Format {
                kind: FormatKind::Json,
                strip_nulls: false,
                plan: None,
            });
        };
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let plan_json = match media.as_str() {
                "application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+text" => Some(false),
                "application/vnd.pgrst.plan+json" => Some(true),
                _ => None,
            };
            if let Some(json) = plan_json {
                match PlanRequest::parse(json, parts).filter(|_| plans) {
                    Some((plan, kind)) => {
                        return Ok(Format {
                            kind,
                            strip_nulls: false,
                            plan: Some(plan),
                        })
                    }
                    None => continue,
                }
            }
            let strip_nulls = parts.any(|p| p.eq_ignore_ascii_case("nulls=stripped"));
            let kind = match media.as_str() {
                "application/json"
                | "*/*"
                | "application/*"
                | "application/vnd.pgrst.array+json" => FormatKind::Json,
                "application/vnd.pgrst.object+json" => FormatKind::Object,
                "text/csv" => FormatKind::Csv,
                "application/geo+json" => FormatKind::GeoJson,
                _ => continue,
            };
            return Ok(Format {
                kind,
                strip_nulls,
                plan: None,
            });
        }
        Err(ApiError::Accept(
            accept
                .split(',')
                .map(to_mime)
                .collect::<Vec<_>>()
                .join(", "),
        ))
    }

    /// The response's Content-Type.
    pub fn content_type(&self) -> &'static str {
        match (self.kind, self.strip_nulls) {
            (FormatKind::Json, false) => "application/json; charset=utf-8",
            (FormatKind::Json, true) => {
                "application/vnd.pgrst.array+json; nulls=stripped; charset=utf-8"
            }
            (FormatKind::Object, false) => "application/vnd.pgrst.object+json; charset=utf-8",
            (FormatKind::Object, true) => {
                "application/vnd.pgrst.object+json; nulls=stripped; charset=utf-8"
            }
            (FormatKind::Csv, _) => "text/csv; charset=utf-8",
            (FormatKind::GeoJson, _) => "application/geo+json; charset=utf-8",
        }
    }
}

/// A media range of `Accept` as PostgREST writes it back in PGRST107's message: known types
/// lowercased and normalised (a plan with its `for` and options, nulls stripped), any other
/// type as given, without its parameters.
fn to_mime(range: &str) -> String {
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let params: Vec<(String, &str)> = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"')))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let stripped = param("nulls") == Some("stripped");
    let lower = media.to_ascii_lowercase();
    let plan = |format: &str| {
        let target = to_mime(param("for").unwrap_or("application/json"));
        let wanted: Vec<&str> = param("options").unwrap_or("").split('|').collect();
        let options: Vec<&str> = ["analyze", "verbose", "settings", "buffers", "wal"]
            .into_iter()
            .filter(|o| wanted.contains(o))
            .collect();
        let mut out = format!("application/vnd.pgrst.plan+{format}; for=\"{target}\"");
        if !options.is_empty() {
            out.push_str("; options=");
            out.push_str(&options.join("|"));
        }
        out
    };
    match lower.as_str() {
        "application/json"
        | "application/geo+json"
        | "text/csv"
        | "text/plain"
        | "text/xml"
        | "application/openapi+json"
        | "application/x-www-form-urlencoded"
        | "application/octet-stream" => lower,
        "application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+text" => plan("text"),
        "application/vnd.pgrst.plan+json" => plan("json"),
        "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
            if stripped {
                "application/vnd.pgrst.object+json;nulls=stripped".into()
            } else {
                "application/vnd.pgrst.object+json".into()
            }
        }
        "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => {
            if stripped {
                "application/vnd.pgrst.array+json;nulls=stripped".into()
            } else {
                "application/json".into()
            }
        }
        "*/*" => lower,
        _ => media.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_media_types_are_named_as_postgrest_names_them() {
        let e = Format::from_accept(
            Some(r#"application/vnd.pgrst.plan+text; for="application/json"; options=;"#),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"None of these media types are available: application/vnd.pgrst.plan+text; for="application/json""#
        );
        let e = Format::from_accept(
            Some(r#"Application/VND.pgrst.plan+JSON; for="text/csv"; options=verbose|analyze, image/PNG; q=0.5"#),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"None of these media types are available: application/vnd.pgrst.plan+json; for="text/csv"; options=analyze|verbose, image/PNG"#
        );
    }

    #[test]
    fn prefer_tokens_arrive_joined() {
        let p = Preferences::parse(
            [
                "resolution=ignore-duplicates, count=exact, return=representation",
                "tx=rollback",
            ]
            .into_iter(),
        );
        assert_eq!(p.return_, Return::Representation);
        assert_eq!(p.count, Some("exact"));
        assert_eq!(p.resolution, Some(Resolution::IgnoreDuplicates));
        assert_eq!(p.tx, Some(true));
        let mut q = p.clone();
        q.end_with(crate::config::TxEnd::Commit);
        assert!(!q.rollback && !q.tx_applied);
        q.end_with(crate::config::TxEnd::CommitAllowOverride);
        assert!(q.rollback && q.tx_applied);
        q.tx = Some(false);
        q.end_with(crate::config::TxEnd::Rollback);
        assert!(q.rollback && !q.tx_applied);
        q.end_with(crate::config::TxEnd::RollbackAllowOverride);
        assert!(!q.rollback && q.tx_applied);
    }

    #[test]
    fn accept_picks_a_supported_type() {
        assert_eq!(
            Format::from_accept(None, false).unwrap().kind,
            FormatKind::Json
        );
        assert_eq!(
            Format::from_accept(Some("application/vnd.pgrst.object+json"), false)
                .unwrap()
                .kind,
            FormatKind::Object
        );
        assert!(
            Format::from_accept(
                Some("application/vnd.pgrst.array+json;nulls=stripped"),
                false
            )
            .unwrap()
            .strip_nulls
        );
        assert!(Format::from_accept(Some("image/png"), false).is_err());
        let plan = r#"application/vnd.pgrst.plan+json; for="application/vnd.pgrst.object+json"; options=analyze|verbose;"#;
        assert!(Format::from_accept(Some(plan), false).is_err());
        let f = Format::from_accept(Some(plan), true).unwrap();
        assert_eq!(f.kind, FormatKind::Object);
        let p = f.plan.unwrap();
        assert!(p.json && p.analyze && p.verbose && !p.wal);
        assert_eq!(
            p.explain_prefix(),
            "EXPLAIN (FORMAT JSON, ANALYZE, VERBOSE) "
        );
        let empty = r#"application/vnd.pgrst.plan+text; for="application/json"; options=;"#;
        assert!(
            !Format::from_accept(Some(empty), true)
                .unwrap()
                .plan
                .unwrap()
                .json
        );
        let hostile = r#"application/vnd.pgrst.plan; options=analyze) drop table x;--"#;
        assert!(Format::from_accept(Some(hostile), true).is_err());
    }
}
