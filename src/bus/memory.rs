//! The in-process bus: append-only topics in memory, read by offset. For `duban demo` and unit
//! tests only; every capability is also proven on Kafka.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    topics: Arc<Mutex<HashMap<String, Vec<BusRecord>>>>,
}

impl MemoryBus {
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<BusRecord>>> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn send(&self, topic: &str, key: Option<&[u8]>, value: &[u8]) {
        self.lock()
            .entry(topic.to_string())
            .or_default()
            .push(BusRecord {
                key: key.map(<[u8]>::to_vec),
                value: value.to_vec(),
            });
    }

    /// Records of `topic` from offset `from` on.
    pub fn read(&self, topic: &str, from: usize) -> Vec<BusRecord> {
        self.lock()
            .get(topic)
            .map(|v| v.get(from..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    }

    /// Append records to `topic` (moved in, not copied).
    pub fn append(&self, topic: &str, records: Vec<BusRecord>) {
        self.lock()
            .entry(topic.to_string())
            .or_default()
            .extend(records);
    }

    /// Every record of `topic`, moved out: for a stage that consumes the whole topic once (the
    /// in-process drain), so its records are not copied. The topic is empty afterwards.
    pub fn take(&self, topic: &str) -> Vec<BusRecord> {
        self.lock()
            .get_mut(topic)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn len(&self, topic: &str) -> usize {
        self.lock().get(topic).map_or(0, Vec::len)
    }

    pub fn is_empty(&self, topic: &str) -> bool {
        self.len(topic) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_moves_a_topic_out_and_append_adds_in_order() {
        let b = MemoryBus::new();
        b.send("t", None, b"1");
        let rec = |v: &[u8]| BusRecord {
            key: None,
            value: v.to_vec(),
        };
        b.append("t", vec![rec(b"2"), rec(b"3")]);
        let all: Vec<Vec<u8>> = b.take("t").into_iter().map(|r| r.value).collect();
        assert_eq!(all, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
        assert!(b.is_empty("t"));
        assert!(b.take("other").is_empty());
    }

    #[test]
    fn reads_by_offset() {
        let b = MemoryBus::new();
        b.send("t", Some(b"k"), b"1");
        b.send("t", None, b"2");
        assert_eq!(b.len("t"), 2);
        assert_eq!(
            b.read("t", 1),
            vec![BusRecord {
                key: None,
                value: b"2".to_vec()
            }]
        );
        assert!(b.read("t", 5).is_empty());
        assert!(b.is_empty("other"));
    }
}
