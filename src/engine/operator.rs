//! The operator interface: one keyed, stateful stage of the engine that owns its state, and the
//! compact, versioned binary encoding its snapshots are written in.
//!
//! Like Arroyo's `ArrowOperator` (process a batch, handle a watermark, declare `tables()`): an
//! operator applies its records in the engine's total order (`partition::Key`), is told when
//! record time has advanced without a record of its own (a watermark: evict, re-judge), declares
//! the tables its state is made of (for size accounting), and writes its whole state to bytes and
//! back. It reaches nothing else: no clock, no I/O, no other operator's state. Its outputs are a
//! function of the sequence of inputs and watermarks it was given alone.

use anyhow::{Result, bail, ensure};

use super::rules::RuleContext;

/// One table of an operator's state: what it holds and about how many bytes it takes in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTable {
    pub name: &'static str,
    /// Entries (rows) held.
    pub entries: usize,
    /// Estimated heap bytes, the entries' inline size included.
    pub bytes: usize,
}

/// A keyed, stateful stage of the engine (one partition's instance).
pub trait Operator {
    /// A record it applies (already in the engine's order).
    type In;
    /// What it emits (changed alerts, links, …).
    type Out;

    /// Its name in snapshots, logs and the changelog.
    const NAME: &'static str;
    /// The version of its snapshot encoding; `restore` refuses another.
    const SNAPSHOT_VERSION: u16;

    /// Apply records in order; returns what changed.
    fn process(&mut self, cx: &RuleContext, records: &[Self::In]) -> Vec<Self::Out>;

    /// Record time reached `at` (Unix seconds) with no record of this operator: evict state that
    /// fell out of its horizons and re-judge what depends on the population.
    fn watermark(&mut self, cx: &RuleContext, at: i64) -> Vec<Self::Out>;

    /// The tables its state is made of, with their sizes.
    fn tables(&self) -> Vec<StateTable>;

    /// The whole state as bytes (header: magic, `NAME`, `SNAPSHOT_VERSION`).
    fn snapshot(&self) -> Vec<u8>;

    /// The state written by `snapshot` (of the same name and version).
    fn restore(&mut self, bytes: &[u8]) -> Result<()>;
}

/// First bytes of every operator snapshot.
const MAGIC: &[u8; 4] = b"DBOP";

/// Compact binary writer: LEB128 varints, zigzag for signed, length-prefixed bytes.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    /// A snapshot of operator `name` at encoding `version`: the header written.
    pub fn snapshot(name: &str, version: u16) -> Writer {
        let mut w = Writer::default();
        w.buf.extend_from_slice(MAGIC);
        w.buf.extend_from_slice(&version.to_le_bytes());
        w.bytes(name.as_bytes());
        w
    }

    pub fn u64(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(b);
                return;
            }
            self.buf.push(b | 0x80);
        }
    }

    pub fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

/// Reader of what a [`Writer`] wrote; every read is checked (a truncated or foreign snapshot is
/// an error naming the operator, never a panic).
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    name: &'a str,
}

impl<'a> Reader<'a> {
    /// Check the header of a snapshot of operator `name` at `version`; the reader is past it.
    pub fn snapshot(buf: &'a [u8], name: &'a str, version: u16) -> Result<Reader<'a>> {
        ensure!(
            buf.len() >= 6 && &buf[..4] == MAGIC,
            "the {name} snapshot is not an operator snapshot"
        );
        let got = u16::from_le_bytes([buf[4], buf[5]]);
        let mut r = Reader {
            buf: &buf[6..],
            name,
        };
        let of = r.bytes()?;
        ensure!(
            of == name.as_bytes(),
            "the {name} snapshot holds the state of another operator ({})",
            String::from_utf8_lossy(of)
        );
        ensure!(
            got == version,
            "the {name} snapshot has encoding version {got}, this build reads {version}"
        );
        Ok(r)
    }

    pub fn u64(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some((&b, rest)) = self.buf.split_first() else {
                bail!("the {} snapshot is truncated", self.name);
            };
            self.buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("the {} snapshot holds a malformed number", self.name)
    }

    pub fn i64(&mut self) -> Result<i64> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub fn u32(&mut self) -> Result<u32> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| anyhow::anyhow!("the {} snapshot: {v} is no u32", self.name))
    }

    pub fn count(&mut self) -> Result<usize> {
        let n = self.u64()? as usize;
        ensure!(
            n <= self.buf.len().saturating_mul(8).max(1 << 20),
            "the {} snapshot announces {n} entries, more than it holds",
            self.name
        );
        Ok(n)
    }

    pub fn f64(&mut self) -> Result<f64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.take(1)?[0] != 0)
    }

    /// `n` bytes as written (`Writer::buf` extended directly).
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8]> {
        self.take(n)
    }

    /// 16 bytes as written (an id).
    pub fn array16(&mut self) -> Result<[u8; 16]> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(a)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        ensure!(
            self.buf.len() >= n,
            "the {} snapshot is truncated",
            self.name
        );
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u64()? as usize;
        self.take(n)
    }

    pub fn str(&mut self) -> Result<&'a str> {
        let name = self.name;
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| anyhow::anyhow!("the {name} snapshot holds a string that is not UTF-8"))
    }

    /// Every byte was read (a longer snapshot is another layout).
    pub fn finish(self) -> Result<()> {
        ensure!(
            self.buf.is_empty(),
            "the {} snapshot has {} bytes past its end",
            self.name,
            self.buf.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_refuses_foreign_or_short_input() {
        let mut w = Writer::snapshot("complainants", 3);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            w.u64(v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -1_700_000_000] {
            w.i64(v);
        }
        w.str("投诉人");
        w.f64(0.25);
        w.bool(true);
        let bytes = w.buf;
        let mut r = Reader::snapshot(&bytes, "complainants", 3).expect("header");
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.u64().expect("u64"), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -1_700_000_000] {
            assert_eq!(r.i64().expect("i64"), v);
        }
        assert_eq!(r.str().expect("str"), "投诉人");
        assert_eq!(r.f64().expect("f64"), 0.25);
        assert!(r.bool().expect("bool"));
        r.finish().expect("all read");
        let err = |b: &[u8], name: &str, v: u16| {
            Reader::snapshot(b, name, v)
                .and_then(|mut r| r.u64().map(|_| ()))
                .expect_err("refused")
                .to_string()
        };
        assert!(err(&bytes, "issues", 3).contains("another operator (complainants)"));
        assert!(err(&bytes, "complainants", 4).contains("version 3, this build reads 4"));
        assert!(err(b"nope", "complainants", 3).contains("not an operator snapshot"));
        let header = Writer::snapshot("complainants", 3).buf;
        assert!(err(&header, "complainants", 3).contains("truncated"));
    }
}
