//! Every change the monitor finds goes out three ways: a journal entry with a MESSAGE_ID,
//! a line in the event log, and the `IntegrityViolation` signal — unless dpkg holds alerts.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Inner;
use crate::api::IntegrityState;
use crate::api::message_ids::{INTEGRITY_TAMPERED, INTEGRITY_VIOLATION};
use crate::integrity::log::Event;
use crate::integrity::monitor::Update;
use crate::integrity::{ChangeKind, IntegrityError, Severity, Violation, now};

/// A dpkg hold ends at the latest after this long (alerts are delayed, never dropped).
pub(super) const MAX_HOLD: Duration = Duration::from_secs(3600);

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

impl Event {
    /// An event that is about one path only.
    pub(super) fn about(event: &str, path: impl Into<String>) -> Event {
        Event {
            time: now(),
            event: event.into(),
            path: path.into(),
            kind: String::new(),
            expected: String::new(),
            actual: String::new(),
            set: String::new(),
            severity: String::new(),
        }
    }

    pub(super) fn of_violation(event: &str, v: &Violation) -> Event {
        Event {
            time: v.time,
            event: event.into(),
            path: v.path.clone(),
            kind: v.kind.as_str().into(),
            expected: v.expected.clone(),
            actual: v.actual.clone(),
            set: v.set.clone(),
            severity: v.severity.as_str().into(),
        }
    }
}

impl Inner {
    /// Whether alerts are held for dpkg now; an expired hold is ended and its alerts sent.
    pub(super) fn holding(&self) -> bool {
        let expired = {
            let mut s = self.state();
            match s.hold_until {
                Some(t) if Instant::now() < t => return true,
                Some(_) => {
                    s.hold_until = None;
                    s.hold_snapshot = None;
                    Some(std::mem::take(&mut s.held))
                }
                None => None,
            }
        };
        if let Some(held) = expired {
            tracing::warn!(
                "integrity: the dpkg hold expired without `accept --from-dpkg`; releasing its alerts"
            );
            self.publish_now(held);
        }
        false
    }

    /// Ends holding `held` (an expired hold: nothing was accepted). See [`Inner::release`].
    pub(super) fn publish_now(&self, held: Vec<Violation>) {
        self.release(held, &std::collections::HashSet::new());
    }

    /// What was held while dpkg ran goes out: a path that is a violation now is alerted as
    /// it is now (once); every other held state is journaled and logged (`violation` then
    /// `cleared`) — a change undone before the end, or an intermediate state of a path that
    /// was then accepted (all but its last held state). Nothing held is ever silent.
    pub(super) fn release(
        &self,
        held: Vec<Violation>,
        accepted: &std::collections::HashSet<String>,
    ) {
        let mut by_path: Vec<(String, Vec<Violation>)> = Vec::new();
        for v in held {
            match by_path.iter_mut().find(|(p, _)| *p == v.path) {
                Some((_, states)) => states.push(v),
                None => by_path.push((v.path.clone(), vec![v])),
            }
        }
        let (still, undone) = {
            let s = self.state();
            let now: std::collections::HashMap<&str, &Violation> = s
                .monitor
                .violations()
                .map(|v| (v.path.as_str(), v))
                .collect();
            let (mut still, mut undone) = (Vec::new(), Vec::new());
            for (path, mut states) in by_path {
                if let Some(c) = now.get(path.as_str()) {
                    still.push(Update::Raised((*c).clone()));
                } else {
                    if accepted.contains(&path) {
                        states.pop(); // the state that was accepted
                    }
                    undone.extend(states);
                }
            }
            (still, undone)
        };
        for v in &undone {
            tracing::warn!(
                message_id = INTEGRITY_VIOLATION,
                path = %v.path,
                kind = v.kind.as_str(),
                "integrity: {} was changed ({}) during a dpkg run and changed again before it ended",
                v.path,
                v.kind.as_str()
            );
            self.log_event(Event::of_violation("violation", v));
            self.log_event(Event::about("cleared", v.path.clone()));
        }
        self.publish(still);
    }

    /// Journal, event log and signal for every update. Called on blocking threads only:
    /// sending waits for the bus (backpressure, never loss).
    pub(super) fn publish(&self, updates: Vec<Update>) {
        if updates.is_empty() {
            return;
        }
        let hold = self.holding();
        let tx = self.state().tx.clone();
        for u in updates {
            match u {
                Update::Raised(v) if hold => self.state().held.push(v),
                Update::Raised(v) => {
                    let msg = format!(
                        "integrity violation in {} ({}): {} {}: expected {} actual {}",
                        v.set,
                        v.severity.as_str(),
                        v.path,
                        v.kind.as_str(),
                        dash(&v.expected),
                        dash(&v.actual),
                    );
                    if v.severity >= Severity::High {
                        tracing::error!(message_id = INTEGRITY_VIOLATION, path = %v.path, kind = v.kind.as_str(), set = %v.set, severity = v.severity.as_str(), "{msg}");
                    } else {
                        tracing::warn!(message_id = INTEGRITY_VIOLATION, path = %v.path, kind = v.kind.as_str(), set = %v.set, severity = v.severity.as_str(), "{msg}");
                    }
                    self.log_event(Event::of_violation("violation", &v));
                    if let Some(tx) = &tx {
                        let _ = tx.blocking_send(v);
                    }
                }
                Update::Cleared(path) => self.log_event(Event::about("cleared", path)),
            }
        }
        self.refresh_counts();
    }

    /// Counts and the ok/violations state from the monitor.
    pub(super) fn refresh_counts(&self) {
        let mut s = self.state();
        let n = s.monitor.violation_count() as u32;
        let (entries, created, generation) = s.monitor.baseline.as_ref().map_or((0, 0, 0), |b| {
            (b.entries.len() as u32, b.created, b.generation)
        });
        let i = &mut s.info;
        i.generation = generation;
        i.violations = n;
        i.entries = entries;
        i.baseline_created = created;
        if matches!(i.state, IntegrityState::Ok | IntegrityState::Violations) {
            i.state = if n > 0 {
                IntegrityState::Violations
            } else {
                IntegrityState::Ok
            };
            i.detail = if n > 0 {
                format!("{n} paths differ from the baseline")
            } else {
                String::new()
            };
        }
    }

    /// A baseline that cannot be trusted: an attack on the monitor itself until shown
    /// otherwise. Reported everywhere; nothing is compared against it.
    pub(super) async fn tampered(&self, path: &Path, e: &IntegrityError) {
        let state = match e {
            IntegrityError::Tampered { .. }
            | IntegrityError::KeyMismatch { .. }
            | IntegrityError::Rollback { .. }
            | IntegrityError::Missing { .. } => IntegrityState::Tampered,
            _ => IntegrityState::Error,
        };
        tracing::error!(message_id = INTEGRITY_TAMPERED, path = %path.display(), "integrity baseline not trusted: {e}");
        let tx = {
            let mut s = self.state();
            let _ = s.monitor.set_baseline(None);
            s.info.state = state;
            s.info.detail = e.to_string();
            s.tx.clone()
        };
        let v = Violation {
            path: crate::integrity::pathname::to_wire(path),
            kind: ChangeKind::Modified,
            expected: "a baseline written by hardend (valid MAC)".into(),
            actual: e.to_string(),
            set: "hardend-baseline".into(),
            severity: Severity::Critical,
            time: now(),
        };
        self.log_event(Event::of_violation("tampered", &v));
        if let Some(tx) = tx {
            let _ = tx.send(v).await;
        }
    }
}
