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

pub fn units() -> &'static UnitTable {
    UNITS.get_or_init(|| {
        crate::config::parse_toml(BUILTIN, "config/units.toml").expect("built-in units.toml parses")
    })
}

impl UnitTable {
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
    }
}
