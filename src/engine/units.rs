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
    /// District → its towns and streets (full names, e.g. 范罗山街道, 沈巷镇).
    #[serde(default)]
    pub towns: BTreeMap<String, Vec<String>>,
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
    /// Set when the domain is enforced at town/street level: the unit is `<town><town_suffix>`.
    #[serde(default)]
    pub town_suffix: Option<String>,
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
        self.responsible_at(domain, district, &[])
    }

    /// The unit responsible for `domain` in `district` for an issue whose place and texts are
    /// `texts`: the town/street unit when the domain is enforced at that level and a text names one
    /// of the district's towns (the first named, in text order), else as [`Self::responsible`].
    pub fn responsible_at(
        &self,
        domain: Option<&str>,
        district: Option<&str>,
        texts: &[&str],
    ) -> String {
        let units = domain.and_then(|d| self.domain.get(d));
        if let (Some(u), Some(d)) = (units, district)
            && let Some(suffix) = &u.town_suffix
            && let Some(town) = self.town_in(d, texts)
        {
            return format!("{town}{suffix}");
        }
        match (units, district) {
            (Some(u), Some(d)) if self.districts.iter().any(|x| x == d) => {
                format!("{d}{}", u.district_suffix)
            }
            (Some(u), _) => u.city.clone(),
            (None, _) => self.fallback.city.clone(),
        }
    }
}

impl UnitTable {
    /// The first of `district`'s towns that a text names (earliest position in the first text that
    /// names any).
    fn town_in(&self, district: &str, texts: &[&str]) -> Option<&str> {
        let towns = self.towns.get(district)?;
        texts.iter().find_map(|t| {
            towns
                .iter()
                .filter_map(|town| t.find(town.as_str()).map(|at| (at, town.as_str())))
                .min()
                .map(|(_, town)| town)
        })
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
        // Town/street level: domains enforced there, when the text names a town of the district.
        assert_eq!(
            u.responsible_at(
                Some("城市管理"),
                Some("鸠江区"),
                &["", "沈巷镇老街夜市占道经营，清水街道也有"]
            ),
            "沈巷镇综合行政执法队"
        );
        assert_eq!(
            u.responsible_at(
                Some("市场监管"),
                Some("镜湖区"),
                &["赭山街道某超市过期食品"]
            ),
            "赭山街道市场监督管理所"
        );
        // A town of another district, or a domain without town-level enforcement: district level.
        assert_eq!(
            u.responsible_at(Some("城市管理"), Some("镜湖区"), &["沈巷镇占道经营"]),
            "镜湖区城市管理局"
        );
        assert_eq!(
            u.responsible_at(Some("教育培训"), Some("鸠江区"), &["沈巷镇培训机构"]),
            "鸠江区教育局"
        );
        assert!(u.towns.values().map(Vec::len).sum::<usize>() > 50);
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
