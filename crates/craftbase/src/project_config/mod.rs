//! A project's `supabase/config.toml`, the file `supabase init` writes: read as the Supabase CLI
//! reads it (`env(VAR)` in string values), turned into the environment variables the services
//! already read (`GOTRUE_*`, `PGRST_*`, `CRAFTBASE_*`), and laid under the real environment so
//! that flags > environment > config.toml > defaults.

mod file;
mod keys;
mod mapping;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use file::ConfigFile;
pub use mapping::Assignment;

/// Why a `config.toml` cannot be used; start-up stops on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: `{key}`: {message}")]
    Value {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A loaded `config.toml`: the settings it gives and what it said that craftbase does not use.
#[derive(Debug, Default)]
pub struct ProjectConfig {
    /// The file, when the project has one.
    pub path: Option<PathBuf>,
    /// Each honoured key as the environment variable it sets.
    pub assignments: Vec<Assignment>,
    /// Keys that neither the Supabase CLI nor craftbase knows (typos, most likely).
    pub unknown_keys: Vec<String>,
    /// Keys the Supabase CLI knows that have no meaning here (studio, storage, pooler...).
    pub unused_keys: Vec<String>,
    /// Other things worth saying: `env(VAR)` with VAR unset, features accepted but not built.
    pub notes: Vec<String>,
}

impl ProjectConfig {
    /// `<project_dir>/supabase/config.toml`, or an empty config when there is none.
    pub fn load(project_dir: &Path) -> Result<Self, ConfigError> {
        let path = project_dir.join("supabase").join("config.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text, &path, project_dir, &|name| std::env::var(name).ok())
    }

    /// Parses a config file's text; `env` resolves `env(VAR)` values.
    pub fn parse(
        text: &str,
        path: &Path,
        project_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim().to_owned(),
        })?;
        let mut unset = Vec::new();
        let mut substituted = std::collections::BTreeSet::new();
        substitute_env(
            &mut value,
            &mut String::new(),
            env,
            &mut Substitutions {
                unset: &mut unset,
                done: &mut substituted,
            },
        );

        // As the CLI (viper's weak typing), an `env(VAR)` where a number or a boolean belongs
        // reads VAR as one: a type error at such a key converts the text and tries again.
        let (file, ignored) = loop {
            let mut ignored = Vec::new();
            let mut on_ignored =
                |key: serde_ignored::Path| ignored.push(key.to_string().replace("?.", ""));
            let deserializer = serde_ignored::Deserializer::new(value.clone(), &mut on_ignored);
            match serde_path_to_error::deserialize::<_, ConfigFile>(deserializer) {
                Ok(file) => break (file, ignored),
                Err(e) => {
                    let key = e.path().to_string();
                    if substituted.remove(&key) && coerce(&mut value, e.path()) {
                        continue;
                    }
                    return Err(ConfigError::Value {
                        path: path.to_owned(),
                        key,
                        // toml names the key again on a line of its own; once is enough.
                        message: e
                            .inner()
                            .to_string()
                            .lines()
                            .filter(|l| !l.starts_with("in `"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    });
                }
            }
        };
        let (unused_keys, unknown_keys) =
            ignored.into_iter().partition(|k| keys::is_supabase_key(k));
        // A disabled provider's unset secret is no concern (`supabase init` writes one).
        let notes = unset
            .into_iter()
            .filter(|(key, _)| {
                let provider = key
                    .strip_prefix("auth.external.")
                    .and_then(|r| r.split('.').next());
                provider.is_none_or(|p| {
                    file.auth
                        .external
                        .get(p)
                        .is_some_and(|p| p.enabled == Some(true))
                })
            })
            .map(|(_, note)| note)
            .collect();
        let mut config = ProjectConfig {
            path: Some(path.to_owned()),
            assignments: Vec::new(),
            unknown_keys,
            unused_keys,
            notes,
        };
        config.assignments =
            mapping::assign(&file, project_dir, &mut config.notes).map_err(|(key, message)| {
                ConfigError::Value {
                    path: path.to_owned(),
                    key,
                    message,
                }
            })?;
        Ok(config)
    }

    /// Tells what the file said that is not used: unknown keys as warnings, one each.
    pub fn report(&self) {
        let Some(path) = &self.path else { return };
        for key in &self.unknown_keys {
            tracing::warn!(file = %path.display(), key = %key, "unknown key in config.toml; ignored");
        }
        if !self.unused_keys.is_empty() {
            tracing::info!(
                file = %path.display(),
                keys = %summarize(&self.unused_keys),
                "config.toml keys with no meaning in craftbase; ignored"
            );
        }
        for note in &self.notes {
            tracing::warn!(file = %path.display(), "{note}");
        }
    }

    /// Sets each variable the file gives that the environment does not already set, and
    /// returns which ones it set (variable -> config key). Call it before any other thread
    /// starts: the environment is process-wide.
    pub fn fill_environment(&self) -> BTreeMap<String, String> {
        let mut filled = BTreeMap::new();
        for a in &self.assignments {
            // set_var panics on a NUL; a name is checked when it is mapped.
            if a.value.contains('\0') {
                tracing::warn!(key = %a.key, "value holds a NUL character; ignored");
                continue;
            }
            if std::env::var_os(&a.var).is_none() {
                std::env::set_var(&a.var, &a.value);
                filled.insert(a.var.clone(), a.key.clone());
            }
        }
        filled
    }
}

/// The Supabase-only sections of a list of keys (`studio`, `db.pooler`...), for one log line.
fn summarize(keys: &[String]) -> String {
    let mut sections: Vec<&str> = keys
        .iter()
        .map(|k| keys::supabase_section(k).unwrap_or(k))
        .collect();
    sections.sort();
    sections.dedup();
    sections.join(", ")
}

/// What [`substitute_env`] did: the keys whose variable was unset (with a note), and those
/// it replaced.
struct Substitutions<'a> {
    unset: &'a mut Vec<(String, String)>,
    done: &'a mut std::collections::BTreeSet<String>,
}

/// Replaces every string value `env(VAR)` by VAR's value, as the Supabase CLI does; an unset
/// (or empty) VAR leaves the text as it is, with a note.
fn substitute_env(
    value: &mut toml::Value,
    key: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut Substitutions,
) {
    match value {
        toml::Value::String(s) => {
            if let Some(name) = s.strip_prefix("env(").and_then(|r| r.strip_suffix(')')) {
                match env(name).filter(|v| !v.is_empty()) {
                    Some(v) => {
                        *s = v;
                        out.done.insert(key.clone());
                    }
                    // Only for keys craftbase reads: a studio or storage secret is no concern.
                    None if keys::is_supabase_key(key) => {}
                    None => out.unset.push((
                        key.clone(),
                        format!("`{key}` = env({name}), but {name} is not set"),
                    )),
                }
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = key.len();
                key.push_str(&format!("[{i}]"));
                substitute_env(item, key, env, out);
                key.truncate(len);
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table.iter_mut() {
                let len = key.len();
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(name);
                substitute_env(item, key, env, out);
                key.truncate(len);
            }
        }
        _ => {}
    }
}

/// Turns the string at `path` into the number or boolean it spells; false if it spells none.
fn coerce(value: &mut toml::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let mut at = value;
    for segment in path.iter() {
        let next = match (segment, at) {
            (Segment::Map { key }, toml::Value::Table(t)) => t.get_mut(key),
            (Segment::Seq { index }, toml::Value::Array(a)) => a.get_mut(*index),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return false,
        }
    }
    let toml::Value::String(text) = at else {
        return false;
    };
    let text = text.trim();
    *at = if let Ok(n) = text.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Ok(b) = text.parse::<bool>() {
        toml::Value::Boolean(b)
    } else if let Ok(f) = text.parse::<f64>() {
        toml::Value::Float(f)
    } else {
        return false;
    };
    true
}

#[cfg(test)]
mod tests;
