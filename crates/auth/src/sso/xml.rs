//! The one way SAML XML is read: no DTD (so no entity of any kind, external or expanding), a
//! bounded depth, and small helpers to walk elements by namespace and local name.

use uppsala::{Document, NodeId};

pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Deep enough for metadata and responses, far from what a parser stack minds.
const MAX_DEPTH: u32 = 48;

/// Parses `text`, refusing any `<!DOCTYPE`.
pub fn parse(text: &str) -> Result<Document<'_>, String> {
    uppsala::Parser::new()
        .with_forbid_dtd(true)
        .with_max_depth(MAX_DEPTH)
        .parse(text)
        .map_err(|e| e.to_string())
}

/// Whether `node` is the element `{ns}local`.
pub fn is(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> bool {
    doc.element(node)
        .is_some_and(|e| e.name.local_name == local && e.name.namespace_uri.as_deref() == Some(ns))
}

/// The child elements `{ns}local` of `node`.
pub fn children(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> Vec<NodeId> {
    doc.children(node)
        .into_iter()
        .filter(|c| is(doc, *c, ns, local))
        .collect()
}

/// The first child element `{ns}local` of `node`.
pub fn child(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> Option<NodeId> {
    children(doc, node, ns, local).into_iter().next()
}

/// An attribute of `node`, by unqualified name.
pub fn attr<'d>(doc: &'d Document<'_>, node: NodeId, name: &str) -> Option<&'d str> {
    doc.element(node)?
        .attributes
        .iter()
        .find(|a| a.name.local_name == name && a.name.namespace_uri.is_none())
        .map(|a| &*a.value)
}

/// The trimmed text of `node` and its descendants.
pub fn text(doc: &Document<'_>, node: NodeId) -> String {
    doc.text_content_deep(node).trim().to_owned()
}

/// `s` escaped for an XML attribute value or text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn doctypes_and_entities_are_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert!(super::parse(xxe).is_err());
        let bomb = r#"<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>"#;
        assert!(super::parse(bomb).is_err());
        assert!(super::parse("<r><s/></r>").is_ok());
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
        assert!(super::parse(&deep).is_err());
    }
}
