//! Hub stream tests: snapshots, dashboard changes and deletion, lagging subscribers, shared
//! serialization, and the ticker.

use serde_json::json;

use super::dashboard::CHANNEL_CAPACITY;
use super::fixture::{T0, batch, dashboard, drain, hub, parse, updates_of, value, widget};
use super::*;

#[test]
fn a_subscription_starts_with_a_snapshot_of_every_widget_in_order() {
    let (hub, clock) = hub(1);
    let (a, b, c) = (widget(1), widget(2), widget(60));
    let d = dashboard(vec![a.clone(), b.clone(), c.clone()]);
    hub.set_dashboard(&d);
    hub.apply(batch(0, T0, vec![value(&b, 2.5, T0)]));
    clock.set(T0 + 3_000);
    let mut sub = hub.subscribe(d.id);
    let messages = drain(&mut sub);
    assert_eq!(
        messages,
        vec![json!({
            "type": "snapshot",
            "dashboard_id": d.id,
            "as_of": T0,
            "widgets": [
                {"widget_id": a.widget_id, "value": null, "as_of": T0, "stale": true},
                {"widget_id": b.widget_id, "value": 2.5, "as_of": T0, "stale": false},
                {"widget_id": c.widget_id, "value": null, "as_of": T0, "stale": false},
            ],
        })]
    );
}

#[test]
fn snapshot_before_any_closed_time_has_null_as_of() {
    let (hub, _clock) = hub(2);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    let snapshot = &drain(&mut sub)[0];
    assert_eq!(snapshot["as_of"], json!(null));
    assert_eq!(snapshot["widgets"][0]["as_of"], json!(null));
}

#[test]
fn update_message_format() {
    let (hub, _clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);
    hub.apply(batch(0, T0 + 1_000, vec![value(&w, 43.5, T0 + 1_000)]));
    assert_eq!(
        drain(&mut sub),
        vec![json!({
            "type": "update",
            "widget_id": w.widget_id,
            "value": 43.5,
            "as_of": T0 + 1_000,
            "stale": false,
        })]
    );
}

#[test]
fn subscribers_share_one_serialized_message() {
    let (hub, _clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut first = hub.subscribe(d.id);
    let mut second = hub.subscribe(d.id);
    let (s1, s2) = (first.try_next(), second.try_next());
    let (Some(s1), Some(s2)) = (s1, s2) else {
        panic!("no snapshots");
    };
    assert!(Arc::ptr_eq(&s1, &s2), "one snapshot serialization");
    hub.apply(batch(0, T0, vec![value(&w, 1.0, T0)]));
    let (Some(u1), Some(u2)) = (first.try_next(), second.try_next()) else {
        panic!("no updates");
    };
    assert!(Arc::ptr_eq(&u1, &u2), "one update serialization");
}

#[test]
fn redefining_a_dashboard_sends_it_then_a_fresh_snapshot() {
    let (hub, _clock) = hub(1);
    let (a, b) = (widget(1), widget(1));
    let mut d = dashboard(vec![a.clone()]);
    hub.set_dashboard(&d);
    hub.apply(batch(0, T0, vec![value(&a, 1.0, T0)]));
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);

    d.name = "ops v2".to_string();
    d.widgets = vec![b.clone(), a.clone()];
    hub.set_dashboard(&d);
    let messages = drain(&mut sub);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        messages[0],
        json!({"type": "dashboard", "dashboard": serde_json::to_value(&d).expect("json")})
    );
    assert_eq!(messages[1]["type"], "snapshot");
    let ids: Vec<_> = messages[1]["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .map(|w| (w["widget_id"].clone(), w["value"].clone()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (json!(b.widget_id), json!(null)),
            (json!(a.widget_id), json!(1.0))
        ]
    );
}

#[tokio::test]
async fn removing_a_dashboard_sends_deleted_and_ends_the_stream() {
    let (hub, _clock) = hub(1);
    let d = dashboard(vec![widget(1)]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);
    hub.remove_dashboard(d.id);
    let deleted = sub.next().await.expect("a deleted message");
    assert_eq!(
        parse(&deleted),
        json!({"type": "deleted", "dashboard_id": d.id})
    );
    assert_eq!(sub.next().await, None, "the stream ended");
    assert!(!hub.contains_dashboard(d.id));
    assert_eq!(hub.widget_snapshot(d.id, d.widgets[0].widget_id), None);
}

#[tokio::test]
async fn subscribing_to_an_unknown_dashboard_yields_deleted() {
    let (hub, _clock) = hub(1);
    let id = Uuid::new_v4();
    let mut sub = hub.subscribe(id);
    let deleted = sub.next().await.expect("a deleted message");
    assert_eq!(
        parse(&deleted),
        json!({"type": "deleted", "dashboard_id": id})
    );
    assert_eq!(sub.next().await, None);
}

/// Makes `count` updates of `w`, one per second (its refresh interval).
fn flood(hub: &Hub, clock: &ManualClock, w: &crate::model::Widget, from: u64, count: u64) {
    for i in 0..count {
        let t = from + 1_000 * i;
        clock.set(t);
        hub.apply(batch(0, t, vec![value(w, i as f64, t)]));
    }
}

#[test]
fn a_lagging_subscriber_gets_a_fresh_snapshot_instead_of_missed_updates() {
    let (hub, clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);

    let count = CHANNEL_CAPACITY as u64 + 10;
    flood(&hub, &clock, &w, T0, count);
    let last = T0 + 1_000 * (count - 1);
    let messages = drain(&mut sub);
    assert_eq!(messages.len(), 1, "only the snapshot, not the backlog");
    assert_eq!(messages[0]["type"], "snapshot");
    assert_eq!(messages[0]["as_of"], json!(last));
    assert_eq!(
        messages[0]["widgets"][0]["value"],
        json!((count - 1) as f64)
    );
    assert_eq!(hub.lagged_subscribers(), 1);

    // Updates flow again after the snapshot.
    clock.set(last + 1_000);
    hub.apply(batch(0, last + 1_000, vec![value(&w, -1.0, last + 1_000)]));
    assert_eq!(updates_of(&drain(&mut sub), &w), vec![(json!(-1.0), false)]);
}

#[test]
fn a_subscriber_that_lagged_across_a_redefinition_gets_the_definition_first() {
    let (hub, clock) = hub(1);
    let w = widget(1);
    let mut d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);

    d.name = "renamed".to_string();
    hub.set_dashboard(&d);
    flood(&hub, &clock, &w, T0, CHANNEL_CAPACITY as u64 + 10);
    let messages = drain(&mut sub);
    let types: Vec<_> = messages.iter().map(|m| m["type"].clone()).collect();
    assert_eq!(types, vec![json!("dashboard"), json!("snapshot")]);
    assert_eq!(messages[0]["dashboard"]["name"], "renamed");
}

#[test]
fn a_snapshot_request_drops_the_backlog() {
    let (hub, clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);
    flood(&hub, &clock, &w, T0, 3);
    sub.resync();
    let messages = drain(&mut sub);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["widgets"][0]["value"], json!(2.0));
    assert_eq!(hub.lagged_subscribers(), 0);
}

#[tokio::test]
async fn the_ticker_sends_held_back_updates_and_stops_on_shutdown() {
    let (hub, clock) = hub(1);
    let w = widget(2);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);
    // A fast real-time ticker (tokio's paused time needs its `test-util` feature); the hub
    // itself reads the manual clock, and the test waits for messages, not for time.
    let ticker = tokio::spawn(hub.clone().run_ticker(Duration::from_millis(5)));

    hub.apply(batch(0, T0, vec![value(&w, 1.0, T0)]));
    clock.set(T0 + 1_000);
    hub.apply(batch(0, T0 + 1_000, vec![value(&w, 2.0, T0 + 1_000)]));
    assert_eq!(updates_of(&drain(&mut sub), &w), vec![(json!(1.0), false)]);

    clock.set(T0 + 2_000);
    let sent = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("the ticker sent the held-back value")
        .expect("the stream is open");
    assert_eq!(updates_of(&[parse(&sent)], &w), vec![(json!(2.0), false)]);

    hub.shutdown();
    tokio::time::timeout(Duration::from_secs(5), ticker)
        .await
        .expect("the ticker stops on shutdown")
        .expect("the ticker does not panic");
}
