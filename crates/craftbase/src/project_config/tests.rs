use std::path::Path;

use super::*;

fn parse_with(text: &str, env: &[(&str, &str)]) -> Result<ProjectConfig, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    ProjectConfig::parse(
        text,
        Path::new("/p/supabase/config.toml"),
        Path::new("/p"),
        &lookup,
    )
}

fn parse(text: &str) -> ProjectConfig {
    parse_with(text, &[]).unwrap()
}

fn var<'a>(config: &'a ProjectConfig, name: &str) -> Option<&'a str> {
    config
        .assignments
        .iter()
        .find(|a| a.var == name)
        .map(|a| a.value.as_str())
}

#[test]
fn maps_api_db_and_realtime_keys() {
    let c = parse(
        r#"
[api]
enabled = false
port = 8000
schemas = ["public", "graphql_public"]
extra_search_path = ["public", "extensions"]
max_rows = 2
[db]
port = 6543
major_version = 15
[realtime]
enabled = false
[storage]
enabled = false
file_size_limit = "20MiB"
"#,
    );
    assert_eq!(var(&c, "CRAFTBASE_REST_ENABLED"), Some("false"));
    assert_eq!(var(&c, "CRAFTBASE_PORT"), Some("8000"));
    assert_eq!(var(&c, "PGRST_DB_SCHEMAS"), Some("public,graphql_public"));
    assert_eq!(
        var(&c, "PGRST_DB_EXTRA_SEARCH_PATH"),
        Some("public,extensions")
    );
    assert_eq!(var(&c, "PGRST_DB_MAX_ROWS"), Some("2"));
    assert_eq!(var(&c, "CRAFTBASE_DB_PORT"), Some("6543"));
    assert_eq!(var(&c, "CRAFTBASE_DB_MAJOR_VERSION"), Some("15"));
    assert_eq!(var(&c, "CRAFTBASE_REALTIME_ENABLED"), Some("false"));
    assert_eq!(var(&c, "CRAFTBASE_STORAGE_ENABLED"), Some("false"));
    assert_eq!(var(&c, "FILE_SIZE_LIMIT"), Some("20971520"));
    assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
}

#[test]
fn maps_auth_keys_as_the_cli_hands_them_to_gotrue() {
    let c = parse(
        r#"
[auth]
site_url = "http://app.test"
additional_redirect_urls = ["http://a.test", "http://b.test/**"]
jwt_expiry = 600
enable_signup = false
enable_anonymous_sign_ins = true
enable_refresh_token_rotation = false
refresh_token_reuse_interval = 5
minimum_password_length = 10
password_requirements = "letters_digits"
[auth.rate_limit]
email_sent = 3
token_verifications = 7
sign_in_sign_ups = 8
[auth.email]
enable_confirmations = true
double_confirm_changes = false
otp_length = 8
otp_expiry = 900
[auth.mfa]
max_enrolled_factors = 3
[auth.mfa.totp]
enroll_enabled = false
verify_enabled = true
[auth.external.github]
enabled = true
client_id = "cid"
secret = "s3cret"
skip_nonce_check = true
"#,
    );
    assert_eq!(var(&c, "GOTRUE_SITE_URL"), Some("http://app.test"));
    assert_eq!(
        var(&c, "GOTRUE_URI_ALLOW_LIST"),
        Some("http://a.test,http://b.test/**")
    );
    assert_eq!(var(&c, "GOTRUE_JWT_EXP"), Some("600"));
    assert_eq!(var(&c, "GOTRUE_DISABLE_SIGNUP"), Some("true"));
    assert_eq!(
        var(&c, "GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED"),
        Some("true")
    );
    assert_eq!(
        var(&c, "GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED"),
        Some("false")
    );
    assert_eq!(
        var(&c, "GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL"),
        Some("5")
    );
    assert_eq!(var(&c, "GOTRUE_PASSWORD_MIN_LENGTH"), Some("10"));
    assert_eq!(
        var(&c, "GOTRUE_PASSWORD_REQUIRED_CHARACTERS"),
        Some("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789")
    );
    assert_eq!(var(&c, "GOTRUE_RATE_LIMIT_EMAIL_SENT"), Some("3"));
    assert_eq!(var(&c, "GOTRUE_RATE_LIMIT_VERIFY"), Some("7"));
    assert_eq!(var(&c, "GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS"), Some("8"));
    assert_eq!(var(&c, "GOTRUE_MAILER_AUTOCONFIRM"), Some("false"));
    assert_eq!(
        var(&c, "GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED"),
        Some("false")
    );
    assert_eq!(var(&c, "GOTRUE_MAILER_OTP_LENGTH"), Some("8"));
    assert_eq!(var(&c, "GOTRUE_MAILER_OTP_EXP"), Some("900"));
    assert_eq!(var(&c, "GOTRUE_MFA_MAX_ENROLLED_FACTORS"), Some("3"));
    assert_eq!(var(&c, "GOTRUE_MFA_TOTP_ENROLL_ENABLED"), Some("false"));
    assert_eq!(var(&c, "GOTRUE_MFA_TOTP_VERIFY_ENABLED"), Some("true"));
    assert_eq!(var(&c, "GOTRUE_EXTERNAL_GITHUB_ENABLED"), Some("true"));
    assert_eq!(var(&c, "GOTRUE_EXTERNAL_GITHUB_CLIENT_ID"), Some("cid"));
    assert_eq!(var(&c, "GOTRUE_EXTERNAL_GITHUB_SECRET"), Some("s3cret"));
    assert_eq!(
        var(&c, "GOTRUE_EXTERNAL_GITHUB_SKIP_NONCE_CHECK"),
        Some("true")
    );
    // Keys the file leaves out set nothing: craftbase's defaults (or the environment) stay.
    assert_eq!(var(&c, "GOTRUE_SMTP_HOST"), None);
    assert_eq!(var(&c, "CRAFTBASE_AUTH_ENABLED"), None);
}

#[test]
fn env_functions_are_substituted_in_strings_as_the_cli_does() {
    let c = parse_with(
        r#"
[auth.email.smtp]
host = "env(SMTP_HOST)"
port = 2525
pass = "env(SMTP_PASS)"
[auth.external.google]
enabled = true
client_id = "env(GOOGLE_ID)"
secret = "env(UNSET_SECRET)"
"#,
        &[
            ("SMTP_HOST", "mail.test"),
            ("SMTP_PASS", "pw"),
            ("GOOGLE_ID", "gid"),
        ],
    )
    .unwrap();
    assert_eq!(var(&c, "GOTRUE_SMTP_HOST"), Some("mail.test"));
    assert_eq!(var(&c, "GOTRUE_SMTP_PORT"), Some("2525"));
    assert_eq!(var(&c, "GOTRUE_SMTP_PASS"), Some("pw"));
    assert_eq!(var(&c, "GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID"), Some("gid"));
    // An unset variable leaves the text as it is (as the CLI does), and says so.
    assert_eq!(
        var(&c, "GOTRUE_EXTERNAL_GOOGLE_SECRET"),
        Some("env(UNSET_SECRET)")
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("auth.external.google.secret") && n.contains("UNSET_SECRET")),
        "{:?}",
        c.notes
    );
}

#[test]
fn unknown_keys_are_named_and_supabase_only_keys_are_not() {
    let c = parse(
        r#"
project_id = "demo"
[api]
max_row = 5
[studio]
port = 54323
[db.pooler]
enabled = false
[auth]
sitee_url = "x"
[auth.email]
enable_confirmation = true
[auth.sms.twilio]
enabled = false
[nonsense]
a = 1
"#,
    );
    assert_eq!(
        c.unknown_keys,
        [
            "api.max_row",
            "auth.email.enable_confirmation",
            "auth.sitee_url",
            "nonsense"
        ]
    );
    assert!(
        c.unused_keys.contains(&"studio".to_owned()),
        "{:?}",
        c.unused_keys
    );
    assert!(c.unused_keys.contains(&"db.pooler".to_owned()));
    assert!(c.unused_keys.contains(&"project_id".to_owned()));
}

#[test]
fn a_wrong_type_names_the_key_and_the_file() {
    let err = parse_with("[api]\nmax_rows = \"many\"\n", &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("/p/supabase/config.toml"), "{text}");
    assert!(text.contains("api.max_rows"), "{text}");
    let err = parse_with("[auth.email.smtp]\nhost = \"h\"\nport = 99999\n", &[]).unwrap_err();
    assert!(err.to_string().contains("auth.email.smtp.port"), "{err}");
    let err = parse_with("[auth]\npassword_requirements = \"strong\"\n", &[]).unwrap_err();
    assert!(
        err.to_string().contains("auth.password_requirements"),
        "{err}"
    );
    let err = parse_with("[api\nport = 1\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
}

#[test]
fn smtp_needs_a_host_and_templates_must_exist() {
    let err = parse_with("[auth.email.smtp]\nport = 25\n", &[]).unwrap_err();
    assert!(err.to_string().contains("auth.email.smtp.host"), "{err}");
    let c = parse("[auth.email.smtp]\nenabled = false\nport = 25\n");
    assert_eq!(var(&c, "GOTRUE_SMTP_PORT"), None);
    let err = parse_with(
        "[auth.email.template.invite]\nsubject = \"Hi\"\ncontent_path = \"./supabase/templates/nope.html\"\n",
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("auth.email.template.invite.content_path"),
        "{err}"
    );
}

#[test]
fn email_templates_resolve_against_the_project_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("supabase/templates")).unwrap();
    std::fs::write(
        dir.path().join("supabase/templates/invite.html"),
        "<p>hi</p>",
    )
    .unwrap();
    let text = "[auth.email.template.invite]\nsubject = \"Join us\"\ncontent_path = \"./supabase/templates/invite.html\"\n[auth.email.template.welcome]\nsubject = \"x\"\n";
    let c = ProjectConfig::parse(
        text,
        &dir.path().join("supabase/config.toml"),
        dir.path(),
        &|_| None,
    )
    .unwrap();
    assert_eq!(var(&c, "GOTRUE_MAILER_SUBJECTS_INVITE"), Some("Join us"));
    let path = var(&c, "GOTRUE_MAILER_TEMPLATES_INVITE").unwrap();
    assert!(path.ends_with("supabase/templates/invite.html"), "{path}");
    assert!(Path::new(path).is_absolute());
    // Relative to supabase/ works too.
    let text = "[auth.email.template.invite]\ncontent_path = \"templates/invite.html\"\n";
    let c2 = ProjectConfig::parse(
        text,
        &dir.path().join("supabase/config.toml"),
        dir.path(),
        &|_| None,
    )
    .unwrap();
    assert!(var(&c2, "GOTRUE_MAILER_TEMPLATES_INVITE")
        .unwrap()
        .ends_with("supabase/templates/invite.html"));
    assert!(
        c.notes.iter().any(|n| n.contains("welcome")),
        "{:?}",
        c.notes
    );
}

#[test]
fn sms_sign_up_is_accepted_with_a_warning() {
    let c = parse("[auth.sms]\nenable_signup = true\n");
    assert_eq!(var(&c, "GOTRUE_EXTERNAL_PHONE_ENABLED"), Some("true"));
    assert!(c.notes.iter().any(|n| n.contains("auth.sms.enable_signup")));
}

#[test]
fn sms_without_confirmations_confirms_phone_sign_ups_at_once() {
    let c = parse("[auth.sms]\nenable_signup = true\nenable_confirmations = false\n");
    assert_eq!(var(&c, "GOTRUE_EXTERNAL_PHONE_ENABLED"), Some("true"));
    assert_eq!(var(&c, "GOTRUE_SMS_AUTOCONFIRM"), Some("true"));
    assert!(!c.notes.iter().any(|n| n.contains("auth.sms.enable_signup")));
    let c = parse("[auth.sms]\nenable_confirmations = true\n");
    assert_eq!(var(&c, "GOTRUE_SMS_AUTOCONFIRM"), Some("false"));
}

#[test]
fn the_supabase_init_template_parses_without_unknown_keys() {
    let c = parse(include_str!("testdata/supabase-init.toml"));
    assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
    assert_eq!(var(&c, "CRAFTBASE_DB_MAJOR_VERSION"), Some("17"));
    assert_eq!(var(&c, "GOTRUE_DISABLE_SIGNUP"), Some("false"));
    assert_eq!(var(&c, "FILE_SIZE_LIMIT"), Some("52428800"));
    assert_eq!(var(&c, "CRAFTBASE_STORAGE_ENABLED"), Some("true"));
}

#[test]
fn a_storage_size_that_is_not_one_names_its_key() {
    let err = parse_with("[storage]\nfile_size_limit = \"lots\"\n", &[]).unwrap_err();
    assert!(err.to_string().contains("storage.file_size_limit"), "{err}");
}

#[test]
fn the_environment_wins_over_the_file_which_fills_what_it_leaves_unset() {
    // Names of this test's own: the environment is process-wide.
    let set = "CRAFTBASE_TEST_PRECEDENCE_SET";
    let unset = "CRAFTBASE_TEST_PRECEDENCE_UNSET";
    std::env::set_var(set, "from-env");
    std::env::remove_var(unset);
    let assignment = |key: &str, var: &str| Assignment {
        key: key.into(),
        var: var.into(),
        value: "from-file".into(),
    };
    let config = ProjectConfig {
        assignments: vec![
            assignment("api.max_rows", set),
            assignment("auth.site_url", unset),
        ],
        ..ProjectConfig::default()
    };
    let filled = config.fill_environment();
    assert_eq!(std::env::var(set).unwrap(), "from-env");
    assert_eq!(std::env::var(unset).unwrap(), "from-file");
    assert_eq!(
        filled.into_iter().collect::<Vec<_>>(),
        [(unset.to_owned(), "auth.site_url".to_owned())]
    );
    std::env::remove_var(set);
    std::env::remove_var(unset);
}

#[test]
fn env_functions_read_as_numbers_and_booleans_where_those_belong() {
    let c = parse_with(
        "[auth.email.smtp]\nhost = \"h\"\nport = \"env(SMTP_PORT)\"\n[auth]\nenable_signup = \"env(SIGNUP)\"\nadditional_redirect_urls = [\"env(URL)\"]\n",
        &[("SMTP_PORT", "2525"), ("SIGNUP", "false"), ("URL", "http://x.test")],
    )
    .unwrap();
    assert_eq!(var(&c, "GOTRUE_SMTP_PORT"), Some("2525"));
    assert_eq!(var(&c, "GOTRUE_DISABLE_SIGNUP"), Some("true"));
    assert_eq!(var(&c, "GOTRUE_URI_ALLOW_LIST"), Some("http://x.test"));
    // A string written where a number belongs is still a type error; so is a variable's
    // value that is no number.
    let err = parse_with("[api]\nmax_rows = \"12\"\n", &[]).unwrap_err();
    assert!(err.to_string().contains("api.max_rows"), "{err}");
    let err = parse_with("[api]\nmax_rows = \"env(ROWS)\"\n", &[("ROWS", "many")]).unwrap_err();
    assert!(err.to_string().contains("api.max_rows"), "{err}");
}

#[test]
fn passkey_and_webauthn_sections_map_to_gotrue_variables() {
    let c = parse(
        r#"
[auth.mfa.web_authn]
enroll_enabled = true
verify_enabled = false

[auth.passkey]
enabled = true

[auth.webauthn]
rp_display_name = "My app"
rp_id = "localhost"
rp_origins = ["http://localhost:5173", "http://localhost:3000"]
"#,
    );
    assert_eq!(var(&c, "GOTRUE_PASSKEY_ENABLED"), Some("true"));
    assert_eq!(var(&c, "GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED"), Some("true"));
    assert_eq!(
        var(&c, "GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED"),
        Some("false")
    );
    assert_eq!(var(&c, "GOTRUE_WEBAUTHN_RP_ID"), Some("localhost"));
    assert_eq!(var(&c, "GOTRUE_WEBAUTHN_RP_DISPLAY_NAME"), Some("My app"));
    assert_eq!(
        var(&c, "GOTRUE_WEBAUTHN_RP_ORIGINS"),
        Some("http://localhost:5173,http://localhost:3000")
    );
}
