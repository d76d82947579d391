//! The migrations a fresh craftbase applies, read from their SQL files so that these tests build
//! without the other services' crates. Keep in step with `craftbase::migrations::platform_and_app`.

use craftbase_cluster::Migration;

/// Roles, the auth schema, realtime, the gateway's reload trigger, then Tool Connect Craft.
pub fn platform_and_app() -> Vec<Migration> {
    vec![
        Migration::embedded("craftbase/roles.sql", craftbase_shared::ROLES_SQL),
        Migration::embedded(
            "craftbase/auth_schema.sql",
            include_str!("../../auth/sql/auth_schema.sql"),
        ),
        Migration::embedded(
            "craftbase/realtime.sql",
            include_str!("../../realtime/sql/realtime.sql"),
        ),
        Migration::embedded("craftbase/gateway.sql", craftbase_gateway::SCHEMA_SQL),
        Migration::embedded("schema.sql", include_str!("../../../schema.sql")),
        Migration::embedded("policies.sql", include_str!("../../../policies.sql")),
        Migration::embedded("seed.sql", include_str!("../../../seed.sql")),
    ]
}
