//! Outgoing mail over SMTP: the confirmation, magic-link, recovery, invite and email-change
//! messages, each with its link and its one-time code.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::emailed_token::{Kind, Prepared};
use crate::error::AuthError;
use crate::redirect::Origin;
use crate::settings::Settings;
use crate::template::{self, html_escape, Templates, Which};
use crate::AuthState;

/// The SMTP connection settings, or nothing when mail is not configured.
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Option<Mailbox>,
    /// The configured templates (`GOTRUE_MAILER_TEMPLATES_*`).
    pub templates: Templates,
}

impl Mailer {
    pub fn new(settings: &Settings) -> Mailer {
        let transport = settings.smtp_host.as_deref().map(|host| {
            // Port 465 speaks TLS from the start; elsewhere STARTTLS is used when the server
            // offers it, and local catchers (Inbucket, Mailpit) are spoken to in plain text.
            let tls = match TlsParameters::new(host.to_owned()) {
                Ok(params) if settings.smtp_port == 465 => Tls::Wrapper(params),
                Ok(params) => Tls::Opportunistic(params),
                Err(e) => {
                    tracing::warn!(error = %e, "no TLS for the SMTP server");
                    Tls::None
                }
            };
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(settings.smtp_port)
                .tls(tls);
            if let (Some(user), Some(pass)) = (&settings.smtp_user, &settings.smtp_pass) {
                builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
            }
            builder.build()
        });
        let name =
            (!settings.smtp_sender_name.is_empty()).then(|| settings.smtp_sender_name.clone());
        let from = settings
            .smtp_admin_email
            .parse()
            .ok()
            .map(|email| Mailbox::new(name, email));
        Mailer {
            transport,
            from,
            templates: Templates::new(settings),
        }
    }

    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<(), AuthError> {
        let (Some(transport), Some(from)) = (&self.transport, &self.from) else {
            tracing::warn!(
                subject,
                "no SMTP server configured (GOTRUE_SMTP_HOST); mail not sent"
            );
            return Ok(());
        };
        let to: Mailbox = to.parse().map_err(|_| {
            AuthError::Validation("Unable to validate email address: invalid format".into())
        })?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            )
            .map_err(|e| AuthError::Internal(format!("building a mail: {e}")))?;
        transport.send(message).await.map_err(|e| {
            tracing::error!(error = %e, subject, "smtp send failed");
            AuthError::MailFailed
        })?;
        Ok(())
    }
}

/// The verification link of a prepared token, built in this one place for mails and for
/// `generate_link`: `/verify` with the hashed token, its type and the redirect, which is the
/// requested one when the allow-list permits it and the site URL otherwise.
pub struct VerifyLink {
    pub url: String,
    pub redirect_to: String,
}

impl VerifyLink {
    pub fn new(
        state: &AuthState,
        origin: &Origin,
        prepared: &Prepared,
        requested: Option<&str>,
    ) -> VerifyLink {
        let redirect_to = crate::redirect::target(&state.settings, requested);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &prepared.token_hash)
            .append_pair("type", prepared.kind.as_str())
            .append_pair("redirect_to", &redirect_to)
            .finish();
        VerifyLink {
            url: format!("{}/verify?{query}", origin.0),
            redirect_to,
        }
    }
}

/// Sends the mail for a prepared one-time token, its link leading to `requested` if allowed.
pub async fn send_prepared(
    state: &AuthState,
    origin: &Origin,
    prepared: Prepared,
    requested: Option<&str>,
) -> Result<(), AuthError> {
    let s = &state.settings;
    let VerifyLink {
        url: verify_url,
        redirect_to,
    } = VerifyLink::new(state, origin, &prepared, requested);
    let redirect_to = redirect_to.as_str();
    // A reauthentication mail carries a code only: there is nothing to follow a link to.
    let reauthentication = prepared.kind == Kind::Reauthentication;
    let link = match reauthentication {
        true => String::new(),
        false => verify_url,
    };
    let (subject, action, which) = match prepared.kind {
        Kind::Signup => (
            &s.subject_confirmation,
            "confirm your email address",
            Which::Confirmation,
        ),
        Kind::Invite => (&s.subject_invite, "accept the invite", Which::Invite),
        Kind::MagicLink => (&s.subject_magic_link, "sign in", Which::MagicLink),
        Kind::Recovery => (&s.subject_recovery, "reset your password", Which::Recovery),
        Kind::EmailChange => (
            &s.subject_email_change,
            "confirm your new email address",
            Which::EmailChange,
        ),
        Kind::EmailChangeCurrent => (
            &s.subject_email_change,
            "confirm the change of your email address",
            Which::EmailChange,
        ),
        Kind::Reauthentication => (
            &s.subject_reauthentication,
            "confirm it is you",
            Which::Reauthentication,
        ),
    };
    let code = &prepared.otp;
    let text = match reauthentication {
        true => format!("Enter this code to confirm it is you: {code}\n"),
        false => format!(
            "Follow this link to {action}:\n\n{link}\n\nAlternatively, enter the code: {code}\n"
        ),
    };
    let vars = template::Vars {
        confirmation_url: &link,
        token: code,
        token_hash: &prepared.token_hash,
        site_url: &s.site_url,
        email: &prepared.email,
        new_email: prepared.new_email.as_deref().unwrap_or(""),
        redirect_to,
        sending_to: &prepared.to,
        data: Some(&prepared.data),
    };
    let subject = &template::subject(subject, &vars);
    let custom = state.mailer.templates.get(which, &state.http).await;
    // A template that fails to render falls back to the built-in text, as GoTrue's does.
    match custom.map(|t| t.render(&vars)) {
        Some(Ok(html)) => return state.mailer.send(&prepared.to, subject, text, html).await,
        Some(Err(error)) => {
            tracing::warn!(%error, ?which, "mail template failed to render; using the built-in text");
        }
        None => {}
    }
    if reauthentication {
        let html = format!("<h2>{subject}</h2>\n<p>Enter the code: {code}</p>\n");
        return state.mailer.send(&prepared.to, subject, text, html).await;
    }
    let html = format!(
        "<h2>{subject}</h2>\n<p>Follow this link to {action}:</p>\n<p><a href=\"{}\">{}</a></p>\n\
         <p>Alternatively, enter the code: {code}</p>\n",
        html_escape(&link),
        subject
    );
    state.mailer.send(&prepared.to, subject, text, html).await
}
