//! The loop's connections by slot (`Slots`): slot `i` is the channel with token
//! `event_loop::CHANNEL0 + i`; a freed slot is reused by the next connection, and the count of
//! open connections (`connection_limit`) changes with the slots, in the same two methods.

/// Values in numbered slots, with the number in use kept as they come and go.
pub(super) struct Slots<T> {
    slots: Vec<Option<T>>,
    /// Empty slots below `slots.len()`, the last freed reused first.
    free: Vec<usize>,
    /// Slots in use.
    used: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
            used: 0,
        }
    }
}

impl<T> Slots<T> {
    /// Slots in use (open connections).
    #[inline]
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// One past the highest slot: `0..end()` covers every slot in use (loops that may
    /// `remove` the slot they look at go by number).
    #[inline]
    pub(super) fn end(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> Option<&T> {
        self.slots.get(i).and_then(|s| s.as_ref())
    }

    #[inline]
    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i).and_then(|s| s.as_mut())
    }

    /// The slots in use, with their numbers.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|v| (i, v)))
    }

    /// The slot the next `insert` fills (a channel's token is needed before it exists).
    #[inline]
    pub(super) fn vacant(&self) -> usize {
        self.free.last().copied().unwrap_or(self.slots.len())
    }

    /// Puts `v` in the `vacant` slot and returns its number.
    pub(super) fn insert(&mut self, v: T) -> usize {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.slots[i] = Some(v);
        self.used += 1;
        i
    }

    /// Takes slot `i`'s value out (None if the slot is empty); the slot is free again.
    pub(super) fn remove(&mut self, i: usize) -> Option<T> {
        let v = self.slots.get_mut(i)?.take()?;
        self.free.push(i);
        self.used -= 1;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each step, then (slots in use, the slot `vacant` names next, the values in order).
    #[test]
    fn slots_are_reused_last_freed_first_and_counted() {
        #[derive(Debug)]
        enum Step {
            Insert(char),
            Remove(usize),
        }
        use Step::*;
        let table: &[(Step, usize, usize, &str)] = &[
            (Insert('a'), 1, 1, "a"),
            (Insert('b'), 2, 2, "ab"),
            (Insert('c'), 3, 3, "abc"),
            (Remove(1), 2, 1, "ac"),
            (Remove(1), 2, 1, "ac"),
            (Remove(7), 2, 1, "ac"),
            (Remove(0), 1, 0, "c"),
            (Insert('d'), 2, 1, "dc"),
            (Insert('e'), 3, 3, "dec"),
        ];
        let mut s = Slots::default();
        for (step, used, vacant, values) in table {
            match step {
                Insert(v) => {
                    let want = s.vacant();
                    assert_eq!(s.insert(*v), want, "{step:?}: the vacant slot is filled");
                }
                Remove(i) => {
                    s.remove(*i);
                }
            }
            assert_eq!(s.used(), *used, "{step:?}: used");
            assert_eq!(s.vacant(), *vacant, "{step:?}: vacant");
            let got: String = s.iter().map(|(_, v)| *v).collect();
            assert_eq!(got, *values, "{step:?}: values");
            assert_eq!((0..s.end()).filter_map(|i| s.get(i)).count(), *used);
        }
    }
}
