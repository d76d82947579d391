//! The OpenAPI 2.0 document of an exposed schema (`GET /`), in PostgREST's outline: one path
//! per table and function, one definition per table with its columns.

use serde_json::{json, Map, Value};

use super::SchemaCache;

/// What a document shows beyond the schema: which tables and functions (those the request's
/// role may use, under `PGRST_OPENAPI_MODE=follow-privileges`) and where the API is served.
#[derive(Debug, Default)]
pub struct OpenApiView {
    /// Names of the tables and functions to list; all of them when `None`.
    pub tables: Option<std::collections::HashSet<String>>,
    pub functions: Option<std::collections::HashSet<String>>,
    /// `(scheme, host:port, basePath)` from `PGRST_OPENAPI_SERVER_PROXY_URI`.
    pub server: Option<(String, String, String)>,
}

impl SchemaCache {
    /// The document for `schema`, every table and function listed.
    pub fn openapi(&self, schema: &str) -> Value {
        self.openapi_with(schema, &OpenApiView::default())
    }

    /// The document for `schema` as `view` shows it.
    pub fn openapi_with(&self, schema: &str, view: &OpenApiView) -> Value {
        let shown = |set: &Option<std::collections::HashSet<String>>, name: &str| {
            set.as_ref().is_none_or(|s| s.contains(name))
        };
        let mut paths = Map::new();
        let mut definitions = Map::new();
        paths.insert("/".into(), json!({"get": {"produces": ["application/openapi+json", "application/json"], "responses": {"200": {"description": "OK"}}}}));
        let mut tables: Vec<_> = self
            .tables
            .values()
            .filter(|t| t.schema == schema && shown(&view.tables, &t.name))
            .collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        for t in tables {
            let mut properties = Map::new();
            for c in &t.columns {
                let mut p = json!({"format": c.data_type, "type": json_type(&c.type_name)});
                if let Some(d) = &c.default {
                    p["default"] = Value::String(d.clone());
                }
                if t.primary_key.contains(&c.name) {
                    p["description"] = "Note:\nThis is a Primary Key.<pk/>".into();
                }
                properties.insert(c.name.clone(), p);
            }
            let required: Vec<&str> = t
                .columns
                .iter()
                .filter(|c| !c.nullable && c.default.is_none())
                .map(|c| c.name.as_str())
                .collect();
            definitions.insert(
                t.name.clone(),
                json!({"type": "object", "required": required, "properties": properties}),
            );
            let ok = json!({"responses": {"200": {"description": "OK"}}, "tags": [t.name]});
            let mut ops = json!({"get": ok, "post": ok, "patch": ok, "delete": ok});
            if t.is_view {
                ops = json!({"get": ok});
            }
            paths.insert(format!("/{}", t.name), ops);
        }
        let mut functions: Vec<_> = self
            .functions
            .iter()
            .filter(|((s, n), _)| s == schema && shown(&view.functions, n))
            .map(|((_, n), _)| n)
            .collect();
        functions.sort();
        for name in functions {
            let ok = json!({"responses": {"200": {"description": "OK"}}, "tags": ["(rpc) ".to_owned() + name]});
            paths.insert(format!("/rpc/{name}"), json!({"get": ok, "post": ok}));
        }
        let mut doc = json!({
            "swagger": "2.0",
            "info": {"title": "craftbase REST API", "version": env!("CARGO_PKG_VERSION")},
            "basePath": "/",
            "schemes": ["http"],
            "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
            "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
            "paths": paths,
            "definitions": definitions,
        });
        if let Some((scheme, host, base)) = &view.server {
            doc["schemes"] = json!([scheme]);
            doc["host"] = json!(host);
            doc["basePath"] = json!(base);
        }
        doc
    }
}

fn json_type(type_name: &str) -> &'static str {
    match type_name {
        "int2" | "int4" | "int8" => "integer",
        "float4" | "float8" | "numeric" => "number",
        "bool" => "boolean",
        "json" | "jsonb" => "object",
        t if t.starts_with('_') => "array",
        _ => "string",
    }
}
