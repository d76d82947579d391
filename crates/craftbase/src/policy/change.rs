//! The sample row's changes for `policy explain --realtime`, made for real in the caller's
//! transaction (which rolls them back) and returned as the WAL would carry them: the values
//! PostgreSQL stored, as text, and the old row cut to the table's replica identity.

use std::sync::Arc;

use craftbase_realtime::preview::{Change, Row, Table};
use deadpool_postgres::{GenericClient, Transaction};
use serde_json::Value;

use super::filter::quote_ident;

/// What the catalog says of the table beyond realtime's `Table`.
pub struct Info {
    pub oid: u32,
    pub published: bool,
    pub publishes: Vec<&'static str>,
    /// `pg_class.relreplident`: d, f, i or n.
    pub identity: char,
    /// The replica identity index's columns (identity `i`).
    pub identity_index: Vec<String>,
    /// Columns the WAL carries (generated columns are not published before PostgreSQL 18).
    pub published_columns: Vec<String>,
}

/// The table `schema.name` as `change` and the preview need it.
pub async fn info<C: GenericClient>(client: &C, schema: &str, name: &str) -> anyhow::Result<Info> {
    let row = client
        .query_opt(
            "select c.oid, c.relreplident::text,
                    exists (select 1 from pg_publication_tables
                             where pubname = 'supabase_realtime' and schemaname = $1 and tablename = $2),
                    coalesce(p.pubinsert, false), coalesce(p.pubupdate, false), coalesce(p.pubdelete, false)
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               left join pg_publication p on p.pubname = 'supabase_realtime'
              where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')",
            &[&schema, &name],
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no table {schema}.{name}"))?;
    let oid: u32 = row.get(0);
    let identity: String = row.get(1);
    let publishes = [(3, "INSERT"), (4, "UPDATE"), (5, "DELETE")]
        .into_iter()
        .filter(|(i, _)| row.get::<_, bool>(*i))
        .map(|(_, e)| e)
        .collect();
    let names = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get(0)).collect();
    let identity_index = names(
        client
            .query(
                "select a.attname::text from pg_index i
                   join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                  where i.indrelid = $1 and i.indisreplident order by a.attnum",
                &[&oid],
            )
            .await?,
    );
    let published_columns = names(
        client
            .query(
                "select attname::text from pg_attribute
                  where attrelid = $1 and attnum > 0 and not attisdropped and attgenerated = ''
                  order by attnum",
                &[&oid],
            )
            .await?,
    );
    Ok(Info {
        oid,
        published: row.get(2),
        publishes,
        identity: identity.chars().next().unwrap_or('d'),
        identity_index,
        published_columns,
    })
}

/// Makes the change of `kind` in the transaction; returns it as the WAL would carry it.
pub async fn change(
    tx: &Transaction<'_>,
    info: &Info,
    table: &Table,
    kind: &'static str,
    row: &Value,
    old: Option<&Value>,
) -> Result<Change, tokio_postgres::Error> {
    let dml = Dml { info, table };
    let (new, old) = match kind {
        "INSERT" => {
            dml.clear(tx, row).await?;
            (Some(dml.put(tx, row, false).await?.1), None)
        }
        "UPDATE" => {
            let (at, before) = dml.put(tx, old.unwrap_or(row), true).await?;
            let after = dml.update(tx, &at, row).await?;
            let old = dml.wal_old(&before, Some(&after));
            (Some(after), old)
        }
        _ => {
            let (at, before) = dml.put(tx, row, true).await?;
            dml.delete(tx, &at).await?;
            (None, dml.wal_old(&before, None))
        }
    };
    Ok(Change {
        table_oid: table.oid,
        kind,
        new,
        old,
    })
}

/// The statements that make a change; identifiers come from the catalog, values are bound.
struct Dml<'a> {
    info: &'a Info,
    table: &'a Table,
}

impl Dml<'_> {
    /// `ctid` and every published column as text, as the WAL prints them.
    fn returning(&self) -> String {
        let q = self.table.qualified();
        let mut list = vec![format!("{q}.ctid::text")];
        for c in &self.info.published_columns {
            list.push(format!("{q}.{}::text", quote_ident(c)));
        }
        list.join(", ")
    }

    fn read(&self, row: &tokio_postgres::Row) -> (String, Row) {
        let values = self
            .info
            .published_columns
            .iter()
            .enumerate()
            .map(|(i, c)| (Arc::from(c.as_str()), row.get::<_, Option<String>>(i + 1)))
            .collect();
        (row.get(0), values)
    }

    fn given(values: &Value) -> Vec<String> {
        values
            .as_object()
            .map(|o| o.keys().map(|k| quote_ident(k)).collect())
            .unwrap_or_default()
    }

    /// Whether `values` name the whole primary key.
    fn keyed(&self, values: &Value) -> bool {
        !self.table.primary_key.is_empty()
            && self
                .table
                .primary_key
                .iter()
                .all(|k| values.get(k.as_str()).is_some())
    }

    /// Deletes the row with the key `values` name, so an INSERT of it is new.
    async fn clear(
        &self,
        tx: &Transaction<'_>,
        values: &Value,
    ) -> Result<(), tokio_postgres::Error> {
        if !self.keyed(values) {
            return Ok(());
        }
        let key: Vec<String> = self
            .table
            .primary_key
            .iter()
            .map(|k| quote_ident(k))
            .collect();
        let sql = format!(
            "delete from {q} where ({k}) = (select {k} from jsonb_populate_record(null::{q}, $1::text::jsonb))",
            q = self.table.qualified(),
            k = key.join(", ")
        );
        tx.execute(&sql, &[&values.to_string()]).await.map(drop)
    }

    /// Inserts `values` (defaults for the rest); with `merge`, a row with the same key is
    /// updated with them instead.
    async fn put(
        &self,
        tx: &Transaction<'_>,
        values: &Value,
        merge: bool,
    ) -> Result<(String, Row), tokio_postgres::Error> {
        let cols = Self::given(values);
        let q = self.table.qualified();
        let sql = if cols.is_empty() {
            format!(
                "insert into {q} default values returning {}",
                self.returning()
            )
        } else {
            let conflict = if merge && self.keyed(values) {
                let key: Vec<String> = self
                    .table
                    .primary_key
                    .iter()
                    .map(|k| quote_ident(k))
                    .collect();
                let set: Vec<String> = cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
                format!(
                    " on conflict ({}) do update set {}",
                    key.join(", "),
                    set.join(", ")
                )
            } else {
                String::new()
            };
            format!(
                "insert into {q} ({c}) select {c} from jsonb_populate_record(null::{q}, $1::text::jsonb){conflict} returning {r}",
                c = cols.join(", "),
                r = self.returning()
            )
        };
        let row = if cols.is_empty() {
            tx.query_one(&sql, &[]).await?
        } else {
            tx.query_one(&sql, &[&values.to_string()]).await?
        };
        Ok(self.read(&row))
    }

    /// Sets `values` on the row at `ctid`.
    async fn update(
        &self,
        tx: &Transaction<'_>,
        ctid: &str,
        values: &Value,
    ) -> Result<Row, tokio_postgres::Error> {
        let q = self.table.qualified();
        let mut set: Vec<String> = Self::given(values)
            .iter()
            .map(|c| format!("{c} = _cb_new.{c}"))
            .collect();
        if let (true, Some(first)) = (set.is_empty(), self.info.published_columns.first()) {
            // No new values: an update that changes nothing still writes a new row version.
            let c = quote_ident(first);
            set.push(format!("{c} = {q}.{c}"));
        }
        let sql = format!(
            "update {q} set {s} from jsonb_populate_record(null::{q}, $1::text::jsonb) as _cb_new
              where {q}.ctid = $2::text::tid returning {r}",
            s = set.join(", "),
            r = self.returning(),
        );
        let row = tx.query_one(&sql, &[&values.to_string(), &ctid]).await?;
        Ok(self.read(&row).1)
    }

    async fn delete(&self, tx: &Transaction<'_>, ctid: &str) -> Result<(), tokio_postgres::Error> {
        let sql = format!(
            "delete from {} where ctid = $1::text::tid",
            self.table.qualified()
        );
        tx.execute(&sql, &[&ctid]).await.map(drop)
    }

    /// The old row as pgoutput carries it under the table's replica identity: FULL, the whole
    /// row; DEFAULT (the primary key) or USING INDEX, those columns, and for an UPDATE only
    /// when one of them changed; NOTHING, none.
    fn wal_old(&self, old: &Row, new: Option<&Row>) -> Option<Row> {
        let key = match self.info.identity {
            'f' => return Some(old.clone()),
            'i' => &self.info.identity_index,
            'n' => return None,
            _ => &self.table.primary_key,
        };
        if key.is_empty() {
            return None;
        }
        let cell = |r: &Row, c: &str| r.iter().find(|(n, _)| &**n == c).map(|(_, v)| v.clone());
        if let Some(new) = new {
            if key.iter().all(|c| cell(old, c) == cell(new, c)) {
                return None;
            }
        }
        Some(
            old.iter()
                .filter(|(n, _)| key.iter().any(|k| k == &**n))
                .cloned()
                .collect(),
        )
    }
}
