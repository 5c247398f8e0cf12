//! Which trigger conditions hold right now, shared through [`crate::tree::System`], so
//! that a playbook step can wait for the condition that opened its incident to clear
//! (the `wait` action with `until_clear`): load shed under pressure comes back when
//! the pressure ends, not after a fixed time.

use std::collections::HashSet;

use dashmap::DashMap;

/// A condition: trigger, component and failure mode.
pub type ConditionKey = (String, String, String);

/// The conditions each trigger kernel found at its last check, before any `for`
/// window: what holds now, not what has fired.
#[derive(Debug, Default)]
pub struct Conditions {
    by_kernel: DashMap<String, HashSet<ConditionKey>>,
}

impl Conditions {
    /// Records what the trigger kernel `kernel` found at its last check.
    pub fn set(&self, kernel: &str, holding: HashSet<ConditionKey>) {
        if holding.is_empty() {
            self.by_kernel.remove(kernel);
        } else {
            self.by_kernel.insert(kernel.to_owned(), holding);
        }
    }

    /// Whether `trigger` found `failure_mode` on `component` at its last check.
    pub fn holds(&self, trigger: &str, component: &str, failure_mode: &str) -> bool {
        let key = (
            trigger.to_owned(),
            component.to_owned(),
            failure_mode.to_owned(),
        );
        self.by_kernel.iter().any(|e| e.value().contains(&key))
    }

    /// How many conditions hold, over every trigger.
    pub fn len(&self) -> usize {
        self.by_kernel.iter().map(|e| e.value().len()).sum()
    }

    /// Whether none holds.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, c: &str, f: &str) -> ConditionKey {
        (t.to_owned(), c.to_owned(), f.to_owned())
    }

    #[test]
    fn the_last_check_of_each_kernel_replaces_its_conditions() {
        let c = Conditions::default();
        c.set("trigger.a", HashSet::from([key("a", "host", "cpu")]));
        c.set("trigger.b", HashSet::from([key("b", "pool", "backlog")]));
        assert!(c.holds("a", "host", "cpu") && c.holds("b", "pool", "backlog"));
        assert!(!c.holds("a", "host", "memory"));
        c.set("trigger.a", HashSet::new());
        assert!(!c.holds("a", "host", "cpu"));
        assert_eq!(c.len(), 1);
    }
}
