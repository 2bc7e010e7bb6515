//! Hub tests: closed time over workers, held updates, generations, throttling, staleness.
//! Time is a manual clock; nothing sleeps.

use dataflow::widget::WidgetKey;
use operators::window_aggregate::WindowChange;
use serde_json::json;

use super::fixture::{T0, batch, dashboard, drain, hub, updates_of, value, widget};
use super::*;

#[test]
fn closed_time_is_the_minimum_over_workers_once_all_reported() {
    let (hub, _clock) = hub(3);
    hub.apply(batch(0, T0 + 2_000, vec![]));
    hub.apply(batch(2, T0 + 1_000, vec![]));
    assert_eq!(hub.closed_time(), None, "worker 1 has not reported");
    hub.apply(batch(1, T0 + 3_000, vec![]));
    assert_eq!(hub.closed_time(), Some(T0 + 1_000));
    hub.apply(batch(2, T0 + 5_000, vec![]));
    assert_eq!(hub.closed_time(), Some(T0 + 2_000));
    // A worker going backwards does not move the closed time back.
    hub.apply(batch(0, T0, vec![]));
    assert_eq!(hub.closed_time(), Some(T0 + 2_000));
}

#[test]
fn updates_wait_until_every_worker_closed_their_time() {
    let (hub, _clock) = hub(2);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);

    hub.apply(batch(0, T0 + 2_000, vec![value(&w, 7.0, T0 + 2_000)]));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!((snap.value, snap.as_of), (None, None), "no closed time yet");

    hub.apply(batch(1, T0 + 1_000, vec![]));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!((snap.value, snap.as_of), (None, Some(T0 + 1_000)), "held");

    hub.apply(batch(1, T0 + 2_000, vec![]));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!((snap.value, snap.as_of), (Some(7.0), Some(T0 + 2_000)));
    assert_eq!(hub.lock().values.held_len(), 0);
}

#[test]
fn held_updates_apply_in_time_order() {
    let (hub, _clock) = hub(2);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    hub.apply(batch(1, T0, vec![]));
    hub.apply(batch(0, T0 + 1_000, vec![value(&w, 1.0, T0 + 1_000)]));
    hub.apply(batch(0, T0 + 2_000, vec![value(&w, 2.0, T0 + 2_000)]));
    hub.apply(batch(1, T0 + 1_000, vec![]));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!(snap.value, Some(1.0), "the value at 2 s is still held");
    hub.apply(batch(1, T0 + 5_000, vec![]));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!((snap.value, snap.as_of), (Some(2.0), Some(T0 + 2_000)));
}

#[test]
fn values_of_other_generations_are_not_shown() {
    let (hub, _clock) = hub(1);
    let mut w = widget(1);
    w.generation = 2;
    let mut d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let old = WidgetKey {
        id: w.widget_id,
        generation: 1,
    };
    let update = |key: WidgetKey, change, as_of| dataflow::sink::WidgetUpdate {
        widget: key,
        change,
        as_of,
    };
    hub.apply(batch(
        0,
        T0,
        vec![update(old, WindowChange::Value(Some(1.0)), T0)],
    ));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!(snap.value, None, "generation 1 is not the widget's");

    hub.apply(batch(0, T0 + 1_000, vec![value(&w, 2.0, T0 + 1_000)]));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!(snap.value, Some(2.0));

    // The query changes: null until the dataflow computed the new generation.
    d.widgets[0].generation = 3;
    hub.set_dashboard(&d);
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!(snap.value, None);
    let gen2 = WidgetKey {
        id: w.widget_id,
        generation: 2,
    };
    let gen3 = WidgetKey {
        id: w.widget_id,
        generation: 3,
    };
    hub.apply(batch(
        0,
        T0 + 2_000,
        vec![
            update(gen2, WindowChange::Removed, T0 + 2_000),
            update(gen3, WindowChange::Value(Some(3.0)), T0 + 2_000),
        ],
    ));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!(snap.value, Some(3.0));
    // A late value of an old generation never replaces the new one.
    hub.apply(batch(
        0,
        T0 + 3_000,
        vec![update(gen2, WindowChange::Value(Some(9.0)), T0 + 3_000)],
    ));
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!(snap.value, Some(3.0));
}

#[test]
fn values_computed_before_the_dashboard_is_known_are_kept() {
    let (hub, _clock) = hub(1);
    let w = widget(1);
    hub.apply(batch(0, T0, vec![value(&w, 4.0, T0)]));
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!(snap.value, Some(4.0));
    assert_eq!(hub.widget_snapshot(d.id, Uuid::new_v4()), None);
    assert_eq!(hub.widget_snapshot(Uuid::new_v4(), w.widget_id), None);
}

#[test]
fn updates_are_sent_at_most_once_per_refresh_interval_latest_value_wins() {
    let (hub, clock) = hub(1);
    let w = widget(5);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    assert_eq!(drain(&mut sub)[0]["type"], "snapshot");

    hub.apply(batch(0, T0, vec![value(&w, 1.0, T0)]));
    let sent = drain(&mut sub);
    assert_eq!(updates_of(&sent, &w), vec![(json!(1.0), false)]);
    assert_eq!(sent[0]["as_of"], json!(T0));

    for (i, v) in [2.0, 3.0].into_iter().enumerate() {
        let t = T0 + 1_000 * (i as u64 + 1);
        clock.set(t);
        hub.apply(batch(0, t, vec![value(&w, v, t)]));
        hub.tick();
    }
    clock.set(T0 + 4_999);
    hub.tick();
    assert_eq!(
        drain(&mut sub),
        Vec::<serde_json::Value>::new(),
        "throttled"
    );

    clock.set(T0 + 5_000);
    hub.tick();
    let sent = drain(&mut sub);
    assert_eq!(updates_of(&sent, &w), vec![(json!(3.0), false)]);
    assert_eq!(sent[0]["as_of"], json!(T0 + 2_000));
}

#[test]
fn arrival_jitter_does_not_hold_back_the_next_seconds_value() {
    let (hub, clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);

    // The value as of T0 reaches the hub 300 ms after T0, the next one only 100 ms after its
    // second: a whole second of data newer, so it goes out at once.
    clock.set(T0 + 300);
    hub.apply(batch(0, T0, vec![value(&w, 1.0, T0)]));
    clock.set(T0 + 1_100);
    hub.apply(batch(0, T0 + 1_000, vec![value(&w, 2.0, T0 + 1_000)]));
    assert_eq!(
        updates_of(&drain(&mut sub), &w),
        vec![(json!(1.0), false), (json!(2.0), false)]
    );

    // Closed times arriving in a burst (catching up) are still spaced by half an interval.
    clock.set(T0 + 1_200);
    hub.apply(batch(0, T0 + 2_000, vec![value(&w, 3.0, T0 + 2_000)]));
    assert_eq!(drain(&mut sub), Vec::<serde_json::Value>::new(), "held");
    clock.set(T0 + 1_600);
    hub.tick();
    assert_eq!(updates_of(&drain(&mut sub), &w), vec![(json!(3.0), false)]);
}

#[test]
fn unchanged_values_are_not_resent() {
    let (hub, clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);
    hub.apply(batch(0, T0, vec![value(&w, 1.0, T0)]));
    assert_eq!(updates_of(&drain(&mut sub), &w).len(), 1);
    for step in 1..=2 {
        let t = T0 + 1_000 * step;
        clock.set(t);
        hub.apply(batch(0, t, vec![value(&w, 1.0, t)]));
        hub.tick();
    }
    assert_eq!(drain(&mut sub), Vec::<serde_json::Value>::new());
}

#[test]
fn staleness_flips_are_sent_both_ways() {
    let (hub, clock) = hub(1);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);
    hub.apply(batch(0, T0, vec![value(&w, 1.0, T0)]));
    drain(&mut sub);

    clock.set(T0 + 2_000);
    hub.tick();
    assert_eq!(
        drain(&mut sub),
        Vec::<serde_json::Value>::new(),
        "2 s is not stale yet"
    );

    clock.set(T0 + 2_001);
    hub.tick();
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert!(snap.stale);
    assert_eq!(updates_of(&drain(&mut sub), &w), vec![(json!(1.0), true)]);
    hub.tick();
    assert_eq!(
        drain(&mut sub),
        Vec::<serde_json::Value>::new(),
        "sent once"
    );

    // The pipeline recovers without the value changing.
    clock.set(T0 + 5_000);
    hub.apply(batch(0, T0 + 5_000, vec![]));
    hub.tick();
    assert_eq!(updates_of(&drain(&mut sub), &w), vec![(json!(1.0), false)]);
}

#[test]
fn widgets_are_stale_without_any_closed_time_once_the_hub_ran_long_enough() {
    let (hub, clock) = hub(2);
    let w = widget(1);
    let d = dashboard(vec![w.clone()]);
    hub.set_dashboard(&d);
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!((snap.as_of, snap.stale), (None, false));
    clock.set(T0 + 2_001);
    let snap = hub
        .widget_snapshot(d.id, w.widget_id)
        .expect("known widget");
    assert_eq!((snap.value, snap.as_of, snap.stale), (None, None, true));
}

#[test]
fn widgets_with_a_window_shorter_than_the_consumer_lag_are_flagged_incomplete() {
    let (hub, clock) = hub(1);
    let short = widget(1); // 60 s window
    let mut long = widget(1);
    long.window_seconds = 3_600;
    let d = dashboard(vec![short.clone(), long.clone()]);
    hub.set_dashboard(&d);
    let mut sub = hub.subscribe(d.id);
    drain(&mut sub);
    hub.apply(batch(
        0,
        T0,
        vec![value(&short, 1.0, T0), value(&long, 2.0, T0)],
    ));
    drain(&mut sub);

    // The consumer falls 90 s behind: the 60 s window misses events, the hour does not.
    hub.set_consumer_lag(90_000);
    clock.set(T0 + 1_000);
    hub.apply(batch(0, T0 + 1_000, vec![]));
    hub.tick();
    let messages = drain(&mut sub);
    let flagged: Vec<&serde_json::Value> = messages
        .iter()
        .filter(|m| m["incomplete"] == true)
        .collect();
    assert_eq!(flagged.len(), 1, "{messages:?}");
    assert_eq!(flagged[0]["widget_id"], json!(short.widget_id));
    let snap = hub.widget_snapshot(d.id, short.widget_id).expect("known");
    assert!(snap.incomplete);
    assert!(
        !hub.widget_snapshot(d.id, long.widget_id)
            .expect("known")
            .incomplete
    );

    // Caught up again: the flag clears, and `incomplete` is left out of messages.
    hub.set_consumer_lag(0);
    clock.set(T0 + 2_000);
    hub.apply(batch(0, T0 + 2_000, vec![]));
    hub.tick();
    let messages = drain(&mut sub);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["widget_id"], json!(short.widget_id));
    assert!(messages[0].get("incomplete").is_none(), "{}", messages[0]);
}
