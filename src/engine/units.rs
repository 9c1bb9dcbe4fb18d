//! The enforcement-unit table (config/units.toml): which unit answers for a domain in a district.
//! Loaded once; the built-in copy is compiled in, `[units] path` replaces it.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitTable {
    pub city_prefix: String,
    pub districts: Vec<String>,
    pub domain: BTreeMap<String, DomainUnits>,
    pub fallback: Fallback,
    /// Where each unit's alert notifications are posted.
    #[serde(default)]
    pub webhooks: Webhooks,
}

/// Alert notification webhooks: one URL per unit, and a default for units without one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// URL for units that have none of their own; none: notifications are only logged.
    #[serde(default)]
    pub default: Option<String>,
    /// Unit name → URL.
    #[serde(default)]
    pub unit: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainUnits {
    pub city: String,
    pub district_suffix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    pub city: String,
}

static UNITS: OnceLock<UnitTable> = OnceLock::new();

const BUILTIN: &str = include_str!("../../config/units.toml");

/// Install a unit table (from `[units] path`); the first call wins. Errors name the file.
pub fn install(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let table: UnitTable = match path {
        Some(p) => crate::config::load_toml(p)?,
        None => crate::config::parse_toml(BUILTIN, "config/units.toml (built-in)")?,
    };
    let _ = UNITS.set(table);
    Ok(())
}

/// Read a unit table without installing it (the lifecycle reads its webhooks this way).
pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<UnitTable> {
    match path {
        Some(p) => crate::config::load_toml(p),
        None => crate::config::parse_toml(BUILTIN, "config/units.toml (built-in)"),
    }
}

pub fn units() -> &'static UnitTable {
    UNITS.get_or_init(|| {
        crate::config::parse_toml(BUILTIN, "config/units.toml").expect("built-in units.toml parses")
    })
}

impl UnitTable {
    /// The webhook URL of `unit`'s notifications, if any.
    pub fn webhook(&self, unit: &str) -> Option<&str> {
        self.webhooks
            .unit
            .get(unit)
            .or(self.webhooks.default.as_ref())
            .map(String::as_str)
            .filter(|u| !u.is_empty())
    }

    /// The unit responsible for `domain` in `district`: district level when both are known, city
    /// level when only the domain is, the bureau's triage desk otherwise.
    pub fn responsible(&self, domain: Option<&str>, district: Option<&str>) -> String {
        match (domain.and_then(|d| self.domain.get(d)), district) {
            (Some(u), Some(d)) if self.districts.iter().any(|x| x == d) => {
                format!("{d}{}", u.district_suffix)
            }
            (Some(u), _) => u.city.clone(),
            (None, _) => self.fallback.city.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responsibility_levels() {
        let u = units();
        assert_eq!(u.domain.len(), 10, "ten enforcement domains");
        assert_eq!(
            u.responsible(Some("城市管理"), Some("镜湖区")),
            "镜湖区城市管理局"
        );
        assert_eq!(u.responsible(Some("城市管理"), None), "芜湖市城市管理局");
        assert_eq!(
            u.responsible(Some("unclassified"), Some("镜湖区")),
            u.fallback.city
        );
        let t: UnitTable = crate::config::parse_toml(
            &format!(
                "{}\ndefault = \"http://d/\"\nunit.\"镜湖区城市管理局\" = \"http://j/\"\n",
                BUILTIN
            ),
            "u.toml",
        )
        .expect("webhooks parse");
        assert_eq!(t.webhook("镜湖区城市管理局"), Some("http://j/"));
        assert_eq!(t.webhook("芜湖市公安局"), Some("http://d/"));
        assert_eq!(
            u.webhook("芜湖市公安局"),
            None,
            "none configured by default"
        );
    }
}
