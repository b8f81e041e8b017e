//! Tickets: a map from ticket to a [`Slot`] holding the engine's
//! [`Pending`] answer, each slot with its own lock and condition variable,
//! so that one thread can wait on a ticket (without holding any lock) while
//! others submit, poll and wait on theirs or on the same one.

use crate::codes::{VIGIL_ERR_CLOSED, VIGIL_ERR_INTERNAL, VIGIL_ERR_OVERLOADED, VIGIL_ERR_UNKNOWN_TICKET};
use crate::handle::vigil_validator;
use std::ffi::c_int;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use vigil_engine::{Pending, Request, SubmitError, Verdict};

/// Where a ticket's answer is.
enum State {
    /// In its channel, which no thread is waiting on.
    Idle(Pending),
    /// A thread is waiting on the channel, holding the `Pending` outside the
    /// lock: pollers answer PENDING, other waiters wait for it to return.
    Waited,
    /// Taken (the moment before the ticket leaves the map).
    Taken,
}

/// A ticket: its state, and a condition variable signalled whenever a
/// waiting thread gives the channel back (`Idle`) or takes the answer.
pub(crate) struct Slot {
    state: Mutex<State>,
    changed: Condvar,
}

/// How to take a ticket.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Take {
    Poll,
    Wait,
    WaitAtMost(Duration),
}

/// Locks `m`, whether or not a panic poisoned it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl vigil_validator {
    pub(crate) fn submit(&self, request: Request, wait: bool) -> Result<u64, c_int> {
        let pending = if wait { self.validator.submit(request) } else { self.validator.try_submit(request) };
        let pending = pending.map_err(|e| match e {
            SubmitError::Overloaded => VIGIL_ERR_OVERLOADED,
            SubmitError::Closed => VIGIL_ERR_CLOSED,
        })?;
        let ticket = self.last_ticket.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Slot { state: Mutex::new(State::Idle(pending)), changed: Condvar::new() };
        lock(&self.tickets).insert(ticket, Arc::new(slot));
        Ok(ticket)
    }

    /// The ticket's verdict if it comes (`Ok(None)`: not yet), which uses
    /// the ticket up. Lock order: a slot, then the map; never the other way.
    ///
    /// One thread at a time waits on a ticket's channel, without holding
    /// the slot's lock: meanwhile a poll answers `Ok(None)` (PENDING), and a
    /// second waiter waits on the slot's condition variable until the first
    /// returns: then the ticket is gone (`VIGIL_ERR_UNKNOWN_TICKET`) if the
    /// first took the answer, or the second waits on the channel itself if
    /// the first's timeout ran out. A timed waiter never waits past its own
    /// timeout, whoever holds the channel.
    pub(crate) fn take(&self, ticket: u64, how: Take) -> Result<Option<Verdict>, c_int> {
        let slot = lock(&self.tickets).get(&ticket).cloned().ok_or(VIGIL_ERR_UNKNOWN_TICKET)?;
        // `None`: no deadline (a plain wait, or a timeout past `Instant`'s range).
        let deadline = match how {
            Take::WaitAtMost(timeout) => Instant::now().checked_add(timeout),
            Take::Poll | Take::Wait => None,
        };
        let timed = matches!(how, Take::WaitAtMost(_)) && deadline.is_some();
        let mut state = lock(&slot.state);
        let pending = loop {
            match std::mem::replace(&mut *state, State::Waited) {
                State::Idle(p) => break p,
                State::Taken => {
                    *state = State::Taken;
                    return Err(VIGIL_ERR_UNKNOWN_TICKET);
                }
                // Another thread is waiting on the channel.
                State::Waited => match (how, deadline) {
                    (Take::Poll, _) => return Ok(None),
                    (_, Some(deadline)) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Ok(None);
                        }
                        state = slot.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
                    }
                    (_, None) => state = slot.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
                },
            }
        };
        let verdict = if let Take::Poll = how {
            pending.poll()
        } else {
            // The channel is ours (`Waited`): wait on it without the lock. A
            // `Duration::MAX` wait is a plain wait that cannot panic.
            drop(state);
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            let verdict = pending.wait_timeout(left);
            state = lock(&slot.state);
            verdict
        };
        let result = match verdict {
            Some(v) => {
                *state = State::Taken;
                lock(&self.tickets).remove(&ticket);
                Ok(Some(v))
            }
            None => {
                *state = State::Idle(pending);
                // An untimed wait ends only with the answer: none means the
                // validator dropped the request, which it never does.
                if matches!(how, Take::Wait) || (matches!(how, Take::WaitAtMost(_)) && !timed) {
                    Err(VIGIL_ERR_INTERNAL)
                } else {
                    Ok(None)
                }
            }
        };
        drop(state);
        slot.changed.notify_all();
        result
    }
}
