// Tool Connect Craft's whole flow, every call made as the app makes it (tool-connect-craft.md):
// two users sign up and sign in through /auth/v1, read the catalogue, connect, run a tool (a job,
// its events, its updates, an action log) through /rest/v1, and watch it live on the app's three
// realtime channels, which supabase-js authorises with the session it got at sign-in. Nothing is
// minted or written behind the client's back: auth, REST and realtime decide together.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { createClient, startCraftbase } from './lib/craftbase.mjs';
import { Inbox, subscribed } from './lib/realtime.mjs';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
const clients = [];

before(async () => {
  cb = await startCraftbase();
}, { timeout: 180_000 });

after(async () => {
  for (const c of clients) await c.removeAllChannels().catch(() => {});
  if (cb) await cb.stop();
}, { timeout: 60_000 });

/** A browser tab of the app: its own supabase-js client and the events it saw. */
async function openApp(key) {
  const supabase = createClient(cb.url, key);
  clients.push(supabase);
  const authEvents = [];
  supabase.auth.onAuthStateChange((event) => authEvents.push(event));
  return { supabase, authEvents };
}

/** The three channels the app opens once signed in. */
async function watch(supabase, uid) {
  const inbox = { jobs: new Inbox(), connections: new Inbox(), events: new Inbox() };
  await subscribed(
    supabase
      .channel('jobs-changes')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'pipeline_jobs', filter: `user_id=eq.${uid}` }, inbox.jobs.push),
  );
  await subscribed(
    supabase
      .channel('connections-changes')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'user_connections', filter: `user_id=eq.${uid}` }, inbox.connections.push),
  );
  await subscribed(
    supabase
      .channel('events-changes')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'pipeline_events' }, inbox.events.push),
  );
  return inbox;
}

/** "Run a tool": the job, its events and updates, and the action log, as the app writes them. */
async function runTool(supabase, uid, connectorId) {
  const started = Date.now();
  const { data: job, error } = await supabase
    .from('pipeline_jobs')
    .insert([{ user_id: uid, connector_id: connectorId, type: 'tool_execution', status: 'queued', input: { query: 'is:unread' } }])
    .select()
    .single();
  assert.equal(error, null);
  assert.equal(job.status, 'queued');
  for (const message of ['Starting list_messages', 'Processing request...', 'list_messages completed']) {
    const { error: e } = await supabase.from('pipeline_events').insert({ job_id: job.id, level: 'info', message, data: { step: message } });
    assert.equal(e, null);
  }
  let r = await supabase.from('pipeline_jobs').update({ status: 'running', started_at: new Date().toISOString() }).eq('id', job.id);
  assert.equal(r.error, null);
  r = await supabase
    .from('pipeline_jobs')
    .update({ status: 'succeeded', output: { messages: 3 }, error: null, finished_at: new Date().toISOString() })
    .eq('id', job.id);
  assert.equal(r.error, null);
  r = await supabase.from('action_logs').insert({
    user_id: uid,
    connector_id: connectorId,
    tool_name: 'list_messages',
    request: { query: 'is:unread' },
    response: { messages: 3 },
    status: 'success',
    latency_ms: Date.now() - started,
  });
  assert.equal(r.error, null);
  return job;
}

// The app as built against the legacy anon key, and as a new Supabase project ships it: with the
// publishable key (api-keys.test.mjs covers the keys themselves).
for (const [label, key] of [
  ['the anon key', () => cb.anonKey],
  ['the publishable key', () => cb.status.publishable_key],
]) {
  test(`two users go through the app's whole flow and never see each other's data (${label})`, () => appFlow(key()));
}

async function appFlow(key) {
  const password = 'correct horse battery staple';
  const alice = await openApp(key);
  const bob = await openApp(key);

  // The landing page reads the active catalogue before anyone signs in.
  const { data: catalogue, error: catErr } = await alice.supabase.from('connectors').select('*').eq('is_active', true).order('name');
  assert.equal(catErr, null);
  assert.equal(catalogue.length, 8);
  assert.deepEqual(catalogue.map((c) => c.name), [...catalogue.map((c) => c.name)].sort());
  const { data: tools } = await alice.supabase.from('connector_tools').select('*');
  assert.equal(tools.length, 10);
  const gmail = catalogue.find((c) => c.slug === 'google-gmail');
  assert.ok(gmail, 'the catalogue has Gmail');

  // Sign-up (auto-confirm, as supabase start) gives a session; Bob signs out and back in.
  const aliceEmail = `alice-${randomUUID()}@example.com`;
  const bobEmail = `bob-${randomUUID()}@example.com`;
  const signUp = await alice.supabase.auth.signUp({ email: aliceEmail, password, options: { emailRedirectTo: 'http://localhost:5173/' } });
  assert.equal(signUp.error, null);
  assert.ok(signUp.data.session, 'auto-confirm returns a session');
  const aliceId = signUp.data.user.id;
  assert.equal((await bob.supabase.auth.signUp({ email: bobEmail, password })).error, null);
  assert.equal((await bob.supabase.auth.signOut()).error, null);
  const signIn = await bob.supabase.auth.signInWithPassword({ email: bobEmail, password });
  assert.equal(signIn.error, null);
  const bobId = signIn.data.user.id;
  assert.notEqual(aliceId, bobId);
  assert.deepEqual(bob.authEvents.filter((e) => e !== 'INITIAL_SESSION'), ['SIGNED_IN', 'SIGNED_OUT', 'SIGNED_IN']);
  const { data: session } = await alice.supabase.auth.getSession();
  assert.equal(session.session.user.email, aliceEmail);

  // Signed in, each opens the app's three channels with their own session.
  const aliceLive = await watch(alice.supabase, aliceId);
  const bobLive = await watch(bob.supabase, bobId);

  // Alice connects Gmail (the app's upsert), then her connections list shows it.
  const connect = await alice.supabase
    .from('user_connections')
    .upsert(
      { user_id: aliceId, connector_id: gmail.id, status: 'active', scopes: gmail.oauth_scopes, updated_at: new Date().toISOString() },
      { onConflict: 'user_id,connector_id' },
    );
  assert.equal(connect.error, null);
  const { data: aliceConnections } = await alice.supabase.from('user_connections').select('*').eq('user_id', aliceId);
  assert.equal(aliceConnections.length, 1);
  assert.equal(aliceConnections[0].status, 'active');

  // Bob cannot connect on Alice's behalf: RLS refuses the row.
  const forged = await bob.supabase.from('user_connections').insert({ user_id: aliceId, connector_id: gmail.id, status: 'active' });
  assert.equal(forged.error?.code, '42501');

  // Alice runs a tool.
  const job = await runTool(alice.supabase, aliceId, gmail.id);

  // Her dashboard reads.
  const { data: jobs } = await alice.supabase.from('pipeline_jobs').select('*').eq('user_id', aliceId).order('created_at', { ascending: false }).limit(50);
  assert.deepEqual(jobs.map((j) => [j.id, j.status]), [[job.id, 'succeeded']]);
  assert.deepEqual(jobs[0].output, { messages: 3 });
  const { data: events } = await alice.supabase.from('pipeline_events').select('*').eq('job_id', job.id).order('ts', { ascending: true });
  assert.deepEqual(events.map((e) => e.message), ['Starting list_messages', 'Processing request...', 'list_messages completed']);
  const { data: logs } = await alice.supabase.from('action_logs').select('*').eq('user_id', aliceId).order('created_at', { ascending: false }).limit(100);
  assert.equal(logs.length, 1);
  assert.equal(typeof logs[0].latency_ms, 'number');

  // Live: Alice saw her connection, her job's whole life (with old rows) and its events.
  const connInsert = await aliceLive.connections.next((m) => m.eventType === 'INSERT');
  assert.equal(connInsert.new.connector_id, gmail.id);
  await aliceLive.jobs.next((m) => m.eventType === 'INSERT' && m.new.id === job.id);
  const finished = await aliceLive.jobs.next((m) => m.eventType === 'UPDATE' && m.new.status === 'succeeded');
  assert.equal(finished.old.status, 'running');
  await aliceLive.events.next(() => aliceLive.events.items.length >= 3);
  assert.deepEqual(aliceLive.events.items.map((m) => m.new.message), events.map((e) => e.message));

  // Bob sees none of it, by REST or live, and cannot change it.
  for (const table of ['user_connections', 'pipeline_jobs', 'pipeline_events', 'action_logs']) {
    const { data, error } = await bob.supabase.from(table).select('*');
    assert.equal(error, null);
    assert.deepEqual(data, [], `${table} is Alice's`);
  }
  const cancel = await bob.supabase.from('pipeline_jobs').update({ status: 'canceled' }).eq('id', job.id).select();
  assert.equal(cancel.error, null);
  assert.deepEqual(cancel.data, [], 'RLS hides the row from the update');
  const { data: still } = await alice.supabase.from('pipeline_jobs').select('status').eq('id', job.id).single();
  assert.equal(still.status, 'succeeded');

  // Disconnect (the app's update), then the row is deleted: Alice's channel carries both, with old.id.
  const conn = aliceConnections[0];
  assert.equal((await alice.supabase.from('user_connections').update({ status: 'revoked', updated_at: new Date().toISOString() }).eq('id', conn.id)).error, null);
  const revoked = await aliceLive.connections.next((m) => m.eventType === 'UPDATE' && m.new.status === 'revoked');
  assert.equal(revoked.old.status, 'active');
  assert.equal((await alice.supabase.from('user_connections').delete().eq('id', conn.id)).error, null);
  const deleted = await aliceLive.connections.next((m) => m.eventType === 'DELETE');
  assert.equal(deleted.old.id, conn.id);

  const leaked = await bobLive.jobs.settle(() => true, 1000);
  assert.deepEqual([...leaked, ...bobLive.events.items, ...bobLive.connections.items], [], 'Bob received nothing of Alice');

  // Sign-out: the app removes its channels, then the session is gone.
  await alice.supabase.removeAllChannels();
  assert.equal((await alice.supabase.auth.signOut()).error, null);
  const { data: after } = await alice.supabase.auth.getSession();
  assert.equal(after.session, null);
  const { data: anonJobs } = await alice.supabase.from('pipeline_jobs').select('*');
  assert.deepEqual(anonJobs, [], 'signed out, the app reads as anon');
}
