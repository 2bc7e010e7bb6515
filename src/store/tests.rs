//! Store round trips against real databases: each test runs on SQLite (in a temporary
//! directory) and on PostgreSQL (a database of its own; see [`super::test_postgres`]).

use std::collections::BTreeMap;

use operators::registry::AggregationKind;
use serde_json::json;
use uuid::Uuid;

use super::testing::{TestStore, on_both_backends};
use super::{Backend, StoreError};
use crate::model::{FIRST_GENERATION, Widget, WidgetPatch, WidgetUpdate};

fn widget(metric: &str) -> Widget {
    Widget {
        widget_id: Uuid::new_v4(),
        metric_name: metric.into(),
        aggregation: AggregationKind::Avg,
        window_seconds: 300,
        refresh_interval_seconds: 2,
        filter: BTreeMap::from([("host".into(), "web-1".into())]),
        display_config: json!({"chart": "line", "grid": [0, 1]}),
        generation: FIRST_GENERATION,
    }
}

on_both_backends!(
    create_get_list_and_reopen,
    unknown_ids_are_not_found,
    rename_keeps_widgets,
    patch_adds_updates_removes_and_bumps_generations,
    failed_patch_changes_nothing,
    duplicate_widget_ids_conflict_and_roll_back,
    delete_cascades_to_widgets,
    revision_counts_committed_writes,
    concurrent_writers_all_commit,
    stores_made_before_the_revision_get_one,
);

async fn create_get_list_and_reopen(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let widgets = vec![widget("cpu"), widget("mem")];
    let created = store
        .create_dashboard("ops", &widgets)
        .await
        .expect("create");
    assert_eq!(created.name, "ops");
    assert_eq!(created.widgets, widgets);
    assert_eq!(created.created_at, created.updated_at);
    let empty = store.create_dashboard("empty", &[]).await.expect("create");

    assert_eq!(store.get_dashboard(created.id).await.expect("get"), created);
    assert_eq!(
        store.list_dashboards().await.expect("list").len(),
        2,
        "both dashboards, the one without widgets too"
    );
    assert_eq!(store.all_widgets().await.expect("all"), widgets);
    assert_eq!(
        store
            .get_widget(created.id, widgets[1].widget_id)
            .await
            .expect("widget"),
        widgets[1]
    );

    let reopened = test.reopen().await;
    let listed = reopened.list_dashboards().await.expect("list");
    assert!(listed.contains(&created) && listed.contains(&empty));
    if let Some(dir) = test.data_dir() {
        assert!(dir.join(super::DATABASE_FILE).exists());
    }
    reopened.pool.close().await;
    test.finish().await;
}

async fn unknown_ids_are_not_found(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let id = Uuid::new_v4();
    assert!(
        matches!(store.get_dashboard(id).await, Err(StoreError::DashboardNotFound(i)) if i == id)
    );
    assert!(matches!(
        store.rename_dashboard(id, "x").await,
        Err(StoreError::DashboardNotFound(_))
    ));
    assert!(matches!(
        store.delete_dashboard(id).await,
        Err(StoreError::DashboardNotFound(_))
    ));
    let patch = WidgetPatch {
        add: vec![widget("cpu")],
        ..WidgetPatch::default()
    };
    assert!(matches!(
        store.patch_widgets(id, &patch).await,
        Err(StoreError::DashboardNotFound(_))
    ));
    let created = store.create_dashboard("d", &[]).await.expect("create");
    let missing = Uuid::new_v4();
    assert!(matches!(
        store.get_widget(created.id, missing).await,
        Err(StoreError::WidgetNotFound { widget, .. }) if widget == missing
    ));
    assert!(store.list_dashboards().await.expect("list").len() == 1);
    test.finish().await;
}

async fn rename_keeps_widgets(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let created = store
        .create_dashboard("old", &[widget("cpu")])
        .await
        .expect("create");
    let renamed = store
        .rename_dashboard(created.id, "new")
        .await
        .expect("rename");
    assert_eq!(renamed.name, "new");
    assert_eq!(renamed.widgets, created.widgets);
    assert!(renamed.updated_at >= created.updated_at);
    assert_eq!(store.get_dashboard(created.id).await.expect("get"), renamed);
    test.finish().await;
}

async fn patch_adds_updates_removes_and_bumps_generations(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let (a, b, c) = (widget("a"), widget("b"), widget("c"));
    let created = store
        .create_dashboard("d", &[a.clone(), b.clone(), c.clone()])
        .await
        .expect("create");
    let added = widget("new");
    let patch = WidgetPatch {
        add: vec![added.clone()],
        update: vec![
            WidgetUpdate {
                widget_id: a.widget_id,
                window_seconds: Some(60),
                ..WidgetUpdate::default()
            },
            WidgetUpdate {
                widget_id: c.widget_id,
                display_config: Some(json!({"chart": "bar"})),
                refresh_interval_seconds: Some(10),
                ..WidgetUpdate::default()
            },
        ],
        remove: vec![b.widget_id],
    };
    let outcome = store
        .patch_widgets(created.id, &patch)
        .await
        .expect("patch");
    let widgets = &outcome.dashboard.widgets;
    let ids: Vec<Uuid> = widgets.iter().map(|w| w.widget_id).collect();
    assert_eq!(
        ids,
        [a.widget_id, c.widget_id, added.widget_id],
        "order kept, new last"
    );
    assert_eq!((widgets[0].window_seconds, widgets[0].generation), (60, 2));
    assert_eq!(
        widgets[1].generation, 1,
        "display changes keep the generation"
    );
    assert_eq!(widgets[1].display_config, json!({"chart": "bar"}));
    assert_eq!(widgets[1].refresh_interval_seconds, 10);
    assert_eq!(outcome.upserted, vec![widgets[0].clone(), added]);
    assert_eq!(outcome.removed, vec![b.widget_id]);
    assert_eq!(
        store.get_dashboard(created.id).await.expect("get"),
        outcome.dashboard
    );

    // Positions continue after the last, even once the first widgets are gone.
    let again = WidgetPatch {
        add: vec![widget("later")],
        remove: vec![a.widget_id],
        ..WidgetPatch::default()
    };
    let outcome = store
        .patch_widgets(created.id, &again)
        .await
        .expect("patch");
    let metrics: Vec<&str> = outcome
        .dashboard
        .widgets
        .iter()
        .map(|w| w.metric_name.as_str())
        .collect();
    assert_eq!(metrics, ["c", "new", "later"]);
    test.finish().await;
}

async fn failed_patch_changes_nothing(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let a = widget("a");
    let created = store
        .create_dashboard("d", std::slice::from_ref(&a))
        .await
        .expect("create");
    let missing = Uuid::new_v4();
    let patch = WidgetPatch {
        add: vec![widget("new")],
        update: vec![WidgetUpdate {
            widget_id: a.widget_id,
            metric_name: Some("changed".into()),
            ..WidgetUpdate::default()
        }],
        remove: vec![missing],
    };
    let result = store.patch_widgets(created.id, &patch).await;
    assert!(matches!(result, Err(StoreError::WidgetNotFound { widget, .. }) if widget == missing));
    assert_eq!(store.get_dashboard(created.id).await.expect("get"), created);

    // A widget of another dashboard is not this dashboard's widget.
    let other = store
        .create_dashboard("other", &[widget("x")])
        .await
        .expect("create");
    let foreign = WidgetPatch {
        remove: vec![other.widgets[0].widget_id],
        ..WidgetPatch::default()
    };
    assert!(matches!(
        store.patch_widgets(created.id, &foreign).await,
        Err(StoreError::WidgetNotFound { .. })
    ));
    assert_eq!(store.get_dashboard(other.id).await.expect("get"), other);
    test.finish().await;
}

async fn duplicate_widget_ids_conflict_and_roll_back(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let a = widget("a");
    assert!(matches!(
        store.create_dashboard("d", &[a.clone(), a.clone()]).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.list_dashboards().await.expect("list").is_empty());
    test.finish().await;
}

async fn delete_cascades_to_widgets(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let kept = store
        .create_dashboard("kept", &[widget("k")])
        .await
        .expect("create");
    let gone = store
        .create_dashboard("gone", &[widget("g1"), widget("g2")])
        .await
        .expect("create");
    let deleted = store.delete_dashboard(gone.id).await.expect("delete");
    assert_eq!(deleted.widgets, gone.widgets);
    assert!(matches!(
        store.get_dashboard(gone.id).await,
        Err(StoreError::DashboardNotFound(_))
    ));
    assert_eq!(store.all_widgets().await.expect("all"), kept.widgets);
    let orphans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM widgets WHERE dashboard_id = $1")
        .bind(gone.id.to_string())
        .fetch_one(&store.pool)
        .await
        .expect("count");
    assert_eq!(orphans, 0);
    test.finish().await;
}

async fn revision_counts_committed_writes(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let start = store.revision().await.expect("revision");
    let a = widget("a");
    let created = store
        .create_dashboard("d", std::slice::from_ref(&a))
        .await
        .expect("create");
    assert_eq!(store.revision().await.expect("revision"), start + 1);

    // Failed and empty writes commit nothing.
    let missing = WidgetPatch {
        remove: vec![Uuid::new_v4()],
        ..WidgetPatch::default()
    };
    assert!(store.patch_widgets(created.id, &missing).await.is_err());
    assert!(store.rename_dashboard(Uuid::new_v4(), "x").await.is_err());
    let empty = WidgetPatch::default();
    store
        .patch_widgets(created.id, &empty)
        .await
        .expect("empty patch");
    assert_eq!(store.revision().await.expect("revision"), start + 1);

    store
        .rename_dashboard(created.id, "e")
        .await
        .expect("rename");
    let add = WidgetPatch {
        add: vec![widget("b")],
        ..WidgetPatch::default()
    };
    store.patch_widgets(created.id, &add).await.expect("patch");
    store.delete_dashboard(created.id).await.expect("delete");
    assert_eq!(store.revision().await.expect("revision"), start + 4);

    // Another handle (another process) sees the same revision.
    let other = test.reopen().await;
    assert_eq!(other.revision().await.expect("revision"), start + 4);
    other.pool.close().await;
    test.finish().await;
}

async fn concurrent_writers_all_commit(backend: Backend) {
    let test = TestStore::new(backend).await;
    let other = test.reopen().await;
    let created = test
        .store
        .create_dashboard("shared", &[])
        .await
        .expect("create");
    let start = test.store.revision().await.expect("revision");
    // Two handles (as two processes would) add widgets to one dashboard at the same time.
    let writes = (0..8).map(|i| {
        let store = if i % 2 == 0 { &test.store } else { &other };
        let patch = WidgetPatch {
            add: vec![widget(&format!("m{i}"))],
            ..WidgetPatch::default()
        };
        async move { store.patch_widgets(created.id, &patch).await }
    });
    for result in futures_util::future::join_all(writes).await {
        result.expect("every concurrent write commits");
    }
    let widgets = test
        .store
        .get_dashboard(created.id)
        .await
        .expect("get")
        .widgets;
    assert_eq!(widgets.len(), 8);
    assert_eq!(test.store.revision().await.expect("revision"), start + 8);
    other.pool.close().await;
    test.finish().await;
}

async fn stores_made_before_the_revision_get_one(backend: Backend) {
    // A database as the first release left it: only the first migration, one dashboard.
    let id = Uuid::new_v4();
    let test = TestStore::prepared(backend, |url| async move {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
        let first = sqlx::migrate::Migrator {
            migrations: super::MIGRATOR.migrations[..1].to_vec().into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        first.run(&pool).await.expect("first migration");
        sqlx::query(
            "INSERT INTO dashboards (id, name, created_at, updated_at) VALUES ($1, 'old', 1, 1)",
        )
        .bind(id.to_string())
        .execute(&pool)
        .await
        .expect("insert");
        pool.close().await;
    })
    .await;
    let store = &test.store;
    assert_eq!(store.revision().await.expect("revision"), 0);
    assert_eq!(store.get_dashboard(id).await.expect("kept").name, "old");
    store.rename_dashboard(id, "new").await.expect("rename");
    assert_eq!(store.revision().await.expect("revision"), 1);
    test.finish().await;
}
