//! Nodes of a cluster on one database create the same probe function at the same moment (the
//! first change of a table reaches every node at once): each must succeed. Two concurrent
//! `create or replace function` of one name fail with a unique violation, which withheld that
//! change from every subscriber of the losing node until `Catalog::ensure_function` took a lock.

use std::sync::Arc;

use craftbase_realtime::changes::catalog::Catalog;
use craftbase_shared::pool;
use craftbase_testkit::TestDb;

#[tokio::test]
async fn many_nodes_create_one_probe_function_at_once() {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    for round in 0..5 {
        let name: Arc<str> = format!("craftbase_probe_race_{round}").into();
        let ddl = format!(
            "create or replace function realtime.\"{name}\"() returns int language sql as $$ select {round} $$;"
        );
        // One catalog (and pool) per simulated node.
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let catalog = Catalog::new(pool::build(db.config("postgres"), 1));
                let (name, ddl) = (name.clone(), ddl.clone());
                tokio::spawn(async move { catalog.ensure_function(&name, &ddl).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().expect("every node creates the function");
        }
    }
}
