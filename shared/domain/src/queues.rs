//! The queues a deployment has, each declared once with its dead-letter policy. Both
//! storage adapters, the test stores and the check of `template.yaml` read these, so a
//! queue cannot be configured one way locally and another way on AWS.
//!
//! Adding a queue (hook deliveries, garbage collection): a variant here, its spec, its
//! resources in `template.yaml` (the contract test names what is missing), and a worker
//! that consumes it.

/// A queue of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    /// Write events (seed 002's envelope), sent after commit; one consumer, the events
    /// worker, dispatches them to every event handler.
    Events,
}

/// How one queue behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: QueueName,
    /// Its name in the embedded store; its dead-letter queue is `<id>-dlq`.
    pub id: &'static str,
    /// Receives after which a message moves to the dead-letter queue (SQS's
    /// `maxReceiveCount`).
    pub max_receives: u32,
    /// How long a received message stays hidden: longer than its consumer may take.
    pub visibility_timeout_secs: u32,
    /// How long the dead-letter queue keeps a message (SQS's maximum, 14 days).
    pub dead_letter_retention_secs: u32,
    /// The variable holding the queue's URL on AWS (set by `template.yaml`).
    pub url_env: &'static str,
    /// The queue's resource in `template.yaml`; its dead-letter queue is
    /// `<stem>DeadLetterQueue` and the alarm on it `<stem>DeadLetterAlarm`, where `<stem>`
    /// is this name without `Queue`.
    pub resource: &'static str,
}

impl QueueSpec {
    /// The dead-letter queue's name in the embedded store.
    pub fn dead_letter_id(&self) -> String {
        format!("{}-dlq", self.id)
    }

    fn stem(&self) -> &'static str {
        self.resource.strip_suffix("Queue").unwrap_or(self.resource)
    }

    /// The dead-letter queue's resource in `template.yaml`.
    pub fn dead_letter_resource(&self) -> String {
        format!("{}DeadLetterQueue", self.stem())
    }

    /// The alarm on the dead-letter queue in `template.yaml`.
    pub fn alarm_resource(&self) -> String {
        format!("{}DeadLetterAlarm", self.stem())
    }
}

const EVENTS: QueueSpec = QueueSpec {
    name: QueueName::Events,
    id: "events",
    max_receives: 5,
    // The events worker's timeout is 120 s; a batch still in hand must not reappear.
    visibility_timeout_secs: 180,
    dead_letter_retention_secs: 14 * 24 * 3600,
    url_env: "ZERODB_EVENTS_QUEUE_URL",
    resource: "EventsQueue",
};

impl QueueName {
    /// Every queue, in declaration order.
    pub const ALL: [QueueName; 1] = [QueueName::Events];

    pub fn spec(self) -> &'static QueueSpec {
        match self {
            QueueName::Events => &EVENTS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_has_its_own_names() {
        let mut seen = std::collections::BTreeSet::new();
        for q in QueueName::ALL {
            let s = q.spec();
            assert_eq!(s.name, q);
            for name in [
                s.id.to_owned(),
                s.dead_letter_id(),
                s.url_env.to_owned(),
                s.resource.to_owned(),
                s.dead_letter_resource(),
                s.alarm_resource(),
            ] {
                assert!(seen.insert(name.clone()), "{name} is used twice");
            }
            assert!(s.max_receives >= 1 && s.visibility_timeout_secs <= 43_200);
        }
    }
}
