//! Who `policy explain` acts as: `anon`, `service_role`, a user id (claims as auth would sign
//! them for that user) or a claims object; the role and the `request.jwt.claims` to set.

use anyhow::Context;
use serde_json::{json, Value};

/// A role and its claims.
#[derive(Debug, Clone)]
pub struct Subject {
    pub role: String,
    pub claims: Value,
}

/// Reads `--as`: `anon`, `service_role`, a user's UUID, or a JSON object of claims.
pub async fn resolve<C: tokio_postgres::GenericClient + Sync>(
    client: &C,
    given: &str,
) -> anyhow::Result<Subject> {
    let given = given.trim();
    if given == "anon" || given == "service_role" {
        return Ok(Subject {
            role: given.to_owned(),
            claims: json!({ "role": given }),
        });
    }
    if given.starts_with('{') {
        let claims: Value = serde_json::from_str(given).context("--as is not a JSON object")?;
        let role = claims["role"]
            .as_str()
            .unwrap_or("authenticated")
            .to_owned();
        return Ok(Subject { role, claims });
    }
    let id = uuid::Uuid::parse_str(given)
        .context("--as takes anon, service_role, a user id or a JSON object of claims")?;
    let row = client
        .query_opt(
            "select coalesce(role, 'authenticated'), coalesce(aud, 'authenticated'), email, phone,
                    coalesce(raw_app_meta_data, '{}')::text, coalesce(raw_user_meta_data, '{}')::text,
                    coalesce(is_anonymous, false)
               from auth.users where id = $1::text::uuid",
            &[&id.to_string()],
        )
        .await
        .context("cannot read auth.users")?
        .ok_or_else(|| anyhow::anyhow!("no user {id} in auth.users"))?;
    let role: String = row.get(0);
    let parse = |s: String| serde_json::from_str::<Value>(&s).unwrap_or_else(|_| json!({}));
    Ok(Subject {
        claims: json!({
            "sub": id.to_string(),
            "role": role,
            "aud": row.get::<_, String>(1),
            "email": row.get::<_, Option<String>>(2).unwrap_or_default(),
            "phone": row.get::<_, Option<String>>(3).unwrap_or_default(),
            "app_metadata": parse(row.get(4)),
            "user_metadata": parse(row.get(5)),
            "is_anonymous": row.get::<_, bool>(6),
            "aal": "aal1",
        }),
        role,
    })
}
