//! A team of persistent helper threads that run the neuron blocks of one wide layer
//! together with the calling thread, one job per layer and step.
//!
//! A training step of a 2000-neuron layer takes a few microseconds, about the cost of a
//! rayon fork-join, so a job is handed over without a lock or a system call: the caller
//! writes it and rings a bell (a job number the helpers spin on) and works on it at once.
//! A job is
//! split into slots (a few per thread: one neuron block each, or a run of weight rows);
//! every participant claims the slots of its own share first (the same blocks go to the
//! same thread every step, so their state stays in that core's cache), then any slot still
//! unclaimed. Claims are compare-and-swap on a per-slot job number, so a helper that is
//! late — not scheduled on a busy machine, or still waking up — finds its slots already
//! done by the caller and never holds the caller up: the caller waits only for slots a
//! helper has claimed and is running. On a machine without a free core the team so runs
//! at about the speed of one thread instead of waiting for time slices every step.
//!
//! A helper that has seen no job for [`SPIN_BEFORE_SLEEP`] sleeps on a condition variable
//! (it costs nothing while the network is tested or the run is between epochs) and is
//! woken by the next job. Teams belong to the thread that uses them ([`with_team`]): every
//! training thread (a `reproduce` job, a benchmark's pool thread) gets its own helpers.
//! Results never depend on the team: every task runs exactly once, whole, on some thread,
//! and every neuron block owns its random stream.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle helper spins for the next job before it sleeps. Steps of a layer
/// follow each other within microseconds; a helper sleeps between runs, during test
/// evaluation and while a single-threaded part (I/O, checkpoints) runs long.
pub const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(300);

/// Spins of a waiting caller before it starts to yield its core between checks.
const SPINS_BEFORE_YIELD: u32 = 2_000;

/// Slots per participant of a job with many tasks (load balance against claim costs).
const SLOTS_PER_THREAD: usize = 4;

/// Slots per participant of [`Team::for_each_chunk_mut`] (chunks of uneven cost).
pub const SLOTS_PER_THREAD_FINE: usize = 16;

/// Most slots of one job (more tasks share slots).
pub const MAX_SLOTS: usize = 256;

/// The signature of a type-erased job: the closure behind the pointer, called for task i.
type CallFn = unsafe fn(*const (), usize);

/// One value on a cache line of its own (no false sharing between the counters).
#[repr(align(128))]
struct Padded<T>(T);

/// Calls the `F` behind `data` for task `i`.
///
/// # Safety
/// `data` must point to a live `F`.
unsafe fn call_job<F: Fn(usize) + Sync>(data: *const (), i: usize) {
    // SAFETY: the caller guarantees `data` is a live `&F` (see `Team::run_tasks`).
    let f = unsafe { &*(data as *const F) };
    f(i);
}

/// A job as a participant read it (consistent: checked against the job line's stamp).
#[derive(Clone, Copy)]
struct Job {
    /// Job number (from 1).
    number: u64,
    data: *const (),
    call: CallFn,
    tasks: usize,
    slots: usize,
}

/// The current job, on a cache line of its own that helpers read once per job (they spin
/// on the bell, not here, so writing it costs the caller no transfers to a spinning core).
#[repr(align(128))]
struct JobLine {
    /// 2g - 1 while the caller writes job g, 2g once written (a seqlock: a reader checks
    /// that the stamp before the fields is still there after them).
    stamp: AtomicU64,
    data: AtomicPtr<()>,
    call: AtomicUsize,
    tasks: AtomicUsize,
    slots: AtomicUsize,
}

/// The number of the job that last claimed a slot (never decreases), on a cache line of
/// its own: participants claiming their own slots do not disturb each other.
#[repr(align(128))]
struct Claim(AtomicU64);

/// What the caller and its helpers share.
struct Shared {
    /// The number of the last job published (helpers spin on it); bumped at shutdown.
    bell: Padded<AtomicU64>,
    job: JobLine,
    /// Slots finished, counted over all jobs (the caller knows how many to wait for).
    done: Padded<AtomicU64>,
    claims: Box<[Claim]>,
    /// Helpers asleep on `wake` (or about to be).
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
    /// A task panicked (raised again in the caller).
    panicked: AtomicBool,
    threads: usize,
}

impl Shared {
    /// Waits (spin, then sleep) until the bell differs from `seen`; returns it.
    fn next_bell(&self, seen: u64) -> u64 {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let g = self.bell.0.load(Ordering::Acquire);
            if g != seen {
                return g;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 && start.elapsed() >= SPIN_BEFORE_SLEEP {
                break;
            }
        }
        // Sleep. The caller rings (SeqCst), then looks for sleepers (SeqCst): either we
        // see its bell under the lock, or it sees us and notifies under the lock.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let g = loop {
            let g = self.bell.0.load(Ordering::SeqCst);
            if g != seen {
                break g;
            }
            guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        };
        drop(guard);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        g
    }

    /// Job `number` as written in the job line, or None when the line holds another job
    /// (a later one: this helper is late and the job is over).
    fn read_job(&self, number: u64) -> Option<Job> {
        let j = &self.job;
        loop {
            let stamp = j.stamp.load(Ordering::Acquire);
            if stamp > 2 * number {
                return None;
            }
            if stamp != 2 * number {
                // Still being written (the bell rings only after that): look again.
                std::hint::spin_loop();
                continue;
            }
            let data = j.data.load(Ordering::Relaxed) as *const ();
            let call = j.call.load(Ordering::Relaxed);
            let tasks = j.tasks.load(Ordering::Relaxed);
            let slots = j.slots.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if j.stamp.load(Ordering::Relaxed) != stamp {
                continue;
            }
            if call == 0 {
                return None;
            }
            // SAFETY: `call` was stored from a `CallFn` (`Team::run_tasks`), and the stamp
            // shows that all four fields are of the same job.
            let call = unsafe { std::mem::transmute::<usize, CallFn>(call) };
            return Some(Job {
                number,
                data,
                call,
                tasks,
                slots: slots.min(self.claims.len()),
            });
        }
    }

    /// Participant `p`'s work on `job`: its own share of the slots first, then any other
    /// slot still unclaimed.
    fn work(&self, job: &Job, p: usize) {
        let (lo, hi) = share(job.slots, self.threads, p);
        let chunk = job.tasks.div_ceil(job.slots.max(1));
        for s in (lo..hi).chain(hi..job.slots).chain(0..lo) {
            let claim = &self.claims[s].0;
            let cur = claim.load(Ordering::Relaxed);
            // A slot is claimed once per job. A helper late for an earlier job finds every
            // slot of that job claimed (that job ended only when all were done).
            if cur >= job.number
                || claim
                    .compare_exchange(cur, job.number, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            for i in s * chunk..((s + 1) * chunk).min(job.tasks) {
                // SAFETY: we hold a claim of this job, which the caller waits for: the
                // closure behind `data` is alive (see `Team::run_tasks`).
                let r =
                    panic::catch_unwind(AssertUnwindSafe(|| unsafe { (job.call)(job.data, i) }));
                if r.is_err() {
                    self.panicked.store(true, Ordering::Release);
                }
            }
            self.done.0.fetch_add(1, Ordering::Release);
        }
    }

    /// The loop of helper `p` (participant `p`; the caller is participant 0).
    fn helper_loop(&self, p: usize) {
        let mut seen = 0u64;
        loop {
            seen = self.next_bell(seen);
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            if let Some(job) = self.read_job(seen) {
                self.work(&job, p);
            }
        }
    }
}

/// The calling thread and `threads - 1` persistent helper threads that run jobs together.
pub struct Team {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    /// Number of the last job published (only the owning thread runs jobs).
    last_job: Cell<u64>,
    /// Slots of all jobs so far (the value of `done` once the last job has finished).
    slots_so_far: Cell<u64>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team")
            .field("threads", &self.threads())
            .finish()
    }
}

impl Team {
    /// The caller and `threads - 1` helpers. Where a helper cannot be started the team is
    /// smaller (at least the caller alone): results are the same, only slower.
    pub fn new(threads: usize) -> Self {
        let wanted = threads.max(1);
        let make = |threads: usize| {
            Arc::new(Shared {
                bell: Padded(AtomicU64::new(0)),
                job: JobLine {
                    stamp: AtomicU64::new(0),
                    data: AtomicPtr::new(std::ptr::null_mut()),
                    call: AtomicUsize::new(0),
                    tasks: AtomicUsize::new(0),
                    slots: AtomicUsize::new(0),
                },
                done: Padded(AtomicU64::new(0)),
                claims: (0..MAX_SLOTS).map(|_| Claim(AtomicU64::new(0))).collect(),
                sleepers: AtomicUsize::new(0),
                lock: Mutex::new(()),
                wake: Condvar::new(),
                shutdown: AtomicBool::new(false),
                panicked: AtomicBool::new(false),
                threads,
            })
        };
        let mut team = Team {
            shared: make(wanted),
            handles: Vec::new(),
            last_job: Cell::new(0),
            slots_so_far: Cell::new(0),
        };
        for p in 1..wanted {
            let s = Arc::clone(&team.shared);
            let spawned = std::thread::Builder::new()
                .name(format!("apical-block-{p}"))
                .spawn(move || s.helper_loop(p));
            match spawned {
                Ok(h) => team.handles.push(h),
                Err(_) => {
                    // Fewer threads than asked: stop those started, run alone.
                    drop(team);
                    return Team {
                        shared: make(1),
                        handles: Vec::new(),
                        last_job: Cell::new(0),
                        slots_so_far: Cell::new(0),
                    };
                }
            }
        }
        team
    }

    /// Participants: the caller and its helpers.
    pub fn threads(&self) -> usize {
        self.handles.len() + 1
    }

    /// Runs `f(i)` once for every task `i` in `0..tasks`, on this thread and the helpers,
    /// and returns when all have returned. The tasks are grouped into at most `slots`
    /// slots of consecutive tasks, the unit of claiming. A panic in any task is raised here
    /// after every claimed slot has finished.
    pub fn run_tasks<F: Fn(usize) + Sync>(&self, tasks: usize, slots: usize, f: &F) {
        let slots = slots.clamp(1, MAX_SLOTS);
        if self.handles.is_empty() || tasks <= 1 || slots == 1 {
            (0..tasks).for_each(f);
            return;
        }
        let chunk = tasks.div_ceil(slots);
        let slots = tasks.div_ceil(chunk);
        let s = &*self.shared;
        let number = self.last_job.get() + 1;
        self.last_job.set(number);
        // Write the job line (stamped odd while writing, even when written), then ring.
        let j = &s.job;
        j.stamp.store(2 * number - 1, Ordering::Relaxed);
        fence(Ordering::Release);
        j.data.store(f as *const F as *mut (), Ordering::Relaxed);
        j.call
            .store(call_job::<F> as CallFn as usize, Ordering::Relaxed);
        j.tasks.store(tasks, Ordering::Relaxed);
        j.slots.store(slots, Ordering::Relaxed);
        j.stamp.store(2 * number, Ordering::Release);
        let target = self.slots_so_far.get() + slots as u64;
        self.slots_so_far.set(target);
        s.bell.0.store(number, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        let job = Job {
            number,
            data: f as *const F as *const (),
            call: call_job::<F>,
            tasks,
            slots,
        };
        s.work(&job, 0);
        // Every slot is claimed now; wait for those helpers are still running. Until then
        // they may call `f`, so we must not return (nor unwind) before.
        let mut spins = 0u32;
        while s.done.0.load(Ordering::Acquire) != target {
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if s.panicked.swap(false, Ordering::AcqRel) {
            panic!("a task shared among the threads of a neuron-block team panicked");
        }
    }

    /// Calls `f` on every item of `items`, each exactly once, shared among the team (a few
    /// slots of consecutive items per participant, its own slots first).
    pub fn for_each_mut<T: Send, F: Fn(&mut T) + Sync>(&self, items: &mut [T], f: F) {
        let n = items.len();
        let base = SendPtr(items.as_mut_ptr());
        let slots = n.min(self.threads() * SLOTS_PER_THREAD);
        self.run_tasks(n, slots, &|i: usize| {
            // SAFETY: every index in 0..n is run exactly once (one claim per slot, slots
            // disjoint), so no two calls alias; `items` outlives `run_tasks`.
            let item = unsafe { &mut *base.get().add(i) };
            f(item);
        });
    }

    /// Calls `f(i, chunk)` on every chunk `i` of `chunk_len` consecutive items of `items`
    /// (the last one may be shorter), each exactly once, shared among the team in up to
    /// [`SLOTS_PER_THREAD_FINE`] slots per participant (chunks of uneven cost, such as the
    /// weight rows of inputs that may or may not have been active, balance out).
    pub fn for_each_chunk_mut<T: Send, F: Fn(usize, &mut [T]) + Sync>(
        &self,
        items: &mut [T],
        chunk_len: usize,
        f: F,
    ) {
        let n = items.len();
        let chunk_len = chunk_len.max(1);
        let chunks = n.div_ceil(chunk_len);
        let base = SendPtr(items.as_mut_ptr());
        let slots = chunks.min(self.threads() * SLOTS_PER_THREAD_FINE);
        self.run_tasks(chunks, slots, &|i: usize| {
            let lo = i * chunk_len;
            let len = chunk_len.min(n - lo);
            // SAFETY: every chunk index in 0..chunks is run exactly once and chunks are
            // disjoint ranges inside `items`, which outlives `run_tasks`.
            let chunk = unsafe { std::slice::from_raw_parts_mut(base.get().add(lo), len) };
            f(i, chunk);
        });
    }
}

/// Items `lo..hi` of `n` that participant `p` of `parts` takes first: contiguous, sizes
/// differing by at most one, the larger shares last.
pub fn share(n: usize, parts: usize, p: usize) -> (usize, usize) {
    let parts = parts.max(1);
    (p * n / parts, ((p + 1) * n / parts).min(n))
}

/// A raw pointer that may cross threads (the users guarantee disjoint access).
struct SendPtr<T>(*mut T);

impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: only used by `for_each_mut` and `for_each_chunk_mut`, whose tasks access
// disjoint items.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper).
    fn get(self) -> *mut T {
        self.0
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.shutdown.store(true, Ordering::Release);
        s.bell.0.fetch_add(1, Ordering::SeqCst);
        {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

thread_local! {
    /// The team of this thread, made on first use with the size asked for.
    static TEAM: RefCell<Option<Team>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's team of `threads` participants (made, or remade at a new
/// size, on first use). Where the team is already in use on this thread (a job that
/// itself asks for one), `f` gets a team of one: the same results, sequentially.
pub fn with_team<R>(threads: usize, f: impl FnOnce(&Team) -> R) -> R {
    TEAM.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            if slot.as_ref().is_none_or(|t| t.threads() != threads.max(1)) {
                *slot = None; // join the old helpers before starting new ones
                *slot = Some(Team::new(threads));
            }
            match slot.as_ref() {
                Some(team) => f(team),
                None => f(&Team::new(1)),
            }
        }
        Err(_) => f(&Team::new(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_task_runs_exactly_once_per_job() {
        let team = Team::new(3);
        assert_eq!(team.threads(), 3);
        for (tasks, slots) in [(3, 3), (7, 12), (100, 12), (1000, 256), (5, 1), (1, 8)] {
            let hits: Vec<AtomicU32> = (0..tasks).map(|_| AtomicU32::new(0)).collect();
            for _ in 0..200 {
                team.run_tasks(tasks, slots, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            for h in &hits {
                assert_eq!(
                    h.load(Ordering::Relaxed),
                    200,
                    "{tasks} tasks, {slots} slots"
                );
            }
        }
    }

    #[test]
    fn helpers_take_part_when_they_are_free() {
        let team = Team::new(2);
        let caller = std::thread::current().id();
        let by_helper = AtomicU32::new(0);
        // Tasks long enough for a spinning helper to claim its share.
        for _ in 0..200 {
            team.run_tasks(4, 4, &|_| {
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_micros(50) {
                    std::hint::spin_loop();
                }
                if std::thread::current().id() != caller {
                    by_helper.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        assert!(
            by_helper.load(Ordering::Relaxed) > 0,
            "the helper never ran a task"
        );
    }

    #[test]
    fn shares_cover_every_item_once() {
        for n in 0..40 {
            for parts in 1..9 {
                let mut next = 0;
                for p in 0..parts {
                    let (lo, hi) = share(n, parts, p);
                    assert_eq!(lo, next);
                    assert!(hi >= lo);
                    next = hi;
                }
                assert_eq!(next, n);
            }
        }
    }

    #[test]
    fn for_each_mut_touches_each_item_once_after_sleeping() {
        let team = Team::new(2);
        let mut v: Vec<u64> = (0..7).collect();
        team.for_each_mut(&mut v, |x| *x *= 10);
        // Long enough for the helper to fall asleep; the next job must wake it.
        std::thread::sleep(SPIN_BEFORE_SLEEP * 20);
        team.for_each_mut(&mut v, |x| *x += 1);
        assert_eq!(v, (0..7).map(|x| x * 10 + 1).collect::<Vec<_>>());
    }

    #[test]
    fn for_each_chunk_mut_covers_every_item_once_with_its_chunk_index() {
        let team = Team::new(3);
        for (n, chunk) in [(0, 4), (10, 3), (784 * 7, 7), (5, 100)] {
            let mut v = vec![0usize; n];
            for _ in 0..20 {
                team.for_each_chunk_mut(&mut v, chunk, |i, c| {
                    assert!(c.len() <= chunk && !c.is_empty());
                    for x in c {
                        *x += i + 1;
                    }
                });
            }
            let want: Vec<usize> = (0..n).map(|k| 20 * (k / chunk + 1)).collect();
            assert_eq!(v, want, "{n} items in chunks of {chunk}");
        }
    }

    #[test]
    fn a_panicking_task_is_raised_in_the_caller_and_the_team_still_works() {
        let team = Team::new(2);
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            team.run_tasks(4, 4, &|i| {
                if i == 3 {
                    panic!("task 3 fails");
                }
            })
        }));
        assert!(r.is_err());
        let count = AtomicU32::new(0);
        team.run_tasks(4, 4, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn with_team_resizes_and_nests_sequentially() {
        with_team(3, |t| {
            assert_eq!(t.threads(), 3);
            with_team(3, |inner| assert_eq!(inner.threads(), 1));
        });
        with_team(2, |t| assert_eq!(t.threads(), 2));
    }
}
