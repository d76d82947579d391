//! Passwords: bcrypt at cost 10 in the `$2a$` form GoTrue writes, so hashes move between the
//! two in either direction; hashing runs off the async runtime.

use std::sync::OnceLock;

use crate::error::AuthError;
use crate::settings::Settings;

/// GoTrue's cost.
const COST: u32 = 10;

/// bcrypt ignores bytes past 72; refusing longer passwords avoids silent truncation.
const MAX_BYTES: usize = 72;

/// Hashes `password` as `$2a$10$...`.
pub async fn hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || {
        bcrypt::hash_with_result(password, COST)
            .map(|h| h.format_for_version(bcrypt::Version::TwoA))
    })
    .await
    .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))?
    .map_err(|e| AuthError::Internal(format!("bcrypt: {e}")))
}

/// Checks `password` against `stored`; with no stored hash (unknown user, passwordless user)
/// the same work is done against a dummy, so the answer's timing reveals nothing.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, AuthError> {
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match stored.as_deref() {
            Some(h) if h.starts_with("$2") => (h.to_owned(), true),
            _ => (dummy_hash().to_owned(), false),
        };
        let ok = bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false);
        ok && real
    })
    .await
    .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))
}

/// A hash of a random password, computed once.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = craftbase_shared::keys::generate_secret();
        bcrypt::hash_with_result(random, COST)
            .map(|h| h.format_for_version(bcrypt::Version::TwoA))
            .unwrap_or_else(|_| {
                "$2a$10$invalidinvalidinvalidinvalidinvalidinvalidinvalidinv".into()
            })
    })
}

/// Refuses passwords the settings call weak, with GoTrue's reasons.
pub fn check_strength(settings: &Settings, password: &str) -> Result<(), AuthError> {
    if password.len() > MAX_BYTES {
        return Err(AuthError::Validation(format!(
            "Password cannot be longer than {MAX_BYTES} characters"
        )));
    }
    let mut reasons = Vec::new();
    let mut messages = Vec::new();
    if password.chars().count() < settings.password_min_length {
        reasons.push("length");
        messages.push(format!(
            "Password should be at least {} characters.",
            settings.password_min_length
        ));
    }
    let groups = character_groups(&settings.password_required_characters);
    if groups
        .iter()
        .any(|group| !password.chars().any(|c| group.contains(c)))
    {
        reasons.push("characters");
        messages.push(format!(
            "Password should contain at least one character of each: {}.",
            groups
                .iter()
                .map(|g| format!("{g:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(AuthError::WeakPassword {
            message: messages.join(" "),
            reasons,
        })
    }
}

/// GoTrue's `PASSWORD_REQUIRED_CHARACTERS`: groups separated by `:`, where a group ending in a
/// backslash continues with a literal `:` (the Supabase CLI's symbol set holds both).
fn character_groups(text: &str) -> Vec<String> {
    let mut groups = Vec::new();
    let mut current = String::new();
    for part in text.split(':') {
        current.push_str(part);
        if let Some(kept) = current.strip_suffix('\\') {
            current = format!("{kept}:");
            continue;
        }
        if !current.is_empty() {
            groups.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_colon_stays_in_its_group() {
        assert_eq!(character_groups("abc:0123"), ["abc", "0123"]);
        assert_eq!(character_groups(""), Vec::<String>::new());
        // The CLI's lower_upper_letters_digits_symbols ends with `;'\\:"|<>?,./` and `~`.
        assert_eq!(character_groups("ab:!;'\\\\:\"|`~"), ["ab", "!;'\\:\"|`~"]);
    }

    #[tokio::test]
    async fn hashes_are_2a_cost_10_and_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$2a$10$"), "{h}");
        assert!(verify("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong".into(), Some(h)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn weak_passwords_name_their_reasons() {
        let mut s = Settings::from_flags([]).unwrap();
        s.password_required_characters = "abc:0123456789".into();
        match check_strength(&s, "xy") {
            Err(AuthError::WeakPassword { reasons, .. }) => {
                assert_eq!(reasons, vec!["length", "characters"])
            }
            other => panic!("{other:?}"),
        }
        assert!(check_strength(&s, "abcdef1").is_ok());
    }
}
