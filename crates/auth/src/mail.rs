//! Outgoing mail over SMTP: the confirmation, magic-link, recovery, invite and email-change
//! messages, each with its link and its one-time code.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::AuthError;
use crate::otp::{Kind, Prepared};
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

/// The link a mail carries: `/verify` with the hashed token, type and redirect.
pub fn action_link(origin: &Origin, prepared: &Prepared, redirect_to: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &prepared.token_hash)
        .append_pair("type", prepared.kind.as_str())
        .append_pair("redirect_to", redirect_to)
        .finish();
    format!("{}/verify?{query}", origin.0)
}

/// Sends the mail for a prepared one-time token.
pub async fn send_prepared(
    state: &AuthState,
    origin: &Origin,
    prepared: Prepared,
    redirect_to: &str,
) -> Result<(), AuthError> {
    let s = &state.settings;
    if prepared.kind == Kind::Reauthentication {
        let code = &prepared.otp;
        let subject = &s.subject_reauthentication;
        let text = format!("Enter this code to confirm it is you: {code}\n");
        let html = format!("<h2>{subject}</h2>\n<p>Enter the code: {code}</p>\n");
        return state.mailer.send(&prepared.to, subject, text, html).await;
    }
    let link = action_link(origin, &prepared, redirect_to);
    let (subject, action, which) = match prepared.kind {
        Kind::Signup => (
            &s.subject_confirmation,
            "confirm your email address",
            Some(Which::Confirmation),
        ),
        Kind::Invite => (&s.subject_invite, "accept the invite", Some(Which::Invite)),
        Kind::MagicLink => (&s.subject_magic_link, "sign in", Some(Which::MagicLink)),
        Kind::Recovery => (
            &s.subject_recovery,
            "reset your password",
            Some(Which::Recovery),
        ),
        Kind::EmailChange => (
            &s.subject_email_change,
            "confirm your new email address",
            Some(Which::EmailChange),
        ),
        Kind::EmailChangeCurrent => (
            &s.subject_email_change,
            "confirm the change of your email address",
            Some(Which::EmailChange),
        ),
        Kind::Reauthentication => (&s.subject_reauthentication, "confirm it is you", None),
    };
    let code = &prepared.otp;
    let text = format!(
        "Follow this link to {action}:\n\n{link}\n\nAlternatively, enter the code: {code}\n"
    );
    let custom = match which {
        Some(which) => state.mailer.templates.get(which, &state.http).await,
        None => None,
    };
    if let Some(t) = custom {
        let vars = template::Vars {
            confirmation_url: &link,
            token: code,
            token_hash: &prepared.token_hash,
            site_url: &s.site_url,
            email: &prepared.email,
            new_email: prepared.new_email.as_deref().unwrap_or(""),
            redirect_to,
            data: Some(&prepared.data),
        };
        let html = template::render(t, &vars);
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
