//! Many object-store calls at once: a step that reads one object per input (preprocess's
//! probes, postprocess's result manifests) waits on the network, not the CPU, and thousands of
//! inputs read one after another run past a Lambda's timeout.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::Result;

/// Threads for [`try_map`] in the Lambda steps: enough to hide S3's latency, few enough that
/// the probes' read buffers fit a small function's memory.
pub const STEP_WORKERS: usize = 8;

/// `f(index, item)` for every item, on up to `workers` threads; the answers in item order, or
/// the error of the first item (by position) that failed, as a sequential loop gives: items
/// are taken in order and no more are taken once a failure is seen, and every item before a
/// failed one was taken before it, so it finishes and its own error, if any, comes first.
pub fn try_map<T, R, F>(items: &[T], workers: usize, f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &T) -> Result<R> + Sync,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let answer = f(i, item);
            if answer.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, answer));
        }
        done
    };
    let workers = workers.clamp(1, items.len().max(1));
    let mut done: Vec<(usize, Result<R>)> = if workers == 1 {
        work()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, answer)| answer).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::time::Duration;

    #[test]
    fn answers_come_in_item_order_whatever_finishes_first() {
        let items: Vec<u64> = (0..40).collect();
        let answers = try_map(&items, 8, |i, &n| {
            // Later items finish first.
            std::thread::sleep(Duration::from_millis(40 - n));
            Ok(i as u64 * 10 + n)
        })
        .unwrap();
        assert_eq!(answers, (0..40).map(|n| n * 11).collect::<Vec<_>>());
        assert!(try_map(&[] as &[u8], 8, |_, _| Ok(())).unwrap().is_empty());
    }

    #[test]
    fn the_first_failure_by_position_is_the_answer_and_stops_the_rest() {
        let items: Vec<u64> = (0..1000).collect();
        let started = AtomicUsize::new(0);
        let answer = try_map(&items, 8, |_, &n| {
            started.fetch_add(1, Ordering::Relaxed);
            // Item 30 fails slowly, item 31 at once: the answer is still item 30's error.
            match n {
                30 => {
                    std::thread::sleep(Duration::from_millis(50));
                    Err(Error::invalid("item", "30"))
                }
                31 => Err(Error::invalid("item", "31")),
                _ => Ok(n),
            }
        });
        let message = answer.unwrap_err().to_string();
        assert!(message.contains("30"), "{message}");
        assert!(
            started.load(Ordering::Relaxed) < 100,
            "the rest went on after a failure"
        );
    }

    #[test]
    fn calls_overlap() {
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        try_map(&[(); 16], 8, |_, _| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        assert!(most.load(Ordering::SeqCst) > 1, "one call at a time");
    }
}
