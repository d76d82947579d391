//! Mail templates from configuration (`GOTRUE_MAILER_TEMPLATES_*`): read once from a local
//! path, a `file://` URL or an http(s) URL, parsed then as Go templates (`syntax`), so a
//! broken one is refused at start with its line and the built-in text is used instead, and
//! rendered per mail (`render`) with the values GoTrue gives its templates
//! (`{{ .ConfirmationURL }}`, `{{ .Token }}`, `{{ .TokenHash }}`, `{{ .SiteURL }}`,
//! `{{ .Email }}`, `{{ .NewEmail }}`, `{{ .SendingTo }}`, `{{ .RedirectTo }}`, `{{ .Data.key }}`),
//! escaped for HTML as html/template escapes text.

mod render;
mod syntax;
#[cfg(test)]
mod tests;

pub use render::RenderError;
pub use syntax::SyntaxError;

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

/// A template's configured source and, once read, its parsed form (`None`: use the built-in
/// text).
struct Slot {
    source: Option<String>,
    text: OnceCell<Option<Template>>,
}

/// A template that parsed.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<syntax::Node>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, SyntaxError> {
        Ok(Template {
            nodes: syntax::parse(text)?,
        })
    }

    /// The mail body, or why it could not be made (the caller then uses the built-in text).
    pub fn render(&self, vars: &Vars) -> Result<String, RenderError> {
        render::render(&self.nodes, &vars.to_value(), true)
    }
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
    pub async fn get(&self, which: Which, http: &reqwest::Client) -> Option<&Template> {
        let slot = self.slot(which);
        let source = slot.source.as_deref()?;
        slot.text.get_or_init(|| load(source, http)).await.as_ref()
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

/// Reads and parses a template; on failure logs why and answers `None` (the built-in text is
/// used, as GoTrue falls back to its default template).
async fn load(source: &str, http: &reqwest::Client) -> Option<Template> {
    let text = read(source, http).await?;
    match Template::parse(&text) {
        Ok(template) => Some(template),
        Err(error) => {
            tracing::error!(source, %error, "mail template refused: not a valid Go template; using the built-in text");
            None
        }
    }
}

/// Reads a template's text; on failure logs why and answers `None`.
async fn read(source: &str, http: &reqwest::Client) -> Option<String> {
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
    pub sending_to: &'a str,
    pub data: Option<&'a Value>,
}

impl Vars<'_> {
    /// The map GoTrue hands its templates.
    fn to_value(&self) -> Value {
        serde_json::json!({
            "ConfirmationURL": self.confirmation_url,
            "Token": self.token,
            "TokenHash": self.token_hash,
            "SiteURL": self.site_url,
            "Email": self.email,
            "NewEmail": self.new_email,
            "SendingTo": self.sending_to,
            "RedirectTo": self.redirect_to,
            // No metadata is an empty map in GoTrue: its keys print nothing.
            "Data": self.data.filter(|d| !d.is_null()).cloned().unwrap_or_else(|| serde_json::json!({})),
        })
    }
}

/// A subject rendered as a template with the mail's values; one that fails to parse or
/// render is logged and sent as written, so a subject never stops a mail.
pub fn subject(raw: &str, vars: &Vars) -> String {
    if !raw.contains("{{") {
        return raw.to_owned();
    }
    let rendered = Template::parse(raw)
        .map_err(|e| e.to_string())
        .and_then(|t| render::render(&t.nodes, &vars.to_value(), true).map_err(|e| e.to_string()));
    rendered.unwrap_or_else(|error| {
        tracing::warn!(%error, subject = raw, "mail subject template failed; sent as written");
        raw.to_owned()
    })
}

/// Escapes the characters that would break out of HTML text or a quoted attribute.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
