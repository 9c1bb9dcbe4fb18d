//! Readiness of the process's components: each long-running part registers itself, says when it
//! is ready and why not; the process is ready when every registered component is.

use std::collections::BTreeMap;

use super::events::InternalEvent as _;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

#[derive(Debug, Clone)]
struct State {
    ready: bool,
    reason: String,
    since: Instant,
}

static COMPONENTS: LazyLock<Mutex<BTreeMap<String, State>>> = LazyLock::new(Default::default);

fn components() -> std::sync::MutexGuard<'static, BTreeMap<String, State>> {
    COMPONENTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One component's readiness (cheap to clone; all clones set the same entry).
#[derive(Debug, Clone)]
pub struct Component {
    name: String,
}

impl Component {
    /// Register `name`, not ready ("starting") until it says otherwise.
    pub fn register(name: &str) -> Component {
        let c = Component {
            name: name.to_string(),
        };
        c.set(false, "starting");
        c
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ready(&self) {
        self.set(true, "");
    }

    pub fn not_ready(&self, reason: &str) {
        self.set(false, reason);
    }

    pub fn is_ready(&self) -> bool {
        components().get(&self.name).is_some_and(|s| s.ready)
    }

    fn set(&self, ready: bool, reason: &str) {
        let changed = {
            let mut all = components();
            let e = all.entry(self.name.clone()).or_insert_with(|| State {
                ready: !ready,
                reason: String::new(),
                since: Instant::now(),
            });
            let changed = e.ready != ready || e.reason != reason;
            if e.ready != ready {
                e.since = Instant::now();
            }
            e.ready = ready;
            e.reason = reason.to_string();
            changed
        };
        if changed {
            super::events::ComponentReadinessChanged {
                component: &self.name,
                ready,
                reason,
            }
            .emit();
        }
    }

    /// Leave the registry (a component that ended without ending the process).
    pub fn deregister(self) {
        components().remove(&self.name);
    }
}

/// One component in a readiness report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentReport {
    pub component: String,
    pub ready: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Seconds in the current state.
    pub for_secs: u64,
}

/// Whether every registered component is ready, and each one's state.
pub fn report() -> (bool, Vec<ComponentReport>) {
    let all = components();
    let list: Vec<ComponentReport> = all
        .iter()
        .map(|(name, s)| ComponentReport {
            component: name.clone(),
            ready: s.ready,
            reason: s.reason.clone(),
            for_secs: s.since.elapsed().as_secs(),
        })
        .collect();
    (list.iter().all(|c| c.ready), list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_component_is() {
        let a = Component::register("unit-test-health-a");
        let b = Component::register("unit-test-health-b");
        let mine = |r: &[ComponentReport]| {
            r.iter()
                .filter(|c| c.component.starts_with("unit-test-health-"))
                .map(|c| (c.component.clone(), c.ready, c.reason.clone()))
                .collect::<Vec<_>>()
        };
        a.ready();
        let (_, r) = report();
        assert_eq!(
            mine(&r),
            [
                ("unit-test-health-a".into(), true, String::new()),
                ("unit-test-health-b".into(), false, "starting".into())
            ]
        );
        b.ready();
        assert!(a.is_ready() && b.is_ready());
        b.not_ready("Kafka unreachable");
        let (_, r) = report();
        assert_eq!(mine(&r)[1].2, "Kafka unreachable");
        b.deregister();
        a.deregister();
        let (_, r) = report();
        assert!(mine(&r).is_empty());
    }
}
