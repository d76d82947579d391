//! A one-time token sent by email: what it is for and what its mail carries. Both `otp`
//! (which makes and redeems tokens) and `mail` (which sends them) build on it.

/// What a token is for; the names are the `type` of `/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signup,
    Invite,
    MagicLink,
    Recovery,
    /// The confirmation of an email change mailed to the new address.
    EmailChange,
    /// The confirmation of an email change mailed to the current address (secure email change).
    EmailChangeCurrent,
    /// A nonce confirming a signed-in user before a password change; never redeemed by `/verify`.
    Reauthentication,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Signup => "signup",
            Kind::Invite => "invite",
            Kind::MagicLink => "magiclink",
            Kind::Recovery => "recovery",
            Kind::EmailChange | Kind::EmailChangeCurrent => "email_change",
            Kind::Reauthentication => "reauthentication",
        }
    }

    /// The `auth.users` columns holding this kind's token and when it was sent.
    pub(crate) fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Signup | Kind::Invite => (
                "confirmation_token",
                "confirmation_sent_at",
                "confirmation_token",
            ),
            Kind::MagicLink | Kind::Recovery => {
                ("recovery_token", "recovery_sent_at", "recovery_token")
            }
            Kind::EmailChange => (
                "email_change_token_new",
                "email_change_sent_at",
                "email_change_token_new",
            ),
            Kind::EmailChangeCurrent => (
                "email_change_token_current",
                "email_change_sent_at",
                "email_change_token_current",
            ),
            Kind::Reauthentication => (
                "reauthentication_token",
                "reauthentication_sent_at",
                "reauthentication_token",
            ),
        }
    }

    /// The session's `amr` method once redeemed.
    pub(crate) fn method(self) -> &'static str {
        match self {
            Kind::Signup => "otp",
            Kind::Invite => "invite",
            Kind::MagicLink => "magiclink",
            Kind::Recovery => "recovery",
            Kind::EmailChange | Kind::EmailChangeCurrent => "email_change",
            Kind::Reauthentication => "reauthentication",
        }
    }
}

/// A token written to the database and waiting to be mailed (or shown by `generate_link`).
pub struct Prepared {
    pub to: String,
    pub kind: Kind,
    pub otp: String,
    pub token_hash: String,
    /// The user's current address (or `to` when the user has none), for templates.
    pub email: String,
    /// The address an email change moves to, for templates.
    pub new_email: Option<String>,
    /// The user's metadata, for templates' `{{ .Data.key }}`.
    pub data: serde_json::Value,
}
