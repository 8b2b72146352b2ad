//! Work per input on several threads, answers in input order: the object-store calls of a
//! Lambda step (preprocess's probes, postprocess's result manifests wait on the network, not
//! the CPU, and thousands of inputs read one after another run past a Lambda's timeout), and
//! the inputs of `mzforge run --inputs-at-once`.

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
    let failed = AtomicBool::new(false);
    let work = |i, item: &T| {
        (!failed.load(Ordering::Relaxed)).then(|| {
            let answer = f(i, item);
            if answer.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            answer
        })
    };
    let mut answers = Ok(Vec::with_capacity(items.len()));
    for_each_in_order(items, workers, work, |_, answer| {
        if let (Ok(done), Some(answer)) = (&mut answers, answer) {
            match answer {
                Ok(value) => done.push(value),
                Err(error) => answers = Err(error),
            }
        }
    });
    answers
}

/// `work(index, item)` for every item, on up to `jobs` threads (on this one when `jobs` is 1),
/// each answer handed to `done(index, answer)` on this thread in item order, as soon as it and
/// every answer before it are in: a command's reports follow the order of its inputs, whatever
/// order they finish in. Items are taken in order; `work` decides for itself whether to skip
/// one (after a stop signal, say).
pub fn for_each_in_order<T, R, W, D>(items: &[T], jobs: usize, work: W, mut done: D)
where
    T: Sync,
    R: Send,
    W: Fn(usize, &T) -> R + Sync,
    D: FnMut(usize, R),
{
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        for (i, item) in items.iter().enumerate() {
            done(i, work(i, item));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (sender, answers) = std::sync::mpsc::channel();
        let threads: Vec<_> = (0..jobs)
            .map(|_| {
                let (sender, next, work) = (sender.clone(), &next, &work);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if sender.send((i, work(i, item))).is_err() {
                        break;
                    }
                })
            })
            .collect();
        drop(sender);
        let mut early = std::collections::BTreeMap::new();
        let mut due = 0;
        for (i, answer) in answers {
            early.insert(i, answer);
            while let Some(answer) = early.remove(&due) {
                done(due, answer);
                due += 1;
            }
        }
        // A panic in `work` goes on with its own message (the scope's own would lose it).
        for thread in threads {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
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

    #[test]
    fn answers_are_handed_on_in_item_order_from_several_threads() {
        let items: Vec<u64> = (0..24).collect();
        let mut handed = Vec::new();
        for_each_in_order(
            &items,
            4,
            |i, &n| {
                // Later items finish first.
                std::thread::sleep(Duration::from_millis(3 * (24 - n)));
                (i, std::thread::current().id())
            },
            |i, answer| handed.push((i, answer)),
        );
        let order: Vec<usize> = handed.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..24).collect::<Vec<_>>());
        assert!(handed.iter().all(|(i, (j, _))| i == j));
        let threads: std::collections::BTreeSet<_> = handed
            .iter()
            .map(|(_, (_, thread))| format!("{thread:?}"))
            .collect();
        assert!(threads.len() > 1, "one thread did everything");
        assert!(!threads.contains(&format!("{:?}", std::thread::current().id())));
    }

    #[test]
    fn one_job_runs_on_the_calling_thread_one_item_at_a_time() {
        let here = std::thread::current().id();
        let in_flight = AtomicUsize::new(0);
        let mut handed = Vec::new();
        for_each_in_order(
            &[10, 20, 30],
            1,
            |_, &n| {
                assert_eq!(in_flight.fetch_add(1, Ordering::SeqCst), 0);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                (n, std::thread::current().id())
            },
            |_, answer| handed.push(answer),
        );
        assert_eq!(handed, vec![(10, here), (20, here), (30, here)]);
        for_each_in_order(&[] as &[u8], 4, |_, _| (), |_, _| panic!("no items"));
    }

    #[test]
    fn a_panic_on_a_worker_keeps_its_message() {
        let caught = std::panic::catch_unwind(|| {
            for_each_in_order(
                &[0, 1, 2, 3, 4, 5, 6, 7],
                3,
                |_, &n| assert!(n != 5, "item {n} is bad"),
                |_, _| {},
            )
        });
        let panic = caught.expect_err("the panic was lost");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(message, "item 5 is bad");
    }
}
