// A tiny SMTP server for tests: accepts every message on 127.0.0.1 and keeps it, so a test
// can read the mail craftbase sent and follow its link or type its code as a user would.
//
//   const sink = await startSmtpSink();
//   ... GOTRUE_SMTP_HOST=127.0.0.1, GOTRUE_SMTP_PORT=sink.port ...
//   const mail = await sink.waitFor((m) => m.to.includes('a@b.c'));
//   mail.text, mail.link, mail.code
//   await sink.stop();

import net from 'node:net';

/** Decodes a quoted-printable body: the escaped bytes are UTF-8. */
function decodeQuotedPrintable(s) {
  const text = s.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The decoded text of every leaf part of a MIME message, concatenated. */
function decodeBody(raw) {
  const split = raw.indexOf('\r\n\r\n');
  const head = split >= 0 ? raw.slice(0, split) : raw;
  const body = split >= 0 ? raw.slice(split + 4) : '';
  const unfolded = head.replace(/\r\n[ \t]+/g, ' ');
  const header = (name) => unfolded.match(new RegExp(`^${name}:\\s*(.*)$`, 'im'))?.[1] ?? '';
  const type = header('Content-Type');
  const boundary = type.match(/boundary="?([^";]+)"?/i)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    return body
      .split(`--${boundary}`)
      .slice(1)
      .filter((p) => !p.startsWith('--'))
      .map((p) => decodeBody(p.replace(/^\r\n/, '')))
      .join('\n');
  }
  const encoding = header('Content-Transfer-Encoding').toLowerCase();
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

/** Starts the sink on a free port. */
export async function startSmtpSink() {
  const messages = [];
  const waiters = new Set();
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('utf8');
    let buffer = '';
    let inData = false;
    let envelope = { from: '', to: [] };
    const reply = (line) => socket.write(`${line}\r\n`);
    reply('220 sink ESMTP ready');
    socket.on('data', (chunk) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          const raw = buffer.slice(0, end).replace(/^\.\./gm, '.');
          buffer = buffer.slice(end + 5);
          inData = false;
          const text = decodeBody(raw);
          const subject = raw.match(/^Subject:\s*(.*)$/im)?.[1] ?? '';
          const link = text.match(/https?:\/\/[^\s"<>]+\/verify\?[^\s"<>]+/)?.[0]?.replace(/&amp;/g, '&') ?? null;
          const code = text.match(/code: (\d{6,10})/)?.[1] ?? null;
          const mail = { ...envelope, raw, text, subject, link, code };
          messages.push(mail);
          for (const w of waiters) w();
          envelope = { from: '', to: [] };
          reply('250 OK: queued');
          continue;
        }
        const nl = buffer.indexOf('\r\n');
        if (nl < 0) return;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') {
          socket.write('250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n');
        } else if (verb === 'HELO') {
          reply('250 sink');
        } else if (verb === 'MAIL') {
          envelope.from = line.match(/<([^>]*)>/)?.[1] ?? '';
          reply('250 OK');
        } else if (verb === 'RCPT') {
          envelope.to.push(line.match(/<([^>]*)>/)?.[1] ?? '');
          reply('250 OK');
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'QUIT') {
          reply('221 Bye');
          socket.end();
        } else if (verb === 'RSET') {
          envelope = { from: '', to: [] };
          reply('250 OK');
        } else {
          reply('250 OK');
        }
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    messages,
    /** Resolves with the first message matching pred (now or later). */
    waitFor(pred, timeoutMs = 10_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = messages.find(pred);
          if (m) {
            done();
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no matching mail within ${timeoutMs} ms; got: ${messages.map((m) => `${m.to} ${m.subject}`).join('; ')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    /** Resolves with the newest message to `address` received after `since` messages. */
    async next(address, since, timeoutMs) {
      return this.waitFor((m) => messages.indexOf(m) >= since && m.to.includes(address), timeoutMs);
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
