// Mail templates in Go template syntax through @supabase/supabase-js, with a local SMTP sink:
// a confirmation mail whose language (body and subject) follows the sign-up metadata, a
// template that fails to render and one that fails to parse, both falling back to the
// built-in text as GoTrue's mailer does.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { anonClient, startCraftbase } from './lib/craftbase.mjs';
import { startSmtpSink } from './lib/smtp-sink.mjs';

const PASSWORD = 'correct-horse-battery';
const CONFIRM_TEMPLATE = `
{{- if eq .Data.locale "fr" -}}
<p>Bonjour {{ .Data.name }}, confirmez votre adresse : <a href="{{ .ConfirmationURL }}">confirmer</a> (code {{ .Token }}).</p>
{{- else -}}
<p>Hello {{ .Data.name }}, confirm your address: <a href="{{ .ConfirmationURL }}">confirm</a> (code {{ .Token }}).</p>
{{- end }}
{{ with .Data.tags }}<ul>{{ range $i, $t := . }}<li>{{ $i }}:{{ $t }}</li>{{ end }}</ul>{{ else }}<p>no tags</p>{{ end }}
{{ if and .Token (not .NewEmail) }}<p>for {{ .Email | printf "<%s>" }}</p>{{ end }}
`;
const CONFIRM_SUBJECT = '{{ if eq .Data.locale "fr" }}Confirmez votre inscription{{ else }}Confirm your signup{{ end }}';
/** Parses, but a string has no fields: rendering fails and the built-in text goes out. */
const RECOVERY_TEMPLATE = '<p>{{ .Data.locale.region }}</p>';
/** Does not parse: refused at start, the built-in text goes out. */
const MAGIC_LINK_TEMPLATE = '<p>{{ if .Token }}never closed</p>';

let sink;
let server;
let templateDir;
let seq = 0;
const email = (tag) => `${tag}-${Date.now()}-${seq++}@example.com`;

before(
  async () => {
    sink = await startSmtpSink();
    templateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-go-templates-'));
    const file = async (name, text) => {
      const p = path.join(templateDir, name);
      await fs.writeFile(p, text);
      return p;
    };
    server = await startCraftbase({
      env: {
        GOTRUE_SMTP_HOST: '127.0.0.1',
        GOTRUE_SMTP_PORT: String(sink.port),
        GOTRUE_SMTP_ADMIN_EMAIL: 'auth@craftbase.test',
        GOTRUE_SITE_URL: 'http://localhost:3000',
        GOTRUE_MAILER_AUTOCONFIRM: 'false',
        GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS: '10000',
        GOTRUE_RATE_LIMIT_EMAIL_SENT: '10000',
        GOTRUE_RATE_LIMIT_VERIFY: '10000',
        GOTRUE_MAILER_TEMPLATES_CONFIRMATION: await file('confirm.html', CONFIRM_TEMPLATE),
        GOTRUE_MAILER_SUBJECTS_CONFIRMATION: CONFIRM_SUBJECT,
        GOTRUE_MAILER_TEMPLATES_RECOVERY: await file('recovery.html', RECOVERY_TEMPLATE),
        GOTRUE_MAILER_TEMPLATES_MAGIC_LINK: await file('magic-link.html', MAGIC_LINK_TEMPLATE),
      },
    });
  },
  { timeout: 240_000 },
);

after(
  async () => {
    if (server) await server.stop();
    if (templateDir) await fs.rm(templateDir, { recursive: true, force: true });
    if (sink) await sink.stop();
  },
  { timeout: 60_000 },
);

/** Signs up with metadata and answers the confirmation mail. */
async function signUp(data) {
  const address = email(data.locale ?? 'none');
  const since = sink.messages.length;
  const { error } = await anonClient(server).auth.signUp({ email: address, password: PASSWORD, options: { data } });
  assert.equal(error, null);
  return { address, mail: await sink.next(address, since) };
}

describe('Go template syntax in mail templates', () => {
  test('{{ if eq .Data.locale "fr" }} picks the language of the body and the subject', async () => {
    const { address, mail } = await signUp({ locale: 'fr', name: 'Amelie & Co', tags: ['a', '<b>'] });
    assert.equal(mail.subject, 'Confirmez votre inscription');
    assert.match(mail.text, /<p>Bonjour Amelie &amp; Co, confirmez votre adresse : <a href="http[^"]+\/verify\?token=[0-9a-f]{64}&amp;type=signup[^"]*">confirmer<\/a> \(code \d{6}\)\.<\/p>/);
    assert.doesNotMatch(mail.text, /Hello/);
    assert.match(mail.text, /<ul><li>0:a<\/li><li>1:&lt;b&gt;<\/li><\/ul>/);
    assert.match(mail.text, new RegExp(`<p>for &lt;${address}&gt;</p>`));
    assert.doesNotMatch(mail.text, /\{\{|\}\}/);
    // The mailed code confirms the account.
    const code = mail.text.match(/\(code (\d{6})\)/)[1];
    const { data, error } = await anonClient(server).auth.verifyOtp({ email: address, token: code, type: 'signup' });
    assert.equal(error, null);
    assert.equal(data.user.user_metadata.locale, 'fr');
  });

  test('other locales, and none, get the else branch', async () => {
    for (const data of [{ locale: 'en', name: 'Ada' }, { name: 'Ada' }]) {
      const { mail } = await signUp(data);
      assert.equal(mail.subject, 'Confirm your signup');
      assert.match(mail.text, /<p>Hello Ada, confirm your address: <a href="[^"]+">confirm<\/a> \(code \d{6}\)\.<\/p>/);
      assert.match(mail.text, /<p>no tags<\/p>/);
      assert.doesNotMatch(mail.text, /Bonjour/);
    }
  });

  test('a template that fails to render, or to parse, falls back to the built-in text', async () => {
    const { address, mail } = await signUp({ locale: 'fr', name: 'Ada' });
    const code = mail.text.match(/\(code (\d{6})\)/)[1];
    assert.equal((await anonClient(server).auth.verifyOtp({ email: address, token: code, type: 'signup' })).error, null);

    let since = sink.messages.length;
    assert.equal((await anonClient(server).auth.resetPasswordForEmail(address)).error, null);
    const recovery = await sink.next(address, since);
    assert.match(recovery.text, /reset your password/);
    assert.match(recovery.code, /^\d{6}$/);
    assert.ok(recovery.link);

    since = sink.messages.length;
    const otp = await anonClient(server).auth.signInWithOtp({ email: address, options: { shouldCreateUser: false } });
    assert.equal(otp.error, null);
    const magic = await sink.next(address, since);
    assert.match(magic.text, /sign in/);
    assert.doesNotMatch(magic.text, /never closed/);
    const { error } = await anonClient(server).auth.verifyOtp({ email: address, token: magic.code, type: 'email' });
    assert.equal(error, null);
  });
});
