-- Broadcast replay reads a private topic's newest broadcasts since a time; this index serves that
-- query (topic, then newest first) without scanning the probe and presence rows. Guarded, so the
-- file can be applied again.
create index if not exists messages_replay_idx
    on realtime.messages (topic, inserted_at desc)
    where extension = 'broadcast' and private is true;
