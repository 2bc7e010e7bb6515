//! Widget changes into the running dataflow: the handle the HTTP side sends them through, and
//! how worker 0 applies them to its widget input collection.

use std::collections::HashMap;
use std::sync::mpsc;

use differential_dataflow::input::InputSession;
use uuid::Uuid;

use crate::widget::{WidgetCommand, WidgetQuery};

/// Sends widget changes into the running dataflow. Cheap to clone; never blocks.
#[derive(Clone, Debug)]
pub struct WidgetControl {
    sender: mpsc::Sender<WidgetCommand>,
}

impl WidgetControl {
    /// A control whose commands arrive at `receiver`.
    pub fn channel() -> (WidgetControl, mpsc::Receiver<WidgetCommand>) {
        let (sender, receiver) = mpsc::channel();
        (WidgetControl { sender }, receiver)
    }

    /// Queues a widget change; it takes effect at the dataflow's next tick. Changes after the
    /// dataflow stopped are dropped (there is nothing left to change).
    pub fn send(&self, command: WidgetCommand) {
        let _ = self.sender.send(command);
    }
}

/// Applies a widget change to worker 0's widget input.
pub(super) fn apply_command(
    input: &mut InputSession<u64, WidgetQuery, isize>,
    current: &mut HashMap<Uuid, WidgetQuery>,
    command: WidgetCommand,
) {
    match command {
        WidgetCommand::Upsert(query) => {
            if current.get(&query.key.id) == Some(&query) {
                return;
            }
            if let Some(old) = current.insert(query.key.id, query.clone()) {
                input.remove(old);
            }
            input.insert(query);
        }
        WidgetCommand::Remove(id) => {
            if let Some(old) = current.remove(&id) {
                input.remove(old);
            }
        }
    }
}
