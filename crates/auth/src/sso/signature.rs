//! The one function that decides whether a SAML Response is signed by the identity provider,
//! and which `<Assertion>` that signature covers. Everything after it reads only that node.
//!
//! bergshamra-dsig verifies every `<ds:Signature>` in its hardened mode: keys only from the
//! IdP metadata (never from the message's `<KeyInfo>`), references resolved by a duplicate-
//! free ID map, reference targets restricted to the signature's parent, siblings or the
//! document element, and every reference digest computed locally. On top of that this
//! function requires the signature to be *enveloped* in exactly the element it covers — the
//! `<Response>` (covering its one assertion) or the one `<Assertion>` — and refuses the
//! message if any signature in it fails. Moving a signed assertion elsewhere and returning a
//! forged one (signature wrapping) therefore fails: the forged node is not the signed one.

use bergshamra_dsig::{DsigContext, VerifyResult};
use bergshamra_keys::KeysManager;
use uppsala::{Document, NodeId};

use super::xml::{self, SAML, SAMLP};

/// The `<Assertion>` of `doc` (a `samlp:Response`) that a valid signature of the IdP covers.
pub fn signed_assertion(doc: &Document<'_>, idp_certs: &[Vec<u8>]) -> Result<NodeId, String> {
    let root = doc.document_element().ok_or("empty document")?;
    if !xml::is(doc, root, SAMLP, "Response") {
        return Err("not a SAML Response".into());
    }
    if xml::child(doc, root, SAML, "EncryptedAssertion").is_some() {
        return Err("encrypted assertions are not supported".into());
    }
    let assertion = match xml::children(doc, root, SAML, "Assertion").as_slice() {
        [one] => *one,
        [] => return Err("the Response carries no Assertion".into()),
        _ => return Err("the Response carries more than one Assertion".into()),
    };
    if idp_certs.is_empty() {
        return Err("the provider's metadata has no signing certificate".into());
    }
    let mut keys = KeysManager::new();
    for der in idp_certs {
        let key = bergshamra_keys::loader::load_x509_cert_der(der)
            .map_err(|e| format!("the provider's certificate cannot be used: {e}"))?;
        keys.add_key(key);
    }
    let ctx = DsigContext::new(keys);
    let results = bergshamra_dsig::verify::verify_all_document(&ctx, doc)
        .map_err(|e| format!("signature: {e}"))?;
    let mut covered = false;
    for result in results {
        let VerifyResult::Valid {
            signature_node,
            references,
            ..
        } = result
        else {
            return Err("a signature in the Response does not verify".into());
        };
        let parent = doc.parent(signature_node);
        let envelops = |target: NodeId| {
            parent == Some(target)
                && references.len() == 1
                && references[0].digest_verified
                && references[0].resolved_node == Some(target)
        };
        if envelops(root) || envelops(assertion) {
            covered = true;
        } else {
            return Err("a signature in the Response covers neither it nor its Assertion".into());
        }
    }
    if covered {
        Ok(assertion)
    } else {
        Err("the Response is not signed".into())
    }
}

#[cfg(test)]
mod tests {
    //! Fixed documents from the supabase-js suite's test IdP (`tests/supabase-js/lib/saml-idp.mjs`):
    //! signatures do not depend on the time, so they stay valid.
    use base64::Engine;

    use super::signed_assertion;
    use crate::sso::xml;

    fn cert() -> Vec<u8> {
        let b64 = include_str!("testdata/idp-cert.b64").trim();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    fn check(text: &str) -> Result<String, String> {
        let doc = xml::parse(text).unwrap();
        signed_assertion(&doc, &[cert()])
            .map(|node| xml::attr(&doc, node, "ID").unwrap().to_owned())
    }

    #[test]
    fn a_signed_assertion_or_response_is_accepted() {
        assert_eq!(
            check(include_str!("testdata/signed-assertion.xml")).unwrap(),
            "_assertion1"
        );
        assert_eq!(
            check(include_str!("testdata/signed-response.xml")).unwrap(),
            "_assertion1"
        );
    }

    #[test]
    fn unsigned_tampered_and_foreign_signatures_are_refused() {
        let signed = include_str!("testdata/signed-assertion.xml");
        let start = signed
            .find("<ds:Signature")
            .or_else(|| signed.find("<Signature"))
            .unwrap();
        let end = signed
            .find("</Signature>")
            .map(|e| e + "</Signature>".len())
            .or_else(|| {
                signed
                    .find("</ds:Signature>")
                    .map(|e| e + "</ds:Signature>".len())
            })
            .unwrap();
        let unsigned = format!("{}{}", &signed[..start], &signed[end..]);
        assert!(check(&unsigned).is_err());
        assert!(check(include_str!("testdata/tampered.xml")).is_err());
        assert!(check(include_str!("testdata/other-key.xml")).is_err());
        let doc = xml::parse(signed).unwrap();
        assert!(
            signed_assertion(&doc, &[]).is_err(),
            "no certificate, no trust"
        );
    }

    #[test]
    fn a_wrapped_signature_is_refused() {
        let err = check(include_str!("testdata/wrapped.xml")).unwrap_err();
        assert!(!err.is_empty());
    }

    #[test]
    fn two_assertions_are_refused() {
        let signed = include_str!("testdata/signed-assertion.xml");
        let a = &signed[signed.find("<saml:Assertion").unwrap()
            ..signed.rfind("</saml:Assertion>").unwrap() + 17];
        let doubled = signed.replace(
            a,
            &format!("{a}{}", a.replace("_assertion1", "_assertion2")),
        );
        assert!(check(&doubled).is_err());
    }
}
