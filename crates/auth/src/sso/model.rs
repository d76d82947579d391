//! An SSO provider as GoTrue stores it (`sso_providers` + `saml_providers` + `sso_domains`)
//! and the JSON the admin API answers with.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::AuthError;

const SELECT: &str = "select p.id, p.resource_id, p.disabled, s.entity_id, s.metadata_xml, \
    s.metadata_url, coalesce(s.attribute_mapping, '{}'::jsonb), s.name_id_format, p.created_at, \
    p.updated_at, coalesce((select array_agg(d.domain order by d.created_at, d.domain) \
      from auth.sso_domains d where d.sso_provider_id = p.id), '{}'), s.updated_at \
    from auth.sso_providers p join auth.saml_providers s on s.sso_provider_id = p.id";

/// One SAML identity provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: Uuid,
    pub resource_id: Option<String>,
    pub disabled: Option<bool>,
    pub entity_id: String,
    pub metadata_xml: String,
    pub metadata_url: Option<String>,
    pub attribute_mapping: Value,
    pub name_id_format: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub domains: Vec<String>,
    /// When the stored metadata was last written (the `saml_providers` row).
    pub metadata_updated_at: Option<DateTime<Utc>>,
}

impl Provider {
    fn from_row(r: &Row) -> Self {
        Provider {
            id: r.get(0),
            resource_id: r.get(1),
            disabled: r.get(2),
            entity_id: r.get(3),
            metadata_xml: r.get(4),
            metadata_url: r.get(5),
            attribute_mapping: r.get(6),
            name_id_format: r.get(7),
            created_at: r.get(8),
            updated_at: r.get(9),
            domains: r.get(10),
            metadata_updated_at: r.get(11),
        }
    }

    async fn one(
        db: &impl GenericClient,
        filter: &str,
        arg: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Option<Self>, AuthError> {
        let sql = format!("{SELECT} where {filter}");
        Ok(db
            .query_opt(&sql, &[arg])
            .await?
            .as_ref()
            .map(Self::from_row))
    }

    pub async fn find(db: &impl GenericClient, id: Uuid) -> Result<Option<Self>, AuthError> {
        Self::one(db, "p.id = $1", &id).await
    }

    pub async fn find_by_resource_id(
        db: &impl GenericClient,
        resource_id: &str,
    ) -> Result<Option<Self>, AuthError> {
        Self::one(db, "lower(p.resource_id) = lower($1)", &resource_id).await
    }

    pub async fn find_by_domain(
        db: &impl GenericClient,
        domain: &str,
    ) -> Result<Option<Self>, AuthError> {
        Self::one(
            db,
            "p.id = (select sso_provider_id from auth.sso_domains where lower(domain) = lower($1))",
            &domain,
        )
        .await
    }

    pub async fn find_by_entity_id(
        db: &impl GenericClient,
        entity_id: &str,
    ) -> Result<Option<Self>, AuthError> {
        Self::one(db, "s.entity_id = $1", &entity_id).await
    }

    /// Every provider, oldest first; `resource_id_prefix` filters as GoTrue's list does.
    pub async fn all(
        db: &impl GenericClient,
        resource_id_prefix: Option<&str>,
    ) -> Result<Vec<Self>, AuthError> {
        let rows = match resource_id_prefix {
            Some(prefix) => {
                let pattern = format!(
                    "{}%",
                    prefix
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                let sql = format!("{SELECT} where p.resource_id like $1 order by p.created_at");
                db.query(&sql, &[&pattern]).await?
            }
            None => {
                let sql = format!("{SELECT} order by p.created_at");
                db.query(&sql, &[]).await?
            }
        };
        Ok(rows.iter().map(Self::from_row).collect())
    }

    /// Whether sign-ins may use it.
    pub fn enabled(&self) -> bool {
        self.disabled != Some(true)
    }

    /// GoTrue's `SSOProvider` JSON; the list leaves the metadata XML out.
    pub fn to_json(&self, with_metadata_xml: bool) -> Value {
        let mut saml = json!({
            "entity_id": self.entity_id,
            "attribute_mapping": self.attribute_mapping,
        });
        if with_metadata_xml {
            saml["metadata_xml"] = json!(self.metadata_xml);
        }
        if let Some(u) = &self.metadata_url {
            saml["metadata_url"] = json!(u);
        }
        if let Some(f) = &self.name_id_format {
            saml["name_id_format"] = json!(f);
        }
        let mut out = json!({
            "id": self.id,
            "disabled": self.disabled,
            "saml": saml,
            "domains": self.domains.iter().map(|d| json!({"domain": d})).collect::<Vec<_>>(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        });
        if let Some(r) = &self.resource_id {
            out["resource_id"] = json!(r);
        }
        out
    }
}
