//! The store watcher against real databases: another handle on the same database stands for
//! another process; the watched handle's writes are this process's (its API tells the hub and
//! the dataflow itself, which these tests do as the API does).

use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;

use dataflow::pipeline::WidgetControl;
use dataflow::widget::WidgetCommand;
use operators::registry::AggregationKind;
use serde_json::{Value, json};
use uuid::Uuid;

use super::testing::{TestStore, on_both_backends};
use super::watch::{Applied, StoreWatcher};
use super::{Backend, Store};
use crate::hub::Hub;
use crate::hub::fixture::{drain, hub};
use crate::model::{Dashboard, FIRST_GENERATION, Widget, WidgetPatch, WidgetUpdate};

on_both_backends!(
    changes_by_another_process_reach_hub_and_dataflow,
    own_changes_are_not_told_twice,
    changes_before_the_first_poll_are_applied,
    a_process_without_dataflow_follows_dashboards,
);

fn widget(metric: &str) -> Widget {
    Widget {
        widget_id: Uuid::new_v4(),
        metric_name: metric.into(),
        aggregation: AggregationKind::Sum,
        window_seconds: 60,
        refresh_interval_seconds: 1,
        filter: BTreeMap::new(),
        display_config: json!({}),
        generation: FIRST_GENERATION,
    }
}

/// This process: a watched store handle, its hub, and what its dataflow was sent.
struct Process {
    watcher: StoreWatcher,
    hub: Hub,
    /// The dataflow's control, as the API holds it too.
    control: WidgetControl,
    commands: Receiver<WidgetCommand>,
}

impl Process {
    fn new(store: &Store, initial: &[Dashboard]) -> Process {
        let (hub, _clock) = hub(1);
        for dashboard in initial {
            hub.set_dashboard(dashboard);
        }
        let (control, commands) = WidgetControl::channel();
        let watcher = StoreWatcher::new(store.clone(), hub.clone(), Some(control.clone()), initial);
        Process {
            watcher,
            hub,
            control,
            commands,
        }
    }

    async fn poll(&mut self) -> Applied {
        self.watcher.poll().await.expect("poll")
    }

    fn commands(&self) -> Vec<WidgetCommand> {
        self.commands.try_iter().collect()
    }
}

fn types(messages: &[Value]) -> Vec<&str> {
    messages.iter().filter_map(|m| m["type"].as_str()).collect()
}

async fn changes_by_another_process_reach_hub_and_dataflow(backend: Backend) {
    let test = TestStore::new(backend).await;
    let other = test.reopen().await;
    let mut process = Process::new(&test.store, &[]);
    assert!(process.poll().await.is_empty(), "nothing to do yet");

    let (a, b) = (widget("a"), widget("b"));
    let created = other
        .create_dashboard("ops", &[a.clone(), b.clone()])
        .await
        .expect("create");
    let applied = process.poll().await;
    assert_eq!((applied.dashboards_set, applied.widgets_upserted), (1, 2));
    assert!(process.hub.contains_dashboard(created.id));
    assert_eq!(
        process.commands(),
        [
            WidgetCommand::Upsert(a.query()),
            WidgetCommand::Upsert(b.query())
        ]
    );
    let mut stream = process.hub.subscribe(created.id);
    assert_eq!(types(&drain(&mut stream)), ["snapshot"]);

    // A query change, a removal and an addition: one `dashboard` message, and the dataflow gets
    // exactly the widgets whose queries changed.
    let c = widget("c");
    let patch = WidgetPatch {
        add: vec![c.clone()],
        update: vec![WidgetUpdate {
            widget_id: a.widget_id,
            window_seconds: Some(30),
            ..WidgetUpdate::default()
        }],
        remove: vec![b.widget_id],
    };
    let patched = other
        .patch_widgets(created.id, &patch)
        .await
        .expect("patch");
    process.poll().await;
    assert_eq!(types(&drain(&mut stream)), ["dashboard", "snapshot"]);
    let a2 = &patched.dashboard.widgets[0];
    assert_eq!(a2.generation, 2);
    let mut commands = process.commands();
    commands.sort_by_key(|c| format!("{c:?}"));
    let mut expected = vec![
        WidgetCommand::Upsert(a2.query()),
        WidgetCommand::Upsert(c.query()),
        WidgetCommand::Remove(b.widget_id),
    ];
    expected.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(commands, expected);

    // A display change is a new definition for clients, nothing for the dataflow.
    let display = WidgetPatch {
        update: vec![WidgetUpdate {
            widget_id: c.widget_id,
            display_config: Some(json!({"chart": "bar"})),
            ..WidgetUpdate::default()
        }],
        ..WidgetPatch::default()
    };
    other
        .patch_widgets(created.id, &display)
        .await
        .expect("patch");
    other
        .rename_dashboard(created.id, "ops 2")
        .await
        .expect("rename");
    let applied = process.poll().await;
    assert_eq!(applied.dashboards_set, 1);
    assert_eq!(types(&drain(&mut stream)), ["dashboard", "snapshot"]);
    assert!(process.commands().is_empty());

    // Nothing changed: nothing told.
    assert!(process.poll().await.is_empty());
    assert!(drain(&mut stream).is_empty());

    other.delete_dashboard(created.id).await.expect("delete");
    let applied = process.poll().await;
    assert_eq!(
        (applied.dashboards_removed, applied.widgets_removed),
        (1, 2)
    );
    assert_eq!(types(&drain(&mut stream)), ["deleted"]);
    assert!(!process.hub.contains_dashboard(created.id));
    let mut removed = process.commands();
    removed.sort_by_key(|c| format!("{c:?}"));
    let mut expected = vec![
        WidgetCommand::Remove(a.widget_id),
        WidgetCommand::Remove(c.widget_id),
    ];
    expected.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(removed, expected);

    other.pool.close().await;
    test.finish().await;
}

async fn own_changes_are_not_told_twice(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = &test.store;
    let mut process = Process::new(store, &[]);
    let control = process.control.clone();

    // What the REST API does: write, then tell the hub and the dataflow.
    let a = widget("a");
    let created = store
        .create_dashboard("ops", std::slice::from_ref(&a))
        .await
        .expect("create");
    process.hub.set_dashboard(&created);
    control.send(WidgetCommand::Upsert(a.query()));
    let mut stream = process.hub.subscribe(created.id);
    drain(&mut stream);
    process.commands();
    assert!(process.poll().await.is_empty());

    let patch = WidgetPatch {
        update: vec![WidgetUpdate {
            widget_id: a.widget_id,
            metric_name: Some("b".into()),
            ..WidgetUpdate::default()
        }],
        ..WidgetPatch::default()
    };
    let outcome = store
        .patch_widgets(created.id, &patch)
        .await
        .expect("patch");
    process.hub.set_dashboard(&outcome.dashboard);
    assert_eq!(types(&drain(&mut stream)), ["dashboard", "snapshot"]);
    assert!(process.poll().await.is_empty(), "the API told them already");
    assert!(
        drain(&mut stream).is_empty(),
        "no second `dashboard` message"
    );

    // Mixed with another process's write: only that one is told.
    let other = test.reopen().await;
    let renamed = store
        .rename_dashboard(created.id, "mine")
        .await
        .expect("rename");
    process.hub.set_dashboard(&renamed);
    let theirs = other
        .create_dashboard("theirs", &[widget("t")])
        .await
        .expect("create");
    drain(&mut stream);
    let applied = process.poll().await;
    assert_eq!((applied.dashboards_set, applied.widgets_upserted), (1, 1));
    assert!(process.hub.contains_dashboard(theirs.id));
    assert!(drain(&mut stream).is_empty());

    store.delete_dashboard(created.id).await.expect("delete");
    process.hub.remove_dashboard(created.id);
    assert!(process.poll().await.is_empty());

    other.pool.close().await;
    test.finish().await;
}

async fn changes_before_the_first_poll_are_applied(backend: Backend) {
    let test = TestStore::new(backend).await;
    let other = test.reopen().await;
    let kept = other
        .create_dashboard("kept", &[widget("k")])
        .await
        .expect("create");
    let gone = other
        .create_dashboard("gone", &[widget("g")])
        .await
        .expect("create");
    // The process starts with what it loads; then another process changes things before the
    // watcher's first poll.
    let initial = test.store.list_dashboards().await.expect("list");
    let mut process = Process::new(&test.store, &initial);
    other.delete_dashboard(gone.id).await.expect("delete");
    let added = other
        .create_dashboard("added", &[widget("n")])
        .await
        .expect("create");

    let applied = process.poll().await;
    assert_eq!(
        (applied.dashboards_set, applied.dashboards_removed),
        (1, 1),
        "the unchanged dashboard is not told again"
    );
    assert!(process.hub.contains_dashboard(kept.id));
    assert!(process.hub.contains_dashboard(added.id));
    assert!(!process.hub.contains_dashboard(gone.id));
    assert_eq!(
        process.commands(),
        [
            WidgetCommand::Upsert(added.widgets[0].query()),
            WidgetCommand::Remove(gone.widgets[0].widget_id)
        ]
    );
    other.pool.close().await;
    test.finish().await;
}

async fn a_process_without_dataflow_follows_dashboards(backend: Backend) {
    let test = TestStore::new(backend).await;
    let other = test.reopen().await;
    let (hub, _clock) = hub(1);
    let mut watcher = StoreWatcher::new(test.store.clone(), hub.clone(), None, &[]);
    let created = other
        .create_dashboard("ops", &[widget("a")])
        .await
        .expect("create");
    let applied = watcher.poll().await.expect("poll");
    assert_eq!(
        applied,
        Applied {
            dashboards_set: 1,
            ..Applied::default()
        }
    );
    assert!(hub.contains_dashboard(created.id));
    other.pool.close().await;
    test.finish().await;
}
