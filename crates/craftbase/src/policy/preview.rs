//! What `policy explain --realtime` reports (`realtime` builds it, `delivery` renders it): the
//! preview of a row's changes, per subscriber and event.

use serde::Serialize;
use serde_json::Value;

/// A SELECT policy that applies to a role.
#[derive(Debug, Serialize)]
pub struct SelectPolicy {
    pub name: String,
    pub permissive: bool,
    pub expression: String,
}

/// One event for one subscriber.
#[derive(Debug, Serialize)]
pub struct Event {
    /// INSERT, UPDATE or DELETE.
    pub event: &'static str,
    pub delivered: bool,
    /// The row the policies were checked on, as the WAL carries it (text values).
    pub checked_row: Option<Value>,
    /// Per SELECT policy of the subscriber (in order): passed on `checked_row` (`None`: error).
    pub policies: Vec<Option<bool>>,
    /// An UPDATE whose WAL carries the old row: the policies on it.
    pub old_policies: Option<Vec<Option<bool>>>,
    pub reasons: Vec<String>,
    /// The `data` of the `postgres_changes` message the subscriber receives, when delivered.
    pub data: Option<Value>,
}

/// One subscriber's preview.
#[derive(Debug, Serialize)]
pub struct Subscriber {
    pub label: String,
    pub role: String,
    pub claims: Value,
    /// `policies` (its SELECT policies decide), `none_apply` (RLS hides every row), `bypass`
    /// (superuser, BYPASSRLS or the owner) or `off` (RLS is off on the table).
    pub rls: &'static str,
    pub policies: Vec<SelectPolicy>,
    /// Columns the role may not SELECT, left out of every payload.
    pub hidden_columns: Vec<String>,
    pub sees_primary_key: bool,
    pub events: Vec<Event>,
}

/// The preview of a row's changes.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub table: String,
    pub row: Value,
    pub old: Option<Value>,
    /// Whether the table is in the `supabase_realtime` publication.
    pub published: bool,
    /// The events the publication publishes.
    pub publishes: Vec<&'static str>,
    pub rls: bool,
    pub primary_key: Vec<String>,
    /// `default`, `full`, `index` or `nothing`.
    pub replica_identity: &'static str,
    /// What the publication and replica identity mean for delivery.
    pub notes: Vec<String>,
    pub subscribers: Vec<Subscriber>,
}
