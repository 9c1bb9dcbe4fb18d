//! Field mapping of a feed's record onto the channel's raw shape (`schemas/raw/`): renamed
//! fields (schema drift) map back by alias, unknown fields are kept under `extra`, and a record
//! missing a required field is refused with a reason naming it.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `[fields]` of a connector TOML: raw-shape field → the feed's names for it (first present
/// wins), and the fields a record must have.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FieldMap {
    /// Raw-shape field → source field names, e.g. `content = ["content", "content_text"]`.
    /// Source fields named nowhere here are kept under `extra`. Empty: records pass unchanged.
    pub names: BTreeMap<String, Vec<String>>,
    /// Fields a record must carry (non-empty); without one it goes to the dead-letter topic.
    pub required: Vec<String>,
}

impl FieldMap {
    /// The mapping of a feed's `[fields]` and `required` (board, hotline API). `table` is where
    /// they sit in their file (`""` at the top, `"api."` in `[api]`): a required field that a
    /// non-empty `[fields]` does not map fails naming both.
    pub fn checked(
        table: &str,
        fields: &BTreeMap<String, Vec<String>>,
        required: &[String],
    ) -> anyhow::Result<FieldMap> {
        if let Some(f) = required
            .iter()
            .find(|f| !fields.is_empty() && !fields.contains_key(*f))
        {
            anyhow::bail!("`{table}required` names `{f}`, which `[{table}fields]` does not map");
        }
        Ok(FieldMap {
            names: fields.clone(),
            required: required.to_vec(),
        })
    }

    /// Map one record; the error names the missing field.
    pub fn apply(&self, record: &Value) -> Result<Value, String> {
        let Some(obj) = record.as_object() else {
            return Err("record is not a JSON object".into());
        };
        let mut out = Map::new();
        if self.names.is_empty() {
            out = obj.clone();
        } else {
            let mut used = std::collections::HashSet::new();
            for (field, aliases) in &self.names {
                let names = if aliases.is_empty() {
                    std::slice::from_ref(field)
                } else {
                    aliases.as_slice()
                };
                for n in names {
                    used.insert(n.as_str());
                }
                if let Some(v) = names
                    .iter()
                    .filter_map(|n| obj.get(n))
                    .find(|v| !v.is_null())
                {
                    out.insert(field.clone(), v.clone());
                }
            }
            let extra: Map<String, Value> = obj
                .iter()
                .filter(|(k, _)| !used.contains(k.as_str()) && k.as_str() != "extra")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !extra.is_empty() {
                out.insert("extra".into(), Value::Object(extra));
            }
        }
        for f in &self.required {
            let present = match out.get(f) {
                None | Some(Value::Null) => false,
                Some(Value::String(s)) => !s.trim().is_empty(),
                Some(_) => true,
            };
            if !present {
                return Err(format!("missing required field `{f}`"));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_aliases_keeps_extra_and_names_missing_field() {
        let m = FieldMap {
            names: BTreeMap::from([
                ("id".into(), vec![]),
                (
                    "content".into(),
                    vec!["content".into(), "content_text".into()],
                ),
            ]),
            required: vec!["id".into(), "content".into()],
        };
        let drifted = json!({"id": "A", "content_text": "路灯", "source_system": "v2"});
        assert_eq!(
            m.apply(&drifted).expect("maps"),
            json!({"id": "A", "content": "路灯", "extra": {"source_system": "v2"}})
        );
        assert_eq!(
            m.apply(&json!({"id": "A", "content": "x"})).expect("maps"),
            json!({"id": "A", "content": "x"})
        );
        let err = m
            .apply(&json!({"id": "A", "content": " "}))
            .expect_err("empty");
        assert!(err.contains("`content`"), "{err}");
        assert!(m.apply(&json!([1])).is_err());
        assert_eq!(
            FieldMap::default().apply(&json!({"a": 1})).expect("passes"),
            json!({"a": 1})
        );
    }
}
