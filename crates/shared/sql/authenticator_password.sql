-- The password the `authenticator` role logs in with, shared by every craftbase node on this
-- database. Each node generates one in its own data directory; the first node to start keeps
-- its password here and every later node adopts it, so nodes of a cluster on one database do not
-- change the role's password under each other's pools. Readable by the superuser only (the
-- `craftbase` schema grants nothing to other roles).
create table if not exists craftbase.authenticator_password (
  only_row boolean primary key default true check (only_row),
  password text not null
);
revoke all on craftbase.authenticator_password from public;
