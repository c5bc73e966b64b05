//! What a step changes about the environment it inherits: variables set and variables removed, in order.
//! The last change to a name wins, as it does when the changes are applied to a process.

use std::process::Command;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvDelta(Vec<(String, Option<String>)>);

impl EnvDelta {
    pub fn new() -> EnvDelta {
        EnvDelta::default()
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut EnvDelta {
        self.0.push((name.to_string(), Some(value.into())));
        self
    }

    pub fn unset(&mut self, name: &str) -> &mut EnvDelta {
        self.0.push((name.to_string(), None));
        self
    }

    /// `None`: untouched; `Some(None)`: removed; `Some(Some(v))`: set to `v`.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref())
    }

    /// The value `name` ends up with, if the delta sets it.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    pub fn extend(&mut self, other: &EnvDelta) -> &mut EnvDelta {
        self.0.extend(other.0.iter().cloned());
        self
    }

    /// Each change in order, as (name, `Some(value)` or `None` for removed).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    pub fn apply(&self, cmd: &mut Command) {
        for (name, value) in self.iter() {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_change_wins() {
        let mut env = EnvDelta::new();
        env.set("A", "1")
            .unset("B")
            .set("A", "2")
            .set("B", "3")
            .unset("C");
        assert_eq!(env.get("A"), Some(Some("2")));
        assert_eq!(env.get("B"), Some(Some("3")));
        assert_eq!(env.get("C"), Some(None));
        assert_eq!(env.get("D"), None);
        assert_eq!(env.value("C"), None);
    }
}
