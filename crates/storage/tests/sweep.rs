//! The sweep deletes bytes no row names, keeps the rest, and spares young bytes.

use std::sync::Arc;
use std::time::Duration;

use craftbase_shared::keys::ApiKeys;
use craftbase_shared::{pool, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_storage::{key, sweep, Settings, Storage};
use craftbase_testkit::TestDb;
use object_store::memory::InMemory;
use object_store::ObjectStore;

const SECRET: &str = "storage-test-secret-of-enough-length-0123456789";

#[tokio::test]
async fn orphaned_bytes_are_swept_and_claimed_bytes_kept() {
    let db = TestDb::new(craftbase::migrations::platform).await;
    let admin = db.config("postgres");
    let ctx = ServiceContext {
        db: pool::build(db.config("authenticator"), 2),
        admin: pool::build(admin.clone(), 2),
        admin_conninfo: pool::conninfo(&admin),
        jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
        keys: Arc::new(ApiKeys::mint(SECRET, 1).unwrap()),
        roles: Arc::new(RoleSwitch::new(
            ["anon", "authenticated", "service_role"].map(String::from),
        )),
    };
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let settings = Settings {
        backend: craftbase_storage::settings::Backend::File(None),
        file_size_limit: 1024,
    };
    let s = Storage::new(ctx, store.clone(), settings);
    let sql = db.superuser().await;
    sql.batch_execute(
        "insert into storage.buckets (id, name) values ('b', 'b');
         insert into storage.objects (bucket_id, name, version, metadata)
         values ('b', 'kept/a.txt', '11111111-1111-1111-1111-111111111111', '{}')",
    )
    .await
    .unwrap();
    let kept = key::location("b", "kept/a.txt", "11111111-1111-1111-1111-111111111111");
    let orphan = key::location("b", "kept/a.txt", "22222222-2222-2222-2222-222222222222");
    let stray = key::location("b", "gone.txt", "33333333-3333-3333-3333-333333333333");
    for p in [&kept, &orphan, &stray] {
        store.put(p, "bytes".into()).await.unwrap();
    }

    // Young bytes are spared: an upload may be writing its row right now.
    assert_eq!(
        sweep::sweep(&s, Duration::from_secs(3600)).await.unwrap(),
        0
    );
    assert_eq!(sweep::sweep(&s, Duration::ZERO).await.unwrap(), 2);
    assert!(store.head(&kept).await.is_ok());
    assert!(store.head(&orphan).await.is_err());
    assert!(store.head(&stray).await.is_err());
}
