// A small SAML 2.0 identity provider for the SSO tests: an RSA key and self-signed certificate
// (node-forge), its metadata served over HTTP on loopback, the AuthnRequest read back from the
// HTTP-Redirect URL craftbase hands out, and Responses signed with xml-crypto — correctly, or
// in the broken ways the tests need (unsigned, another key, wrapped, wrong audience, expired).

import crypto from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';

import forge from 'node-forge';
import { SignedXml } from 'xml-crypto';

const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';

/** An RSA key pair and a self-signed certificate, PEM and base64 DER. */
export function makeKeyPair(commonName) {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
  const attrs = [{ name: 'commonName', value: commonName }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  return {
    keyPem: forge.pki.privateKeyToPem(keys.privateKey),
    certPem,
    certB64: certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''),
  };
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const iso = (ms) => new Date(ms).toISOString();
const newId = () => `_${crypto.randomBytes(16).toString('hex')}`;

export class TestIdp {
  constructor() {
    this.signing = makeKeyPair('craftbase test IdP');
    this.server = null;
    this.port = 0;
  }

  async start() {
    this.server = http.createServer((req, res) => {
      if (req.url === '/metadata') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(this.metadata());
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return this;
  }

  async stop() {
    if (this.server) await new Promise((resolve) => this.server.close(resolve));
  }

  get entityId() {
    return `http://127.0.0.1:${this.port}/idp`;
  }

  get ssoUrl() {
    return `http://127.0.0.1:${this.port}/sso`;
  }

  get metadataUrl() {
    return `http://127.0.0.1:${this.port}/metadata`;
  }

  metadata() {
    return `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${esc(this.entityId)}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${this.signing.certB64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${esc(this.ssoUrl)}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${esc(this.ssoUrl)}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`;
  }

  /** The AuthnRequest in an HTTP-Redirect URL: its XML, ID, ACS URL, issuer and relay state. */
  static readRedirect(url) {
    const u = new URL(url);
    const xml = zlib.inflateRawSync(Buffer.from(u.searchParams.get('SAMLRequest'), 'base64')).toString('utf8');
    const attr = (name) => (xml.match(new RegExp(`\\s${name}="([^"]*)"`)) ?? [])[1];
    return {
      url: u,
      xml,
      id: attr('ID'),
      acs: attr('AssertionConsumerServiceURL'),
      destination: attr('Destination'),
      issuer: (xml.match(/<saml:Issuer[^>]*>([^<]*)</) ?? [])[1],
      relayState: u.searchParams.get('RelayState'),
      sigAlg: u.searchParams.get('SigAlg'),
      signature: u.searchParams.get('Signature'),
    };
  }

  /**
   * A Response XML. opts: inResponseTo, acs, audience, nameId, email, attributes ({name: [values]}),
   * notOnOrAfter (ms), notBefore (ms), issuer, assertionId.
   */
  response(opts) {
    const now = Date.now();
    const issuer = opts.issuer ?? this.entityId;
    const assertionId = opts.assertionId ?? newId();
    const notBefore = opts.notBefore ?? now - 60_000;
    const notOnOrAfter = opts.notOnOrAfter ?? now + 5 * 60_000;
    const irt = opts.inResponseTo ? ` InResponseTo="${esc(opts.inResponseTo)}"` : '';
    const attributes = { mail: [opts.email], ...(opts.attributes ?? {}) };
    const attrXml = Object.entries(attributes)
      .map(
        ([name, values]) =>
          `<saml:Attribute Name="${esc(name)}">${values
            .map((v) => `<saml:AttributeValue>${esc(v)}</saml:AttributeValue>`)
            .join('')}</saml:Attribute>`,
      )
      .join('');
    return (
      `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${newId()}" Version="2.0" IssueInstant="${iso(now)}" Destination="${esc(opts.acs)}"${irt}>` +
      `<saml:Issuer>${esc(issuer)}</saml:Issuer>` +
      `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
      this.assertion({ ...opts, issuer, assertionId, notBefore, notOnOrAfter, irt, attrXml, now }) +
      `</samlp:Response>`
    );
  }

  assertion({ issuer, assertionId, notBefore, notOnOrAfter, irt, attrXml, now, acs, audience, nameId }) {
    return (
      `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${assertionId}" Version="2.0" IssueInstant="${iso(now)}">` +
      `<saml:Issuer>${esc(issuer)}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${esc(nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${iso(notOnOrAfter)}" Recipient="${esc(acs)}"${irt}/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions NotBefore="${iso(notBefore)}" NotOnOrAfter="${iso(notOnOrAfter)}"><saml:AudienceRestriction><saml:Audience>${esc(audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${assertionId}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      `<saml:AttributeStatement>${attrXml}</saml:AttributeStatement>` +
      `</saml:Assertion>`
    );
  }

  /** `xml` with an enveloped signature on its Assertion (or its Response), by `keys`. */
  sign(xml, { element = 'Assertion', keys = this.signing } = {}) {
    const sig = new SignedXml({ privateKey: keys.keyPem, publicCert: keys.certPem });
    sig.canonicalizationAlgorithm = EXC_C14N;
    sig.signatureAlgorithm = RSA_SHA256;
    sig.addReference({
      xpath: `//*[local-name(.)='${element}']`,
      transforms: [ENVELOPED, EXC_C14N],
      digestAlgorithm: SHA256,
    });
    sig.computeSignature(xml, {
      location: { reference: `//*[local-name(.)='${element}']/*[local-name(.)='Issuer']`, action: 'after' },
    });
    return sig.getSignedXml();
  }
}
