//! Mail templates from configuration (`GOTRUE_MAILER_TEMPLATES_*`): read once from a local
//! path, a `file://` URL or an http(s) URL, and rendered by plain substitution of the
//! placeholders GoTrue's templates use (`{{ .ConfirmationURL }}`, `{{ .Token }}`,
//! `{{ .TokenHash }}`, `{{ .SiteURL }}`, `{{ .Email }}`, `{{ .NewEmail }}`, `{{ .RedirectTo }}`,
//! `{{ .Data.key }}`). Values are HTML-escaped, as the templates are HTML. Anything else
//! between braces is left as written.

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::settings::Settings;

/// Which configured template a mail uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Confirmation,
    Invite,
    Recovery,
    MagicLink,
    EmailChange,
    Reauthentication,
}

const ALL: [Which; 6] = [
    Which::Confirmation,
    Which::Invite,
    Which::Recovery,
    Which::MagicLink,
    Which::EmailChange,
    Which::Reauthentication,
];

/// A template's configured source and, once read, its text (`None`: use the built-in text).
struct Slot {
    source: Option<String>,
    text: OnceCell<Option<String>>,
}

/// The configured templates.
pub struct Templates {
    slots: [Slot; 6],
}

impl Templates {
    pub fn new(settings: &Settings) -> Templates {
        let slot = |s: &Option<String>| Slot {
            source: s.clone().filter(|s| !s.trim().is_empty()),
            text: OnceCell::new(),
        };
        Templates {
            slots: [
                slot(&settings.template_confirmation),
                slot(&settings.template_invite),
                slot(&settings.template_recovery),
                slot(&settings.template_magic_link),
                slot(&settings.template_email_change),
                slot(&settings.template_reauthentication),
            ],
        }
    }

    fn slot(&self, which: Which) -> &Slot {
        &self.slots[ALL.iter().position(|w| *w == which).unwrap_or(0)]
    }

    /// The template for `which`, read on first use (or by [`Templates::load_all`] at start).
    pub async fn get(&self, which: Which, http: &reqwest::Client) -> Option<&str> {
        let slot = self.slot(which);
        let source = slot.source.as_deref()?;
        slot.text
            .get_or_init(|| load(source, http))
            .await
            .as_deref()
    }

    /// Reads every configured template now, so failures show in the log at start.
    pub async fn load_all(&self, http: &reqwest::Client) {
        for which in ALL {
            let _ = self.get(which, http).await;
        }
    }

    pub fn any(&self) -> bool {
        self.slots.iter().any(|s| s.source.is_some())
    }
}

/// Reads a template; on failure logs why and answers `None` (the built-in text is used).
async fn load(source: &str, http: &reqwest::Client) -> Option<String> {
    let result = if source.starts_with("http://") || source.starts_with("https://") {
        fetch(source, http).await
    } else {
        let path = match source.strip_prefix("file://") {
            Some(_) => url::Url::parse(source)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| "not a local file URL".to_owned()),
            None => Ok(std::path::PathBuf::from(source)),
        };
        match path {
            Ok(path) => tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(text) => {
            tracing::info!(source, "mail template loaded");
            Some(text)
        }
        Err(error) => {
            tracing::warn!(source, %error, "mail template unreadable; using the built-in text");
            None
        }
    }
}

async fn fetch(source: &str, http: &reqwest::Client) -> Result<String, String> {
    let response = http.get(source).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    response.text().await.map_err(|e| e.to_string())
}

/// The values a template may use.
#[derive(Default)]
pub struct Vars<'a> {
    pub confirmation_url: &'a str,
    pub token: &'a str,
    pub token_hash: &'a str,
    pub site_url: &'a str,
    pub email: &'a str,
    pub new_email: &'a str,
    pub redirect_to: &'a str,
    pub data: Option<&'a Value>,
}

impl Vars<'_> {
    /// The value of a placeholder such as `.Token` or `.Data.name`; `None` when unknown.
    fn lookup(&self, name: &str) -> Option<String> {
        let plain = match name {
            ".ConfirmationURL" => Some(self.confirmation_url),
            ".Token" => Some(self.token),
            ".TokenHash" => Some(self.token_hash),
            ".SiteURL" => Some(self.site_url),
            ".Email" => Some(self.email),
            ".NewEmail" => Some(self.new_email),
            ".RedirectTo" => Some(self.redirect_to),
            _ => None,
        };
        if let Some(v) = plain {
            return Some(v.to_owned());
        }
        let key = name.strip_prefix(".Data.")?;
        let value = self.data?.get(key);
        Some(match value {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        })
    }
}

/// `template` with each known `{{ .Name }}` replaced by its HTML-escaped value.
pub fn render(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match vars.lookup(after[..end].trim()) {
            Some(value) => out.push_str(&html_escape(&value)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Escapes the characters that would break out of HTML text or a quoted attribute.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(data: &Value) -> Vars<'_> {
        Vars {
            confirmation_url: "http://h/auth/v1/verify?token=abc&type=signup",
            token: "123456",
            token_hash: "abc",
            site_url: "http://localhost:3000",
            email: "a@example.com",
            new_email: "b@example.com",
            redirect_to: "http://localhost:3000/welcome",
            data: Some(data),
        }
    }

    #[test]
    fn substitutes_every_variable() {
        let data = json!({});
        let t = "{{ .ConfirmationURL }}|{{ .Token }}|{{ .TokenHash }}|{{ .SiteURL }}|\
                 {{ .Email }}|{{ .NewEmail }}|{{ .RedirectTo }}";
        assert_eq!(
            render(t, &vars(&data)),
            "http://h/auth/v1/verify?token=abc&amp;type=signup|123456|abc|http://localhost:3000|\
             a@example.com|b@example.com|http://localhost:3000/welcome"
        );
    }

    #[test]
    fn tolerates_spacing_inside_the_braces() {
        let data = json!({});
        let v = vars(&data);
        assert_eq!(render("{{.Token}}", &v), "123456");
        assert_eq!(render("{{   .Token\t}}", &v), "123456");
        assert_eq!(
            render("a{{ .Token}}b{{.Email }}c", &v),
            "a123456ba@example.comc"
        );
    }

    #[test]
    fn leaves_unknown_and_unclosed_placeholders_alone() {
        let data = json!({});
        let v = vars(&data);
        assert_eq!(
            render("{{ .Nope }} {{ if .X }}", &v),
            "{{ .Nope }} {{ if .X }}"
        );
        assert_eq!(render("x {{ .Token", &v), "x {{ .Token");
        assert_eq!(render("{ .Token } }}", &v), "{ .Token } }}");
        assert_eq!(render("no placeholders", &v), "no placeholders");
        assert_eq!(render("", &v), "");
    }

    #[test]
    fn data_fields_are_looked_up_and_escaped() {
        let data = json!({"name": "Ada <3", "age": 36});
        let v = vars(&data);
        assert_eq!(render("Hi {{ .Data.name }}", &v), "Hi Ada &lt;3");
        assert_eq!(render("{{ .Data.age }}", &v), "36");
        assert_eq!(render("[{{ .Data.missing }}]", &v), "[]");
        let none = Vars::default();
        assert_eq!(render("{{ .Data.name }}", &none), "{{ .Data.name }}");
    }

    #[test]
    fn keeps_text_around_placeholders_and_multibyte_characters() {
        let data = json!({});
        assert_eq!(
            render("Grüße, {{ .Email }} — ✓", &vars(&data)),
            "Grüße, a@example.com — ✓"
        );
    }

    #[tokio::test]
    async fn reads_local_paths_and_file_urls_and_falls_back_when_missing() {
        let dir = std::env::temp_dir().join(format!("craftbase-tpl-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("confirm.html");
        std::fs::write(&file, "<p>{{ .Token }}</p>").unwrap();
        let http = reqwest::Client::new();
        assert_eq!(
            load(file.to_str().unwrap(), &http).await.as_deref(),
            Some("<p>{{ .Token }}</p>")
        );
        let as_url = url::Url::from_file_path(&file).unwrap().to_string();
        assert!(as_url.starts_with("file://"));
        assert_eq!(
            load(&as_url, &http).await.as_deref(),
            Some("<p>{{ .Token }}</p>")
        );
        assert_eq!(
            load(dir.join("missing.html").to_str().unwrap(), &http).await,
            None
        );
        // Nothing listens on port 9 of the loopback: the fetch fails and the text falls back.
        assert_eq!(load("http://127.0.0.1:9/t.html", &http).await, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn fetches_http_urls_and_falls_back_on_an_error_status() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let (status, body) = if request.starts_with("GET /ok.html ") {
                    ("200 OK", "<b>{{ .Email }}</b>")
                } else {
                    ("404 Not Found", "nope")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        assert_eq!(
            load(&format!("{base}/ok.html"), &http).await.as_deref(),
            Some("<b>{{ .Email }}</b>")
        );
        assert_eq!(load(&format!("{base}/missing.html"), &http).await, None);
    }

    #[tokio::test]
    async fn unset_templates_answer_none_and_set_ones_are_read_once() {
        let dir = std::env::temp_dir().join(format!("craftbase-tpl-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("invite.html");
        std::fs::write(&file, "first").unwrap();
        let mut settings = Settings::from_flags(std::iter::empty()).unwrap();
        settings.template_invite = Some(file.to_str().unwrap().to_owned());
        settings.template_recovery = Some("  ".into());
        let templates = Templates::new(&settings);
        let http = reqwest::Client::new();
        assert!(templates.any());
        assert_eq!(templates.get(Which::Invite, &http).await, Some("first"));
        std::fs::write(&file, "second").unwrap();
        assert_eq!(templates.get(Which::Invite, &http).await, Some("first"));
        assert_eq!(templates.get(Which::Recovery, &http).await, None);
        assert_eq!(templates.get(Which::Confirmation, &http).await, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
