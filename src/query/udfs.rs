//! The analysts' UDFs of `duban sql` and Flight SQL, on top of the engine's per-record UDFs:
//! `segment(text)`, `classify(title, body)`, `classify_confidence(title, body)`, `similarity(a, b)`.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Builder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::taxonomy::DomainClassifier;

/// Register the UDFs (replacing the engine's `classify`, which returns `domain|confidence`).
pub fn register(ctx: &SessionContext, classifier: Arc<dyn DomainClassifier>) {
    ctx.register_udf(create_udf(
        "segment",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| map_text(args, |v| v[0].map(segment))),
    ));
    let c = classifier.clone();
    ctx.register_udf(create_udf(
        "classify",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            map_text(args, |v| {
                Some(c.classify(v[0].unwrap_or(""), v[1].unwrap_or("")).0)
            })
        }),
    ));
    let c = classifier;
    ctx.register_udf(create_udf(
        "classify_confidence",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            map_f64(args, |v| {
                Some(c.classify(v[0].unwrap_or(""), v[1].unwrap_or("")).1)
            })
        }),
    ));
    ctx.register_udf(create_udf(
        "similarity",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| map_f64(args, |v| Some(similarity(v[0]?, v[1]?)))),
    ));
}

/// Words of a text (jieba, no HMM), separated by single spaces; whitespace and punctuation dropped.
pub fn segment(text: &str) -> String {
    words(text).join(" ")
}

fn words(text: &str) -> Vec<&str> {
    crate::classify::features::jieba()
        .cut(text, false)
        .into_iter()
        .map(|t| t.word)
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect()
}

/// Cosine similarity of two texts' jieba word counts, in [0, 1]; 0 when either has no word.
pub fn similarity(a: &str, b: &str) -> f64 {
    let count = |t: &str| {
        let mut m: HashMap<String, f64> = HashMap::new();
        for w in words(t) {
            *m.entry(w.to_lowercase()).or_default() += 1.0;
        }
        m
    };
    let (x, y) = (count(a), count(b));
    let dot: f64 = x.iter().filter_map(|(k, v)| y.get(k).map(|w| v * w)).sum();
    let norm = |m: &HashMap<String, f64>| m.values().map(|v| v * v).sum::<f64>().sqrt();
    let d = norm(&x) * norm(&y);
    if d == 0.0 { 0.0 } else { (dot / d).min(1.0) }
}

/// The string arguments of a UDF call, row by row.
fn string_rows(
    args: &[ColumnarValue],
    mut row: impl FnMut(&[Option<&str>]),
) -> datafusion::error::Result<()> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let arrays: Vec<ArrayRef> = arrays
        .iter()
        .map(|a| cast(a, &DataType::Utf8))
        .collect::<Result<_, _>>()?;
    let cols: Vec<_> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
    let n = arrays.first().map_or(0, |a| a.len());
    let mut vals: Vec<Option<&str>> = Vec::with_capacity(cols.len());
    for i in 0..n {
        vals.clear();
        vals.extend(
            cols.iter()
                .map(|c| if c.is_null(i) { None } else { Some(c.value(i)) }),
        );
        row(&vals);
    }
    Ok(())
}

/// A text-valued UDF body.
fn map_text(
    args: &[ColumnarValue],
    f: impl Fn(&[Option<&str>]) -> Option<String>,
) -> datafusion::error::Result<ColumnarValue> {
    let mut b = StringBuilder::new();
    string_rows(args, |v| b.append_option(f(v)))?;
    Ok(ColumnarValue::Array(Arc::new(b.finish())))
}

/// A number-valued UDF body.
fn map_f64(
    args: &[ColumnarValue],
    f: impl Fn(&[Option<&str>]) -> Option<f64>,
) -> datafusion::error::Result<ColumnarValue> {
    let mut b = Float64Builder::new();
    string_rows(args, |v| b.append_option(f(v)))?;
    Ok(ColumnarValue::Array(Arc::new(b.finish())))
}
