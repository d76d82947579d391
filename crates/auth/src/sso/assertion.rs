//! What a signed Response must say before anyone is signed in — success status, issuer,
//! destination and recipient, audience, the time window (with a small clock skew), and the
//! request it answers — and what it says about the user (GoTrue's `SAMLAssertion`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use uppsala::{Document, NodeId};

use super::xml::{self, SAML, SAMLP};

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const TRANSIENT_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
const SUBJECT_ID: &str = "urn:oasis:names:tc:SAML:attribute:subject-id";
const EMAIL_ATTRIBUTES: [&str; 6] = [
    "urn:oid:0.9.2342.19200300.100.1.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "http://schemas.xmlsoap.org/claims/EmailAddress",
    "mail",
    "Mail",
    "email",
];

/// Clocks of the IdP and craftbase may differ by this much (crewjam's default, as GoTrue).
pub const CLOCK_SKEW: Duration = Duration::seconds(180);
/// How old a Response may be when it arrives (crewjam's `MaxIssueDelay`).
const MAX_ISSUE_DELAY: Duration = Duration::seconds(90);

/// What the Response is checked against.
pub struct Expect<'a> {
    pub idp_entity_id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    /// The AuthnRequest's ID for a sign-in started at `/sso`; `None` for IdP-initiated ones.
    pub request_id: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// A validated assertion's facts.
#[derive(Debug)]
pub struct Assertion {
    pub id: String,
    /// Until when its ID must stay remembered (replay guard).
    pub expires_at: DateTime<Utc>,
    name_id: Option<(String, Option<String>)>,
    attributes: Vec<(String, Option<String>, Vec<String>)>,
    pub session_not_after: Option<DateTime<Utc>>,
}

/// Checks the Response `root` and its signed `assertion` against `expect`.
pub fn validate(
    doc: &Document<'_>,
    root: NodeId,
    assertion: NodeId,
    expect: &Expect<'_>,
) -> Result<Assertion, String> {
    let now = expect.now;
    if xml::attr(doc, root, "Version") != Some("2.0") {
        return Err("unsupported SAML version".into());
    }
    if let Some(dest) = xml::attr(doc, root, "Destination") {
        if dest != expect.acs_url {
            return Err(format!("wrong Destination {dest:?}"));
        }
    }
    check_in_response_to(xml::attr(doc, root, "InResponseTo"), expect.request_id)?;
    let issued = time(doc, root, "IssueInstant")?.ok_or("Response without IssueInstant")?;
    if issued > now + CLOCK_SKEW || issued + MAX_ISSUE_DELAY + CLOCK_SKEW < now {
        return Err("the Response was issued outside the accepted time window".into());
    }
    let status = xml::child(doc, root, SAMLP, "Status")
        .and_then(|s| xml::child(doc, s, SAMLP, "StatusCode"))
        .and_then(|c| xml::attr(doc, c, "Value"));
    if status != Some(SUCCESS) {
        return Err(format!("the IdP answered status {status:?}"));
    }
    if let Some(issuer) = xml::child(doc, root, SAML, "Issuer") {
        if xml::text(doc, issuer) != expect.idp_entity_id {
            return Err("the Response's Issuer is not the provider".into());
        }
    }
    let id = xml::attr(doc, assertion, "ID").unwrap_or("").to_owned();
    if id.is_empty() || id.len() > 256 {
        return Err("the Assertion has no usable ID".into());
    }
    let issuer = xml::child(doc, assertion, SAML, "Issuer").map(|i| xml::text(doc, i));
    if issuer.as_deref() != Some(expect.idp_entity_id) {
        return Err("the Assertion's Issuer is not the provider".into());
    }
    let subject = xml::child(doc, assertion, SAML, "Subject").ok_or("Assertion without Subject")?;
    let mut bearer_ok = false;
    for confirmation in xml::children(doc, subject, SAML, "SubjectConfirmation") {
        if xml::attr(doc, confirmation, "Method") != Some(BEARER) {
            continue;
        }
        let Some(data) = xml::child(doc, confirmation, SAML, "SubjectConfirmationData") else {
            continue;
        };
        if xml::attr(doc, data, "Recipient") != Some(expect.acs_url) {
            return Err("the SubjectConfirmation's Recipient is not this ACS".into());
        }
        let until = time(doc, data, "NotOnOrAfter")?
            .ok_or("SubjectConfirmationData without NotOnOrAfter")?;
        if until + CLOCK_SKEW <= now {
            return Err("the SubjectConfirmation has expired".into());
        }
        if let Some(from) = time(doc, data, "NotBefore")? {
            if from > now + CLOCK_SKEW {
                return Err("the SubjectConfirmation is not valid yet".into());
            }
        }
        check_in_response_to(xml::attr(doc, data, "InResponseTo"), expect.request_id)?;
        bearer_ok = true;
    }
    if !bearer_ok {
        return Err("the Assertion has no bearer SubjectConfirmation".into());
    }
    let conditions =
        xml::child(doc, assertion, SAML, "Conditions").ok_or("Assertion without Conditions")?;
    let not_before = time(doc, conditions, "NotBefore")?;
    let not_after = time(doc, conditions, "NotOnOrAfter")?;
    if not_before.is_some_and(|t| t > now + CLOCK_SKEW) {
        return Err("the Assertion is not valid yet".into());
    }
    if not_after.is_some_and(|t| t + CLOCK_SKEW <= now) {
        return Err("the Assertion has expired".into());
    }
    let restrictions = xml::children(doc, conditions, SAML, "AudienceRestriction");
    if restrictions.is_empty() {
        return Err("the Assertion has no AudienceRestriction".into());
    }
    for restriction in restrictions {
        let audiences: Vec<String> = xml::children(doc, restriction, SAML, "Audience")
            .into_iter()
            .map(|a| xml::text(doc, a))
            .collect();
        if !audiences.iter().any(|a| a == expect.sp_entity_id) {
            return Err("the Assertion is meant for another audience".into());
        }
    }
    let name_id = xml::child(doc, subject, SAML, "NameID").map(|n| {
        (
            xml::text(doc, n),
            xml::attr(doc, n, "Format").map(str::to_owned),
        )
    });
    let mut attributes = Vec::new();
    for statement in xml::children(doc, assertion, SAML, "AttributeStatement") {
        for a in xml::children(doc, statement, SAML, "Attribute") {
            let name = xml::attr(doc, a, "Name").unwrap_or("").to_owned();
            let friendly = xml::attr(doc, a, "FriendlyName").map(str::to_owned);
            let values = xml::children(doc, a, SAML, "AttributeValue")
                .into_iter()
                .map(|v| xml::text(doc, v))
                .collect();
            attributes.push((name, friendly, values));
        }
    }
    let mut session_not_after = None;
    for statement in xml::children(doc, assertion, SAML, "AuthnStatement") {
        if let Some(t) = time(doc, statement, "SessionNotOnOrAfter")? {
            session_not_after = Some(t);
            break;
        }
    }
    let expires_at = not_after.unwrap_or(now).max(now) + CLOCK_SKEW;
    Ok(Assertion {
        id,
        expires_at,
        name_id,
        attributes,
        session_not_after,
    })
}

fn check_in_response_to(given: Option<&str>, expected: Option<&str>) -> Result<(), String> {
    match (given, expected) {
        (Some(g), Some(e)) if g == e => Ok(()),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err("InResponseTo does not match the request".into()),
        (Some(_), None) => Err("an IdP-initiated Response must not carry InResponseTo".into()),
    }
}

fn time(doc: &Document<'_>, node: NodeId, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    match xml::attr(doc, node, name) {
        None => Ok(None),
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| format!("{name} is not a timestamp")),
    }
}

impl Assertion {
    /// Every value of the attribute called `name` (by Name or FriendlyName, any case).
    fn attribute(&self, name: &str) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|(n, f, _)| {
                n.eq_ignore_ascii_case(name)
                    || f.as_deref().is_some_and(|f| f.eq_ignore_ascii_case(name))
            })
            .flat_map(|(_, _, v)| v.iter().map(String::as_str))
            .collect()
    }

    /// The stable user identifier: the `subject-id` attribute, else a non-transient NameID.
    pub fn user_id(&self) -> Option<String> {
        if let Some(v) = self.attribute(SUBJECT_ID).first() {
            return Some((*v).to_owned());
        }
        let (value, format) = self.name_id.as_ref()?;
        if value.is_empty() {
            return None;
        }
        match format.as_deref() {
            Some(EMAIL_FORMAT) => Some(value.trim().to_lowercase()),
            Some(TRANSIENT_FORMAT) => None,
            _ => Some(value.clone()),
        }
    }

    /// The email from the usual attributes, else an email-format NameID.
    pub fn email(&self) -> Option<String> {
        for name in EMAIL_ATTRIBUTES {
            if let Some(v) = self.attribute(name).into_iter().find(|v| !v.is_empty()) {
                return Some(v.to_owned());
            }
        }
        match &self.name_id {
            Some((v, Some(f))) if f == EMAIL_FORMAT && !v.is_empty() => Some(v.clone()),
            _ => None,
        }
    }

    /// The provider's `attribute_mapping` (`{"keys": {claim: {name, names, default, array}}}`)
    /// applied to the attributes.
    pub fn mapped_claims(&self, mapping: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        let keys: BTreeMap<String, Value> = mapping
            .get("keys")
            .and_then(Value::as_object)
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        for (key, mapper) in keys {
            let mut names: Vec<&str> = Vec::new();
            if let Some(n) = mapper
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                names.push(n);
            }
            if let Some(list) = mapper.get("names").and_then(Value::as_array) {
                names.extend(list.iter().filter_map(Value::as_str));
            }
            let array = mapper
                .get("array")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut set = false;
            for name in names {
                let values: Vec<&str> = self
                    .attribute(name)
                    .into_iter()
                    .filter(|v| !v.is_empty())
                    .collect();
                if values.is_empty() {
                    continue;
                }
                set = true;
                out.insert(
                    key.clone(),
                    if array {
                        json!(values)
                    } else {
                        json!(values[0])
                    },
                );
                break;
            }
            if !set {
                if let Some(default) = mapper.get("default").filter(|d| !d.is_null()) {
                    out.insert(key.clone(), default.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::{validate, Expect};
    use crate::sso::xml;

    const ACS: &str = "https://sp.test/sso/saml/acs";
    const SP: &str = "https://sp.test/sso/saml/metadata";
    const IDP: &str = "https://idp.test";

    struct Doc {
        audience: &'static str,
        recipient: &'static str,
        in_response_to: Option<&'static str>,
        not_on_or_after: DateTime<Utc>,
        issued: DateTime<Utc>,
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn good() -> Doc {
        Doc {
            audience: SP,
            recipient: ACS,
            in_response_to: Some("id-1"),
            not_on_or_after: now() + Duration::minutes(5),
            issued: now(),
        }
    }

    fn render(d: &Doc) -> String {
        let irt = d
            .in_response_to
            .map(|r| format!(r#" InResponseTo="{r}""#))
            .unwrap_or_default();
        let t = |x: DateTime<Utc>| x.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="r" Version="2.0" IssueInstant="{issued}" Destination="{ACS}"{irt}><saml:Issuer>{IDP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="a1" Version="2.0" IssueInstant="{issued}"><saml:Issuer>{IDP}</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">Ann@Idp.Test</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{recipient}"{irt}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{issued}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AttributeStatement><saml:Attribute Name="groups"><saml:AttributeValue>a</saml:AttributeValue><saml:AttributeValue>b</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"#,
            issued = t(d.issued),
            until = t(d.not_on_or_after),
            recipient = d.recipient,
            audience = d.audience,
        )
    }

    fn run(d: &Doc, request_id: Option<&str>) -> Result<super::Assertion, String> {
        let text = render(d);
        let doc = xml::parse(&text).unwrap();
        let root = doc.document_element().unwrap();
        let assertion = xml::child(&doc, root, xml::SAML, "Assertion").unwrap();
        let expect = Expect {
            idp_entity_id: IDP,
            sp_entity_id: SP,
            acs_url: ACS,
            request_id,
            now: now(),
        };
        validate(&doc, root, assertion, &expect)
    }

    #[test]
    fn a_good_response_yields_the_user() {
        let a = run(&good(), Some("id-1")).unwrap();
        assert_eq!(a.id, "a1");
        assert_eq!(a.user_id().as_deref(), Some("ann@idp.test"));
        assert_eq!(a.email().as_deref(), Some("Ann@Idp.Test"));
        let mapping = serde_json::json!({"keys": {"g": {"name": "groups", "array": true}, "d": {"name": "x", "default": 1}}});
        let claims = a.mapped_claims(&mapping);
        assert_eq!(claims["g"], serde_json::json!(["a", "b"]));
        assert_eq!(claims["d"], serde_json::json!(1));
    }

    #[test]
    fn wrong_audience_recipient_request_and_times_are_refused() {
        assert!(run(
            &Doc {
                audience: "https://other.test",
                ..good()
            },
            Some("id-1")
        )
        .is_err());
        assert!(run(
            &Doc {
                recipient: "https://other.test/acs",
                ..good()
            },
            Some("id-1")
        )
        .is_err());
        assert!(
            run(&good(), Some("id-2")).is_err(),
            "InResponseTo of another request"
        );
        assert!(
            run(&good(), None).is_err(),
            "IdP-initiated with InResponseTo"
        );
        assert!(run(
            &Doc {
                in_response_to: None,
                ..good()
            },
            None
        )
        .is_ok());
        let expired = Doc {
            not_on_or_after: now() - Duration::minutes(4),
            ..good()
        };
        assert!(run(&expired, Some("id-1")).is_err());
        let within_skew = Doc {
            not_on_or_after: now() - Duration::minutes(2),
            ..good()
        };
        assert!(
            run(&within_skew, Some("id-1")).is_ok(),
            "180 s of clock skew"
        );
        let future = Doc {
            issued: now() + Duration::minutes(10),
            ..good()
        };
        assert!(run(&future, Some("id-1")).is_err());
        let stale = Doc {
            issued: now() - Duration::minutes(10),
            ..good()
        };
        assert!(run(&stale, Some("id-1")).is_err());
    }
}
