//! A small SQL builder: fixed SQL text, identifiers that were checked against the schema cache
//! (always quoted), and values as `$n` parameters sent in text format, so PostgreSQL parses each
//! one with the input function of the type it infers (`?age=gt.30` binds the text `30`).

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, Format, IsNull, ToSql, Type};

/// SQL text and its parameters.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub text: String,
    pub params: Vec<TextParam>,
}

impl Sql {
    /// Appends fixed SQL text; never pass text that came from a request.
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Appends a double-quoted identifier.
    pub fn ident(&mut self, name: &str) -> &mut Self {
        self.text.push_str(&quote_ident(name));
        self
    }

    /// Appends `"schema"."name"`.
    pub fn qualified(&mut self, schema: &str, name: &str) -> &mut Self {
        self.ident(schema).push(".").ident(name)
    }

    /// Appends a parameter holding `value`.
    pub fn param(&mut self, value: impl Into<String>) -> &mut Self {
        self.params.push(TextParam(Some(value.into())));
        let n = self.params.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    /// The parameters with their (inferred) types, for `query_typed`.
    pub fn typed_params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params
            .iter()
            .map(|p| (p as &(dyn ToSql + Sync), Type::UNKNOWN))
            .collect()
    }
}

/// Quotes an identifier, doubling inner quotes.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A parameter sent in text format whatever type the server infers for it.
#[derive(Debug, Clone)]
pub struct TextParam(pub Option<String>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A PostgreSQL array literal (`{"a","b,c"}`) holding `items`.
pub fn array_literal(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_values_are_parameters() {
        let mut sql = Sql::default();
        sql.push("select ")
            .ident("we\"ird")
            .push(" from ")
            .qualified("public", "t")
            .push(" where x = ")
            .param("1; drop table t");
        assert_eq!(
            sql.text,
            "select \"we\"\"ird\" from \"public\".\"t\" where x = $1"
        );
        assert_eq!(sql.params.len(), 1);
        assert_eq!(
            array_literal(&["a".into(), "b,\"c".into()]),
            "{\"a\",\"b,\\\"c\"}"
        );
    }
}
