//! Each honoured `config.toml` key as the environment variable the service behind it reads,
//! with the values the Supabase CLI hands GoTrue and PostgREST for it.

use std::path::Path;

use super::file::{ConfigFile, External, Smtp};

/// One key's setting: `key` in config.toml sets `var` to `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    pub var: String,
    pub value: String,
}

/// Mail kinds auth has templates for, as `[auth.email.template.<kind>]` names them.
const TEMPLATE_KINDS: [&str; 6] = [
    "confirmation",
    "invite",
    "recovery",
    "magic_link",
    "email_change",
    "reauthentication",
];

/// OAuth providers auth has built in; others need `GOTRUE_EXTERNAL_<NAME>_AUTHORIZE_URL`,
/// `_TOKEN_URL` and `_USERINFO_URL` (or the admin API's custom providers).
const BUILT_IN_PROVIDERS: [&str; 2] = ["github", "google"];

/// An error in a key's value (key, message), for the ones serde cannot check alone.
pub type KeyError = (String, String);

struct Out<'a> {
    list: Vec<Assignment>,
    notes: &'a mut Vec<String>,
}

impl Out<'_> {
    fn set(&mut self, key: &str, var: &str, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.list.push(Assignment {
                key: key.to_owned(),
                var: var.to_owned(),
                value: value.to_string(),
            });
        }
    }

    fn list(&mut self, key: &str, var: &str, value: &Option<Vec<String>>) {
        self.set(key, var, value.as_ref().map(|v| v.join(",")));
    }
}

/// The settings `file` gives. `project_dir` anchors email templates' `content_path`, which the
/// Supabase CLI reads relative to the project folder (the parent of `supabase/`).
pub fn assign(
    file: &ConfigFile,
    project_dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<Assignment>, KeyError> {
    let mut out = Out {
        list: Vec::new(),
        notes,
    };
    let api = &file.api;
    out.set("api.enabled", "CRAFTBASE_REST_ENABLED", api.enabled);
    out.set("api.port", "CRAFTBASE_PORT", api.port);
    out.list("api.schemas", "PGRST_DB_SCHEMAS", &api.schemas);
    out.list(
        "api.extra_search_path",
        "PGRST_DB_EXTRA_SEARCH_PATH",
        &api.extra_search_path,
    );
    out.set("api.max_rows", "PGRST_DB_MAX_ROWS", api.max_rows);
    out.set("db.port", "CRAFTBASE_DB_PORT", file.db.port);
    out.set(
        "db.major_version",
        "CRAFTBASE_DB_MAJOR_VERSION",
        file.db.major_version,
    );
    out.set(
        "realtime.enabled",
        "CRAFTBASE_REALTIME_ENABLED",
        file.realtime.enabled,
    );
    out.set(
        "storage.enabled",
        "CRAFTBASE_STORAGE_ENABLED",
        file.storage.enabled,
    );
    if let Some(limit) = &file.storage.file_size_limit {
        let bytes = craftbase_storage::bucket::parse_size(limit).ok_or_else(|| {
            (
                "storage.file_size_limit".to_owned(),
                format!("{limit:?} is not a size (such as \"50MiB\")"),
            )
        })?;
        out.set("storage.file_size_limit", "FILE_SIZE_LIMIT", Some(bytes));
    }
    auth(&mut out, file, project_dir)?;
    Ok(out.list)
}

fn auth(out: &mut Out, file: &ConfigFile, project_dir: &Path) -> Result<(), KeyError> {
    let a = &file.auth;
    out.set("auth.enabled", "CRAFTBASE_AUTH_ENABLED", a.enabled);
    out.set("auth.site_url", "GOTRUE_SITE_URL", a.site_url.as_ref());
    out.list(
        "auth.additional_redirect_urls",
        "GOTRUE_URI_ALLOW_LIST",
        &a.additional_redirect_urls,
    );
    out.set(
        "auth.external_url",
        "API_EXTERNAL_URL",
        a.external_url.as_ref(),
    );
    if let Some(exp) = a.jwt_expiry {
        // The CLI's bound: a week.
        if exp > 604_800 {
            return Err((
                "auth.jwt_expiry".into(),
                format!("{exp} is more than 604800 seconds (one week)"),
            ));
        }
    }
    out.set("auth.jwt_expiry", "GOTRUE_JWT_EXP", a.jwt_expiry);
    out.set(
        "auth.jwt_issuer",
        "GOTRUE_JWT_ISSUER",
        a.jwt_issuer.as_ref(),
    );
    out.set(
        "auth.enable_signup",
        "GOTRUE_DISABLE_SIGNUP",
        a.enable_signup.map(|on| !on),
    );
    out.set(
        "auth.enable_anonymous_sign_ins",
        "GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED",
        a.enable_anonymous_sign_ins,
    );
    out.set(
        "auth.enable_manual_linking",
        "GOTRUE_SECURITY_MANUAL_LINKING_ENABLED",
        a.enable_manual_linking,
    );
    out.set(
        "auth.enable_refresh_token_rotation",
        "GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED",
        a.enable_refresh_token_rotation,
    );
    out.set(
        "auth.refresh_token_reuse_interval",
        "GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL",
        a.refresh_token_reuse_interval,
    );
    out.set(
        "auth.minimum_password_length",
        "GOTRUE_PASSWORD_MIN_LENGTH",
        a.minimum_password_length,
    );
    out.set(
        "auth.password_requirements",
        "GOTRUE_PASSWORD_REQUIRED_CHARACTERS",
        a.password_requirements.map(|r| r.required_characters()),
    );

    let r = &a.rate_limit;
    let rate = "auth.rate_limit";
    out.set(
        &format!("{rate}.email_sent"),
        "GOTRUE_RATE_LIMIT_EMAIL_SENT",
        r.email_sent,
    );
    out.set(
        &format!("{rate}.sms_sent"),
        "GOTRUE_RATE_LIMIT_SMS_SENT",
        r.sms_sent,
    );
    out.set(
        &format!("{rate}.anonymous_users"),
        "GOTRUE_RATE_LIMIT_ANONYMOUS_USERS",
        r.anonymous_users,
    );
    out.set(
        &format!("{rate}.token_refresh"),
        "GOTRUE_RATE_LIMIT_TOKEN_REFRESH",
        r.token_refresh,
    );
    out.set(
        &format!("{rate}.sign_in_sign_ups"),
        "GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS",
        r.sign_in_sign_ups,
    );
    out.set(
        &format!("{rate}.token_verifications"),
        "GOTRUE_RATE_LIMIT_VERIFY",
        r.token_verifications,
    );
    out.set(&format!("{rate}.web3"), "GOTRUE_RATE_LIMIT_WEB3", r.web3);

    email(out, file, project_dir)?;

    if let Some(on) = a.sms.enable_signup {
        out.set(
            "auth.sms.enable_signup",
            "GOTRUE_EXTERNAL_PHONE_ENABLED",
            Some(on),
        );
        if on && a.sms.enable_confirmations != Some(false) {
            out.notes.push(
                "`auth.sms.enable_signup` = true, but craftbase sends no SMS: phone sign-ups are refused unless `auth.sms.enable_confirmations` = false"
                    .into(),
            );
        }
    }
    // As the CLI maps it: no confirmation by SMS means phone sign-ups are confirmed at once.
    out.set(
        "auth.sms.enable_confirmations",
        "GOTRUE_SMS_AUTOCONFIRM",
        a.sms.enable_confirmations.map(|on| !on),
    );

    let mfa = &a.mfa;
    out.set(
        "auth.mfa.max_enrolled_factors",
        "GOTRUE_MFA_MAX_ENROLLED_FACTORS",
        mfa.max_enrolled_factors,
    );
    if let Some(totp) = &mfa.totp {
        out.set(
            "auth.mfa.totp.enroll_enabled",
            "GOTRUE_MFA_TOTP_ENROLL_ENABLED",
            totp.enroll_enabled,
        );
        out.set(
            "auth.mfa.totp.verify_enabled",
            "GOTRUE_MFA_TOTP_VERIFY_ENABLED",
            totp.verify_enabled,
        );
    }
    if let Some(web_authn) = &mfa.web_authn {
        out.set(
            "auth.mfa.web_authn.enroll_enabled",
            "GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED",
            web_authn.enroll_enabled,
        );
        out.set(
            "auth.mfa.web_authn.verify_enabled",
            "GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED",
            web_authn.verify_enabled,
        );
    }
    out.set(
        "auth.passkey.enabled",
        "GOTRUE_PASSKEY_ENABLED",
        a.passkey.enabled,
    );
    let rp = &a.webauthn;
    out.set(
        "auth.webauthn.rp_id",
        "GOTRUE_WEBAUTHN_RP_ID",
        rp.rp_id.as_ref(),
    );
    out.set(
        "auth.webauthn.rp_display_name",
        "GOTRUE_WEBAUTHN_RP_DISPLAY_NAME",
        rp.rp_display_name.as_ref(),
    );
    out.list(
        "auth.webauthn.rp_origins",
        "GOTRUE_WEBAUTHN_RP_ORIGINS",
        &rp.rp_origins,
    );

    let mut custom = Vec::new();
    for (name, provider) in &a.external {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err((
                format!("auth.external.{name}"),
                "a provider's name is letters, digits and underscores".into(),
            ));
        }
        external(out, name, provider);
        let builtin = BUILT_IN_PROVIDERS.contains(&name.as_str());
        if provider.enabled == Some(true) && !builtin {
            custom.push(name.to_ascii_lowercase());
        }
    }
    if !custom.is_empty() {
        out.notes.push(format!(
            "auth.external: {} {} not built into craftbase (github and google are); each needs \
             GOTRUE_EXTERNAL_<NAME>_AUTHORIZE_URL, _TOKEN_URL and _USERINFO_URL, or is disabled",
            custom.join(", "),
            if custom.len() == 1 { "is" } else { "are" }
        ));
        out.set(
            "auth.external",
            "GOTRUE_EXTERNAL_PROVIDERS",
            Some(custom.join(",")),
        );
    }

    for (chain, enabled) in [("solana", &a.web3.solana), ("ethereum", &a.web3.ethereum)] {
        out.set(
            &format!("auth.web3.{chain}.enabled"),
            &format!(
                "GOTRUE_EXTERNAL_WEB3_{}_ENABLED",
                chain.to_ascii_uppercase()
            ),
            enabled.as_ref().and_then(|e| e.enabled),
        );
    }
    let o = &a.oauth_server;
    out.set(
        "auth.oauth_server.enabled",
        "GOTRUE_OAUTH_SERVER_ENABLED",
        o.enabled,
    );
    out.set(
        "auth.oauth_server.authorization_url_path",
        "GOTRUE_OAUTH_SERVER_AUTHORIZATION_PATH",
        o.authorization_url_path.as_ref(),
    );
    out.set(
        "auth.oauth_server.allow_dynamic_registration",
        "GOTRUE_OAUTH_SERVER_ALLOW_DYNAMIC_REGISTRATION",
        o.allow_dynamic_registration,
    );
    Ok(())
}

fn email(out: &mut Out, file: &ConfigFile, project_dir: &Path) -> Result<(), KeyError> {
    let e = &file.auth.email;
    out.set(
        "auth.email.enable_signup",
        "GOTRUE_EXTERNAL_EMAIL_ENABLED",
        e.enable_signup,
    );
    out.set(
        "auth.email.double_confirm_changes",
        "GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED",
        e.double_confirm_changes,
    );
    out.set(
        "auth.email.enable_confirmations",
        "GOTRUE_MAILER_AUTOCONFIRM",
        e.enable_confirmations.map(|on| !on),
    );
    out.set(
        "auth.email.secure_password_change",
        "GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION",
        e.secure_password_change,
    );
    out.set(
        "auth.email.max_frequency",
        "GOTRUE_SMTP_MAX_FREQUENCY",
        e.max_frequency.as_ref(),
    );
    out.set(
        "auth.email.otp_length",
        "GOTRUE_MAILER_OTP_LENGTH",
        e.otp_length,
    );
    out.set(
        "auth.email.otp_expiry",
        "GOTRUE_MAILER_OTP_EXP",
        e.otp_expiry,
    );
    if let Some(smtp) = &e.smtp {
        self::smtp(out, smtp)?;
    }
    for (kind, template) in &e.template {
        let key = format!("auth.email.template.{kind}");
        if !TEMPLATE_KINDS.contains(&kind.as_str()) {
            out.notes.push(format!(
                "`{key}`: auth has no {kind:?} mail (it has {}); ignored",
                TEMPLATE_KINDS.join(", ")
            ));
            continue;
        }
        let upper = kind.to_ascii_uppercase();
        out.set(
            &format!("{key}.subject"),
            &format!("GOTRUE_MAILER_SUBJECTS_{upper}"),
            template.subject.as_ref(),
        );
        if let Some(path) = template.content_path.as_deref().filter(|p| !p.is_empty()) {
            // The CLI reads it from the project folder; `supabase/` is tried too, where the
            // CLI's notification templates (and many a reader) expect it.
            let full = [
                project_dir.join(path),
                project_dir.join("supabase").join(path),
            ]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                (
                    format!("{key}.content_path"),
                    format!(
                        "{path} is neither in {} nor in its supabase/ folder",
                        project_dir.display()
                    ),
                )
            })?;
            let full = std::fs::canonicalize(&full).unwrap_or(full);
            out.set(
                &format!("{key}.content_path"),
                &format!("GOTRUE_MAILER_TEMPLATES_{upper}"),
                Some(full.display()),
            );
        }
    }
    Ok(())
}

fn smtp(out: &mut Out, smtp: &Smtp) -> Result<(), KeyError> {
    if smtp.enabled == Some(false) {
        return Ok(());
    }
    if smtp.host.as_deref().unwrap_or("").is_empty() {
        return Err((
            "auth.email.smtp.host".into(),
            "missing: [auth.email.smtp] is enabled but names no host".into(),
        ));
    }
    let key = "auth.email.smtp";
    out.set(
        &format!("{key}.host"),
        "GOTRUE_SMTP_HOST",
        smtp.host.as_ref(),
    );
    out.set(&format!("{key}.port"), "GOTRUE_SMTP_PORT", smtp.port);
    out.set(
        &format!("{key}.user"),
        "GOTRUE_SMTP_USER",
        smtp.user.as_ref(),
    );
    out.set(
        &format!("{key}.pass"),
        "GOTRUE_SMTP_PASS",
        smtp.pass.as_ref(),
    );
    out.set(
        &format!("{key}.admin_email"),
        "GOTRUE_SMTP_ADMIN_EMAIL",
        smtp.admin_email.as_ref(),
    );
    out.set(
        &format!("{key}.sender_name"),
        "GOTRUE_SMTP_SENDER_NAME",
        smtp.sender_name.as_ref(),
    );
    Ok(())
}

fn external(out: &mut Out, name: &str, p: &External) {
    let key = format!("auth.external.{name}");
    let var = format!("GOTRUE_EXTERNAL_{}", name.to_ascii_uppercase());
    out.set(
        &format!("{key}.enabled"),
        &format!("{var}_ENABLED"),
        p.enabled,
    );
    out.set(
        &format!("{key}.client_id"),
        &format!("{var}_CLIENT_ID"),
        p.client_id.as_ref(),
    );
    out.set(
        &format!("{key}.secret"),
        &format!("{var}_SECRET"),
        p.secret.as_ref(),
    );
    out.set(
        &format!("{key}.redirect_uri"),
        &format!("{var}_REDIRECT_URI"),
        p.redirect_uri.as_ref().filter(|u| !u.is_empty()),
    );
    out.set(
        &format!("{key}.url"),
        &format!("{var}_URL"),
        p.url.as_ref().filter(|u| !u.is_empty()),
    );
    out.set(
        &format!("{key}.skip_nonce_check"),
        &format!("{var}_SKIP_NONCE_CHECK"),
        p.skip_nonce_check,
    );
    out.set(
        &format!("{key}.email_optional"),
        &format!("{var}_EMAIL_OPTIONAL"),
        p.email_optional,
    );
}
