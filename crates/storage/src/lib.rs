//! Supabase-Storage-compatible `/storage/v1`: buckets and objects catalogued in the `storage`
//! schema under the caller's RLS, their bytes in an `object_store` (local files or S3).

pub mod bucket;
pub mod caller;
pub mod disk;
pub mod error;
pub mod key;
pub mod object;
pub mod settings;
pub mod signed;
pub mod sweep;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use craftbase_shared::ServiceContext;
use object_store::ObjectStore;

pub use error::StorageError;
pub use settings::{Settings, SettingsError};

/// The `storage` schema: tables, helper functions, RLS on, grants.
pub const SCHEMA_SQL: &str = include_str!("../sql/storage_schema.sql");

/// Storage's platform SQL, in order, with the names craftbase's ledger records them under.
pub const MIGRATIONS: [(&str, &str); 1] = [("craftbase/storage_schema.sql", SCHEMA_SQL)];

/// What the handlers share: the database (as authenticator and as owner), the bytes, settings.
#[derive(Clone)]
pub struct Storage {
    pub ctx: ServiceContext,
    pub store: Arc<dyn ObjectStore>,
    pub settings: Arc<Settings>,
}

impl Storage {
    pub fn new(ctx: ServiceContext, store: Arc<dyn ObjectStore>, settings: Settings) -> Self {
        Self {
            ctx,
            store,
            settings: Arc::new(settings),
        }
    }
}

/// The Storage API's routes, prefix (`/storage/v1`) stripped.
pub fn router(storage: Storage) -> Router {
    use object::{download, list, list_v2, manage, upload};
    Router::new()
        .route("/bucket", get(bucket::list).post(bucket::create))
        .route(
            "/bucket/{id}",
            get(bucket::get).put(bucket::update).delete(bucket::delete),
        )
        .route("/bucket/{id}/empty", post(bucket::empty))
        .route("/object/move", post(manage::move_object))
        .route("/object/copy", post(manage::copy_object))
        .route("/object/list/{bucket}", post(list::list))
        .route("/object/list-v2/{bucket}", post(list_v2::list_v2))
        .route(
            "/object/info/public/{bucket}/{*name}",
            get(manage::info_public),
        )
        .route(
            "/object/info/authenticated/{bucket}/{*name}",
            get(manage::info),
        )
        .route("/object/info/{bucket}/{*name}", get(manage::info))
        .route("/object/public/{bucket}/{*name}", get(download::public))
        .route(
            "/object/authenticated/{bucket}/{*name}",
            get(download::authenticated),
        )
        .route("/object/sign/{bucket}", post(signed::sign_many))
        .route(
            "/object/sign/{bucket}/{*name}",
            get(signed::download).post(signed::sign_one),
        )
        .route(
            "/object/upload/sign/{bucket}/{*name}",
            post(signed::sign_upload).put(signed::upload),
        )
        .route(
            "/object/{bucket}",
            axum::routing::delete(manage::remove_many),
        )
        .route(
            "/object/{bucket}/{*name}",
            get(download::authenticated)
                .post(upload::create)
                .put(upload::update)
                .delete(manage::remove_one),
        )
        // Image transformation (`/render/image/...`) is not built: like storage-api with
        // transforms disabled, its routes do not exist.
        .fallback(not_found)
        .with_state(storage)
}

/// The web framework's 404 that storage-api answers for a route it does not have.
async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({
        "message": format!("Route {method}:{} not found", uri.path()),
        "error": "Not Found",
        "statusCode": 404,
    });
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
