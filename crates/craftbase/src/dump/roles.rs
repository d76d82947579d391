//! The roles a dump refers to besides the platform's. pg_dump carries no roles, so a role a
//! project's migrations created (an owner, a grantee, a policy's role) would stop `pg_restore` at
//! its first mention. Restore creates each such role that is missing, without login, and says so:
//! its attributes, password and memberships were never in the dump.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;

/// Words pg_dump writes where a role name could stand that are not roles.
const NOT_ROLES: [&str; 4] = ["PUBLIC", "CURRENT_USER", "CURRENT_ROLE", "SESSION_USER"];

/// The dump's schema as SQL (`pg_restore --schema-only -f -`); the rows are skipped, not read.
pub fn schema_script(bindir: &Path, file: &Path) -> anyhow::Result<String> {
    let out = Command::new(bindir.join("pg_restore"))
        .args(["--schema-only", "--file", "-"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .context("cannot run pg_restore")?;
    anyhow::ensure!(
        out.status.success(),
        "pg_restore cannot read the schema of {}:\n{}",
        file.display(),
        super::restore::said(&out)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The roles a schema script names as owners, grantees, policy roles, default-privilege
/// roles or session authorizations.
pub fn referenced(script: &str) -> BTreeSet<String> {
    let mut roles = BTreeSet::new();
    for line in script.lines().filter(|l| !l.starts_with("--")) {
        let mut take = |rest: Option<&str>| {
            if let Some(rest) = rest {
                roles.extend(role_list(rest));
            }
        };
        take(after(line, "OWNER TO "));
        take(line.strip_prefix("SET SESSION AUTHORIZATION "));
        take(after(line, "FOR ROLE "));
        if line.starts_with("GRANT ") || line.contains(" GRANT ") {
            take(after_last(line, " TO "));
        }
        if line.starts_with("REVOKE ") || line.contains(" REVOKE ") {
            take(after_last(line, " FROM "));
        }
        if line.starts_with("CREATE POLICY ") {
            let head = [" USING ", " WITH CHECK "]
                .iter()
                .filter_map(|w| line.find(w))
                .min()
                .map_or(line, |end| &line[..end]);
            take(after_last(head, " TO "));
        }
    }
    roles.retain(|r| !r.starts_with("pg_"));
    roles
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

fn after_last<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.rfind(marker).map(|i| &line[i + marker.len()..])
}

/// `a, "B c", d ...` at the start of `s`: the names, until something that is not one.
fn role_list(mut s: &str) -> Vec<String> {
    let mut names = Vec::new();
    while let Some((name, rest)) = identifier(s.trim_start()) {
        names.push(name);
        match rest.trim_start().strip_prefix(',') {
            Some(rest) => s = rest,
            None => break,
        }
    }
    names
}

/// One identifier as pg_dump writes it: bare lowercase, or double-quoted with `""` escapes.
/// Key words (`PUBLIC`, `CURRENT_USER`...) are not roles.
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                name.push(c);
            } else if quoted[i + 1..].starts_with('"') {
                name.push('"');
                chars.next();
            } else {
                return Some((name, &quoted[i + 1..]));
            }
        }
        return None;
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(s.len());
    let word = &s[..end];
    if word.is_empty()
        || NOT_ROLES.contains(&word)
        || !word.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
    {
        return None;
    }
    Some((word.to_owned(), &s[end..]))
}

/// Creates each of `roles` the cluster lacks, without login; returns their names.
pub async fn create_missing(
    client: &tokio_postgres::Client,
    roles: &BTreeSet<String>,
) -> anyhow::Result<Vec<String>> {
    let mut created = Vec::new();
    for role in roles {
        let missing = client
            .query_opt(
                "select format('create role %I nologin', $1::text)
                 where not exists (select 1 from pg_roles where rolname = $1::text)",
                &[role],
            )
            .await?;
        if let Some(row) = missing {
            let statement: String = row.get(0);
            client.batch_execute(&statement).await?;
            created.push(role.clone());
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_grantees_and_policy_roles_are_found() {
        let script = r#"
-- Name: notes; Type: TABLE; Schema: public; Owner: "Report Owner"
ALTER TABLE public.notes OWNER TO "Report Owner";
GRANT SELECT,INSERT ON TABLE public.notes TO editor WITH GRANT OPTION;
GRANT ALL ON TABLE public.notes TO anon;
GRANT USAGE ON SCHEMA public TO PUBLIC;
REVOKE ALL ON FUNCTION public.f() FROM PUBLIC;
REVOKE ALL ON TABLE public.notes FROM auditor;
CREATE POLICY p ON public.notes FOR SELECT TO reader, "we""ird" USING ((body <> ' TO nobody'::text));
CREATE POLICY q ON public.notes USING (true);
ALTER DEFAULT PRIVILEGES FOR ROLE migrator IN SCHEMA public GRANT ALL ON TABLES  TO analyst;
SET SESSION AUTHORIZATION grantor;
ALTER FUNCTION auth.uid() OWNER TO postgres;
GRANT pg_read_all_data TO nobody_else_here;
"#;
        let found: Vec<String> = referenced(script).into_iter().collect();
        assert_eq!(
            found,
            [
                "Report Owner",
                "analyst",
                "anon",
                "auditor",
                "editor",
                "grantor",
                "migrator",
                "nobody_else_here",
                "postgres",
                "reader",
                "we\"ird"
            ]
        );
    }
}
