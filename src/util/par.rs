//! Fork-join on scoped threads: one thread per item, results in the items' order.

/// `f` of every item, each on its own scoped thread; results in item order. A panicking thread
/// becomes an error naming `what`.
pub fn on_threads<T, R, F>(
    what: &str,
    items: impl IntoIterator<Item = T>,
    f: F,
) -> anyhow::Result<Vec<R>>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || f(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("{what} panicked")))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_item_order_and_a_panic_is_an_error() {
        let squares = on_threads("a square", 0..8u64, |i| i * i).expect("no panic");
        assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
        let err = on_threads("a worker", [1, 0], |d: u32| {
            assert!(d != 0, "zero");
            d
        })
        .expect_err("one panicked");
        assert_eq!(err.to_string(), "a worker panicked");
    }
}
